// Command opsctl is the on-call console for the COME2US platform.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
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
		var pe *cmdutil.PartialError
		if !errors.As(err, &pe) {
			fmt.Fprintln(f.IOStreams.ErrOut, "Error: "+termsafe.String(err.Error()))
		}
		var fe *cmdutil.FlagError
		if errors.As(err, &fe) {
			fmt.Fprintln(f.IOStreams.ErrOut, "Run 'opsctl --help' for usage.")
		}
	}
	return cmdutil.ExitCode(err)
}
