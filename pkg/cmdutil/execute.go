package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/termsafe"
)

// Execute runs cmd as a program's root command and returns the process exit code: the error, if
// any, is printed once, sanitised, on f's stderr (with a pointer to --help for a usage error),
// except where the command already reported it (ErrSilent, a PartialError, an ExitStatusError).
// Every opsctl binary's main calls it, so they fail alike.
func Execute(ctx context.Context, cmd *cobra.Command, f *Factory) int {
	err := cmd.ExecuteContext(ctx)
	var pe *PartialError
	var xe *ExitStatusError
	if err != nil && !errors.Is(err, ErrSilent) && !errors.As(err, &pe) && !errors.As(err, &xe) {
		// Messages may span lines (the dirty files of a working copy, one per line): line breaks
		// are kept, every other control character is neutralised.
		fmt.Fprintln(f.IOStreams.ErrOut, "Error: "+strings.TrimRight(termsafe.Block(err.Error()), "\n"))
		var fe *FlagError
		if errors.As(err, &fe) {
			fmt.Fprintf(f.IOStreams.ErrOut, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	}
	return ExitCode(err)
}
