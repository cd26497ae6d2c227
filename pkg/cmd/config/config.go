// Package config implements `opsctl config`: list contexts, switch the current one, and show the
// resolved configuration with secrets masked.
package config

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/secret"
)

// NewCmdConfig returns `opsctl config`.
func NewCmdConfig(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Show and select contexts"}
	cmd.AddCommand(&cobra.Command{
		Use:   "get-contexts",
		Short: "List the contexts of the config file",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			type row struct {
				Name      string   `json:"name"`
				Current   bool     `json:"current"`
				Brokers   []string `json:"brokers"`
				Readonly  bool     `json:"readonly"`
				Simulated bool     `json:"simulated"`
			}
			var rows []row
			for _, n := range cfg.Names() {
				c := cfg.Contexts[n]
				rows = append(rows, row{n, n == cfg.CurrentContext, c.Kafka.Brokers, c.Readonly, c.Simulated})
			}
			return f.Write(rows, func(w io.Writer) error {
				t := f.NewTable(w, "CURRENT", "NAME", "BROKERS", "READONLY")
				for _, r := range rows {
					cur := ""
					if r.Current {
						cur = "*"
					}
					name := r.Name
					if r.Simulated {
						name += " (simulated)"
					}
					t.Row(cur, name, fmt.Sprint(r.Brokers), fmt.Sprint(r.Readonly))
				}
				return t.Flush()
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "use-context NAME",
		Short: "Set the current context",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			if _, ok := cfg.Contexts[args[0]]; !ok {
				return fmt.Errorf("context %q is not in %s; nothing was changed", args[0], cfg.File())
			}
			cfg.CurrentContext = args[0]
			if err := cfg.Save(); err != nil {
				return err
			}
			fmt.Fprintf(f.IOStreams.Out, "Switched to context %q.\n", args[0])
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "view",
		Short: "Show the selected context as opsctl resolved it, secrets masked",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			name, ctx, err := f.Context()
			if err != nil {
				return err
			}
			c := *ctx
			c.Kafka.SASL.Password = secret.Mask(c.Kafka.SASL.Password)
			c.ArgoCD.Token = secret.Mask(c.ArgoCD.Token)
			out := map[string]any{"context": name, "readonly": f.Readonly, "settings": c}
			if f.Output == cmdutil.OutputJSON {
				return cmdutil.WriteJSON(f.IOStreams.Out, out)
			}
			return cmdutil.WriteYAML(f.IOStreams.Out, out)
		},
	})
	return cmd
}
