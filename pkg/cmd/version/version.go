// Package version implements `opsctl version`.
package version

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/buildinfo"
	"github.com/come2us/opsctl/pkg/cmdutil"
)

// NewCmdVersion returns `opsctl version`.
func NewCmdVersion(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the opsctl version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			info := buildinfo.Get()
			return f.Write(info, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, "opsctl "+info.String())
				return err
			})
		},
	}
}
