// Package config implements `opsctl config`: list contexts, switch the current one, and show the
// resolved configuration with secrets masked.
package config

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/secret"
	"github.com/come2us/opsctl/pkg/termsafe"
)

// NewCmdConfig returns `opsctl config`.
func NewCmdConfig(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Show and select contexts"}
	cmd.AddCommand(NewCmdGetContexts(f, nil), NewCmdUseContext(f, nil), NewCmdView(f, nil))
	return cmd
}

// GetContextsOptions are the inputs of `config get-contexts`.
type GetContextsOptions struct {
	Factory *cmdutil.Factory
}

// NewCmdGetContexts returns `config get-contexts`; runF replaces the run in tests.
func NewCmdGetContexts(f *cmdutil.Factory, runF func(*GetContextsOptions) error) *cobra.Command {
	opts := &GetContextsOptions{Factory: f}
	return &cobra.Command{
		Use:   "get-contexts",
		Short: "List the contexts of the config file",
		Args:  cmdutil.UsageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return getContextsRun(opts)
		},
	}
}

// contextRow is one line of get-contexts, and its JSON shape.
type contextRow struct {
	Name      string   `json:"name"`
	Current   bool     `json:"current"`
	Brokers   []string `json:"brokers"`
	Readonly  bool     `json:"readonly"`
	Simulated bool     `json:"simulated"`
}

func getContextsRun(opts *GetContextsOptions) error {
	f := opts.Factory
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	rows := make([]contextRow, 0, len(cfg.Contexts))
	for _, n := range cfg.Names() {
		c := cfg.Contexts[n]
		rows = append(rows, contextRow{n, n == cfg.CurrentContext, c.Kafka.Brokers, c.Readonly, c.Simulated})
	}
	return f.Write(rows, func(w io.Writer) error {
		t := f.NewTable(w, "CURRENT", "NAME", "BROKERS", "READONLY")
		for _, r := range rows {
			cur := ""
			if r.Current {
				cur = "*"
			}
			name := termsafe.String(r.Name)
			if r.Simulated {
				name += " (simulated)"
			}
			t.Row(cur, name, termsafe.String(fmt.Sprint(r.Brokers)), fmt.Sprint(r.Readonly))
		}
		return t.Flush()
	})
}

// UseContextOptions are the inputs of `config use-context`.
type UseContextOptions struct {
	Factory *cmdutil.Factory
	Name    string
}

// NewCmdUseContext returns `config use-context NAME`; runF replaces the run in tests.
func NewCmdUseContext(f *cmdutil.Factory, runF func(*UseContextOptions) error) *cobra.Command {
	opts := &UseContextOptions{Factory: f}
	return &cobra.Command{
		Use:   "use-context NAME",
		Short: "Set the current context (the rest of the file is kept as written)",
		Args:  cmdutil.UsageArgs(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(opts)
			}
			return useContextRun(opts)
		},
	}
}

func useContextRun(opts *UseContextOptions) error {
	f := opts.Factory
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	if _, ok := cfg.Contexts[opts.Name]; !ok {
		return fmt.Errorf("context %q is not in %s (known: %v); nothing was changed", termsafe.String(opts.Name), cfg.File(), cfg.Names())
	}
	cfg.CurrentContext = opts.Name
	if err := cfg.Save(); err != nil {
		return err
	}
	fmt.Fprintf(f.IOStreams.Out, "Switched to context %q.\n", opts.Name)
	return nil
}

// ViewOptions are the inputs of `config view`.
type ViewOptions struct {
	Factory *cmdutil.Factory
}

// NewCmdView returns `config view`; runF replaces the run in tests.
func NewCmdView(f *cmdutil.Factory, runF func(*ViewOptions) error) *cobra.Command {
	opts := &ViewOptions{Factory: f}
	return &cobra.Command{
		Use:   "view",
		Short: "Show the selected context as opsctl resolved it, secrets masked",
		Args:  cmdutil.UsageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return viewRun(opts)
		},
	}
}

func viewRun(opts *ViewOptions) error {
	f := opts.Factory
	name, ctx, err := f.Context()
	if err != nil {
		return err
	}
	c := *ctx
	c.Kafka.SASL.Password = secret.Mask(c.Kafka.SASL.Password)
	c.ArgoCD.Token = secret.Mask(c.ArgoCD.Token)
	out := struct {
		Context  string         `json:"context" yaml:"context"`
		Readonly bool           `json:"readonly" yaml:"readonly"`
		Settings config.Context `json:"settings" yaml:"settings"`
	}{name, f.Readonly, c}
	if f.Output == cmdutil.OutputJSON {
		return cmdutil.WriteJSON(f.IOStreams.Out, out)
	}
	return cmdutil.WriteYAML(f.IOStreams.Out, out)
}
