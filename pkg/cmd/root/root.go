// Package root assembles the opsctl command tree: global flags, every command noun, and the
// mapping from errors to exit codes.
package root

import (
	"github.com/spf13/cobra"

	agentcmd "github.com/come2us/opsctl/pkg/cmd/agent"
	appscmd "github.com/come2us/opsctl/pkg/cmd/apps"
	canarycmd "github.com/come2us/opsctl/pkg/cmd/canary"
	configcmd "github.com/come2us/opsctl/pkg/cmd/config"
	dltcmd "github.com/come2us/opsctl/pkg/cmd/dlt"
	externalcmd "github.com/come2us/opsctl/pkg/cmd/external"
	mancmd "github.com/come2us/opsctl/pkg/cmd/man"
	tuicmd "github.com/come2us/opsctl/pkg/cmd/tui"
	versioncmd "github.com/come2us/opsctl/pkg/cmd/version"
	"github.com/come2us/opsctl/pkg/cmdutil"
)

// NewCmdRoot returns the `opsctl` command with every subcommand attached.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "opsctl <command>",
		Short: "On-call console for the COME2US platform: dead letters, canaries, Argo CD",
		Long: `opsctl is the on-call engineer's tool for the COME2US SAGA platform:

  dlt      browse, group and replay Kafka dead-letter topics, exactly once
  canary   shift Istio canary weights by committing to the GitOps repo, with gates and rollback
  apps     see and drive Argo CD applications
  agent    the in-cluster agent: automatic redrive of transient dead letters, DLT metrics
  sandbox  run the whole platform, simulated, on this machine
  tui      the terminal console over all of it (also: opsctl with no command, on a terminal)

Contexts in ~/.config/opsctl/config.yaml name each environment's Kafka, GitOps repo, Argo CD,
kube context and Prometheus.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return cmdutil.ValidateOutput(f.Output)
		},
		// With no command on a terminal, opsctl opens the TUI; elsewhere (a pipe, a script, CI)
		// it prints this help, as before.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cmdutil.FlagErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.IOStreams.IsStdinTTY() && f.IOStreams.IsStdoutTTY() {
				return tuicmd.Run(cmd.Context(), f)
			}
			return cmd.Help()
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cmdutil.FlagErrorf("%v", err) })

	pf := cmd.PersistentFlags()
	pf.StringVar(&f.ConfigPath, "config", f.ConfigPath, "config file (default $OPSCTL_CONFIG or ~/.config/opsctl/config.yaml)")
	pf.StringVar(&f.ContextName, "context", f.ContextName, "named context from the config file (default: current-context)")
	pf.StringSliceVar(&f.Brokers, "brokers", nil, "Kafka bootstrap brokers, overriding the context (host:port,...)")
	pf.StringVarP(&f.Output, "output", "o", cmdutil.OutputTable, "output format: table, json or yaml")
	pf.BoolVar(&f.Readonly, "readonly", false, "refuse every command that would change anything")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("context", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		cfg, err := f.Config()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return cfg.Names(), cobra.ShellCompDirectiveNoFileComp
	})

	cmd.AddCommand(
		versioncmd.NewCmdVersion(f),
		configcmd.NewCmdConfig(f),
		mancmd.NewCmdMan(),
		dltcmd.NewCmdDLT(f),
		canarycmd.NewCmdCanary(f),
		appscmd.NewCmdApps(f),
		agentcmd.NewCmdAgent(f, nil),
	)
	cmd.AddCommand(tuicmd.NewCmdTUI(f, nil))
	// The sandbox is a binary of its own (cmd/opsctl-sandbox): it links the services and the
	// simulators, which the console does not need.
	cmd.AddCommand(externalcmd.NewCmd(f, "sandbox", "Run the whole platform on this machine, simulated, and work on it",
		"install it beside opsctl (go install ./cmd/opsctl-sandbox, or from the release archive), or run it from a checkout: go run ./cmd/opsctl-sandbox", nil))
	return cmd
}
