package sandbox

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/buildinfo"
	"github.com/come2us/opsctl/pkg/cmdutil"
)

// NewCmdStandalone returns the sandbox command as the root of its own binary, opsctl-sandbox,
// which `opsctl sandbox` runs: the same flags, plus opsctl's global --config (a config file the
// sandbox also writes its context into), and help and examples that read "opsctl sandbox" as users
// type it.
func NewCmdStandalone(f *cmdutil.Factory, runTUI TUIFunc) *cobra.Command {
	cmd := NewCmdSandbox(f, runTUI, nil)
	cmd.Use = "opsctl-sandbox"
	cmd.Version = buildinfo.Get().String()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.Example = strings.TrimRight(cmd.Example, "\n") + `

  # Without opsctl: this binary is what "opsctl sandbox" runs
  opsctl-sandbox --headless`
	cmd.PersistentFlags().StringVar(&f.ConfigPath, "config", f.ConfigPath, "also write the sandbox context into this config file (taken out again on exit); by default only the sandbox's own STATE/opsctl.yaml holds it")
	return cmd
}
