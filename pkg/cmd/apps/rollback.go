package apps

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/termsafe"
)

// RollbackOptions are the inputs of `opsctl apps rollback`.
type RollbackOptions struct {
	Factory *cmdutil.Factory
	Client  ClientFunc

	Name    string
	ID      int64
	Prune   bool
	DryRun  bool
	Yes     bool
	Wait    bool
	Timeout time.Duration
}

// NewCmdRollback returns `opsctl apps rollback NAME ID`.
func NewCmdRollback(f *cmdutil.Factory, client ClientFunc, runF func(*RollbackOptions) error) *cobra.Command {
	opts := &RollbackOptions{Factory: f, Client: client}
	cmd := &cobra.Command{
		Use:   "rollback NAME ID",
		Short: "Redeploy the revision of an entry of an application's sync history",
		Long: `Ask Argo CD to redeploy the revision of entry ID of the application's sync history
(opsctl apps history NAME lists them), as argocd app rollback does.

Argo CD refuses a rollback while the application syncs automatically — it would sync straight
back to git — and so does opsctl, before asking: roll back in git instead (a revert, or
opsctl canary rollback for a canary), or turn auto-sync off first.

Refused under --readonly; asks for confirmation on a terminal unless --yes.`,
		Example: `  opsctl apps history order-service-prod
  opsctl apps rollback order-service-prod 41 --wait`,
		Args: cmdutil.UsageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			id, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || id < 0 {
				return cmdutil.FlagErrorf("ID must be a history entry's number (see opsctl apps history %s), got %q", args[0], args[1])
			}
			opts.ID = id
			if opts.Timeout <= 0 {
				return cmdutil.FlagErrorf("--timeout must be positive, got %s", opts.Timeout)
			}
			if runF != nil {
				return runF(opts)
			}
			return rollbackRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.Prune, "prune", false, "delete resources that the entry's revision does not have")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "let Argo CD validate the rollback without changing the cluster")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&opts.Wait, "wait", false, "wait until the application is Healthy at the entry's revision")
	fl.DurationVar(&opts.Timeout, "timeout", argocd.DefaultWaitTimeout, "how long --wait waits")
	return cmd
}

func rollbackRun(ctx context.Context, opts *RollbackOptions) error {
	f := opts.Factory
	if err := f.CheckWritable(); err != nil {
		return err
	}
	name := termsafe.String(opts.Name)
	return withClient(ctx, opts.Client, func(c argocd.Apps) error {
		// The checks Argo CD would make, before asking: auto-sync, and that the entry exists.
		a, err := c.Get(ctx, opts.Name)
		if err != nil {
			return err
		}
		if err := argocd.CheckRollback(a, opts.ID); err != nil {
			return err
		}
		var entry argocd.Deployment
		for _, h := range a.History {
			if h.ID == opts.ID {
				entry = h
			}
		}
		what := fmt.Sprintf("%s to history entry %d (revision %s, deployed %s)", name, opts.ID,
			termsafe.String(argocd.ShortRevision(entry.Revision)), entry.DeployedAt.UTC().Format(time.RFC3339))
		if err := f.Confirm(fmt.Sprintf("Roll back %s?", what), opts.Yes); err != nil {
			return err
		}
		app, err := c.Rollback(ctx, opts.Name, opts.ID, argocd.RollbackOptions{Prune: opts.Prune, DryRun: opts.DryRun})
		if err != nil {
			return err
		}
		if !opts.Wait {
			return f.Write(app, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Rollback of %s requested. Follow it with: opsctl apps wait %s\n", what, name)
				return err
			})
		}
		fmt.Fprintf(f.IOStreams.ErrOut, "Rollback of %s requested; waiting up to %s.\n", what, opts.Timeout)
		app, err = argocd.Wait(ctx, c, opts.Name, argocd.WaitFor{Healthy: true, OperationDone: true, Revision: entry.Revision, Timeout: opts.Timeout})
		if err != nil {
			return err
		}
		return f.Write(app, func(w io.Writer) error { return writeSettled(w, app) })
	})
}
