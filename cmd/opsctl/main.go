// Command opsctl is the on-call console for the COME2US platform.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/come2us/opsctl/pkg/cmd/root"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/startup"
	"github.com/come2us/opsctl/pkg/termsafe"
)

func main() {
	os.Exit(run())
}

func run() int {
	startup.Done() // the collector's own setting from here on (see package startup)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f := cmdutil.New()
	cmd := root.NewCmdRoot(f)
	err := cmd.ExecuteContext(ctx)
	if err != nil && !errors.Is(err, cmdutil.ErrSilent) {
		writeError(f.IOStreams.ErrOut, err)
	}
	return cmdutil.ExitCode(err)
}

// writeError prints a failed command's error for a person. Messages may span lines (the dirty
// files of a working copy, one per line), so line breaks are kept while every other control
// character is neutralised: a literal "\n" in the middle of an error helps nobody.
func writeError(w io.Writer, err error) {
	var pe *cmdutil.PartialError
	if !errors.As(err, &pe) {
		fmt.Fprintln(w, "Error: "+strings.TrimRight(termsafe.Block(err.Error()), "\n"))
	}
	var fe *cmdutil.FlagError
	if errors.As(err, &fe) {
		fmt.Fprintln(w, "Run 'opsctl --help' for usage.")
	}
}
