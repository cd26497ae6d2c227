// Package man implements the hidden `opsctl man --dir DIR`, which writes one man page per command
// for release archives and packages.
package man

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// NewCmdMan returns the hidden man-page generator.
func NewCmdMan() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:    "man",
		Short:  "Write man pages for every command into a directory",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			return doc.GenManTree(root, &doc.GenManHeader{Title: "OPSCTL", Section: "1", Source: "opsctl"}, dir)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "man", "directory to write the pages into")
	return cmd
}
