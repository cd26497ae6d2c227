package cmdutil

import "github.com/spf13/cobra"

// UsageArgs wraps a cobra positional-argument check so that a wrong number of arguments is a
// usage error (exit 2), as a bad flag is. cobra's own checks return plain errors, which would
// exit 1 like a failure of the command itself.
func UsageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &FlagError{err: err}
		}
		return nil
	}
}
