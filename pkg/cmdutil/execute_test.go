package cmdutil

import (
	"errors"
	"testing"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/iostreams"
)

// TestErrorsKeepTheirLineBreaks: a multi-line error prints on several lines, not with a literal
// "\n", while terminal control sequences from the message stay neutralised.
func TestErrorsKeepTheirLineBreaks(t *testing.T) {
	ios, _, _, errOut := iostreams.Test()
	f := &Factory{IOStreams: ios}
	cmd := &cobra.Command{Use: "opsctl", SilenceErrors: true, SilenceUsage: true, RunE: func(*cobra.Command, []string) error {
		return errors.New("working copy has uncommitted changes in /w:\n M values.yaml\x1b[2J\ncommit or stash them first")
	}}
	cmd.SetArgs(nil)
	if code := Execute(t.Context(), cmd, f); code != ExitError {
		t.Fatalf("exit code %d", code)
	}
	want := "Error: working copy has uncommitted changes in /w:\n M values.yaml\\x1b[2J\ncommit or stash them first\n"
	if errOut.String() != want {
		t.Errorf("got  %q\nwant %q", errOut.String(), want)
	}
}
