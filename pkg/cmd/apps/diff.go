package apps

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/termsafe"
)

// DiffOptions are the inputs of `opsctl apps diff`.
type DiffOptions struct {
	Factory *cmdutil.Factory
	Client  ClientFunc

	Name string
	// Manifests prints every object's state (git's, or the cluster's with Live) instead of the
	// differences.
	Manifests bool
	Live      bool
}

// NewCmdDiff returns `opsctl apps diff NAME`.
func NewCmdDiff(f *cmdutil.Factory, client ClientFunc, runF func(*DiffOptions) error) *cobra.Command {
	opts := &DiffOptions{Factory: f, Client: client}
	cmd := &cobra.Command{
		Use:   "diff NAME",
		Short: "Show how an application's objects in the cluster differ from git",
		Long: `Show, per object the application manages, the unified diff from the state git renders to
the state in the cluster, both as Argo CD normalises them (its ignoreDifferences applied), as
argocd app diff compares them. --manifests prints every object's YAML instead: git's, or the
cluster's with --live. -o json gives both states of every object.

Needs argocd-server (core mode has no rendered manifests).`,
		Args: cmdutil.UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if opts.Live && !opts.Manifests {
				return cmdutil.FlagErrorf("--live goes with --manifests")
			}
			if runF != nil {
				return runF(opts)
			}
			return diffRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Manifests, "manifests", false, "print every object's YAML instead of the differences")
	cmd.Flags().BoolVar(&opts.Live, "live", false, "with --manifests: the cluster's state instead of git's")
	return cmd
}

func diffRun(ctx context.Context, opts *DiffOptions) error {
	f := opts.Factory
	var rs []argocd.ManagedResource
	err := withClient(ctx, opts.Client, func(c argocd.Apps) error {
		var err error
		rs, err = c.ManagedResources(ctx, opts.Name)
		return err
	})
	if err != nil {
		return err
	}
	if rs == nil {
		rs = []argocd.ManagedResource{}
	}
	return f.Write(rs, func(w io.Writer) error {
		if opts.Manifests {
			for i, r := range rs {
				doc := r.Target
				if opts.Live {
					doc = r.Live
				}
				if i > 0 {
					fmt.Fprintln(w, "---")
				}
				fmt.Fprintf(w, "# %s\n%s", termsafe.String(r.Ref()), termsafe.Block(doc))
			}
			return nil
		}
		n := 0
		for _, r := range rs {
			if d := r.Diff(); d != "" {
				n++
				fmt.Fprint(w, termsafe.Block(d))
			}
		}
		_, err := fmt.Fprintf(w, "%d of %d objects of %s differ from git\n", n, len(rs), termsafe.String(opts.Name))
		return err
	})
}
