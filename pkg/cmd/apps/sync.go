package apps

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/termsafe"
)

// SyncOptions are the inputs of `opsctl apps sync`.
type SyncOptions struct {
	Factory *cmdutil.Factory
	Client  ClientFunc

	Name     string
	Revision string
	Prune    bool
	DryRun   bool
	Yes      bool
	Wait     bool
	Timeout  time.Duration
}

// NewCmdSync returns `opsctl apps sync NAME`.
func NewCmdSync(f *cmdutil.Factory, client ClientFunc, runF func(*SyncOptions) error) *cobra.Command {
	opts := &SyncOptions{Factory: f, Client: client}
	cmd := &cobra.Command{
		Use:   "sync NAME",
		Short: "Ask Argo CD to sync an application to git",
		Long: `Ask Argo CD to sync an application to its target revision in git.

--prune also deletes resources no longer in git; --dry-run lets Argo CD validate the sync
without changing the cluster. The command returns once Argo CD accepted the operation; --wait
follows it until the application is Synced and Healthy (or the operation fails).

Refused under --readonly; asks for confirmation on a terminal unless --yes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if opts.Timeout <= 0 {
				return cmdutil.FlagErrorf("--timeout must be positive, got %s", opts.Timeout)
			}
			if runF != nil {
				return runF(opts)
			}
			return syncRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.Prune, "prune", false, "delete resources that are no longer in git")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "let Argo CD validate the sync without changing the cluster")
	fl.StringVar(&opts.Revision, "revision", "", "sync to this git revision instead of the target revision")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&opts.Wait, "wait", false, "wait until the application is Synced and Healthy")
	fl.DurationVar(&opts.Timeout, "timeout", argocd.DefaultWaitTimeout, "how long --wait waits")
	return cmd
}

func (o *SyncOptions) describe() string {
	var flags []string
	if o.Revision != "" {
		flags = append(flags, "revision "+o.Revision)
	}
	if o.Prune {
		flags = append(flags, "prune")
	}
	if o.DryRun {
		flags = append(flags, "dry run")
	}
	if len(flags) == 0 {
		return ""
	}
	return " (" + strings.Join(flags, ", ") + ")"
}

func syncRun(ctx context.Context, opts *SyncOptions) error {
	f := opts.Factory
	// An Argo CD dry run still records an operation on the application, so it is a write too.
	if err := f.CheckWritable(); err != nil {
		return err
	}
	what := termsafe.String(opts.Name) + termsafe.String(opts.describe())
	if err := f.Confirm(fmt.Sprintf("Sync %s in Argo CD now?", what), opts.Yes); err != nil {
		return err
	}
	return withClient(ctx, opts.Client, func(c argocd.Apps) error {
		app, err := c.Sync(ctx, opts.Name, argocd.SyncOptions{Revision: opts.Revision, Prune: opts.Prune, DryRun: opts.DryRun})
		if err != nil {
			return err
		}
		if !opts.Wait {
			return f.Write(app, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Sync of %s requested. Follow it with: opsctl apps wait %s\n", what, termsafe.String(opts.Name))
				return err
			})
		}
		fmt.Fprintf(f.IOStreams.ErrOut, "Sync of %s requested; waiting up to %s.\n", what, opts.Timeout)
		app, err = argocd.Wait(ctx, c, opts.Name, argocd.WaitFor{Synced: true, Healthy: true, OperationDone: true, Revision: opts.Revision, Timeout: opts.Timeout})
		if err != nil {
			return err
		}
		return f.Write(app, func(w io.Writer) error { return writeSettled(w, app) })
	})
}

// writeSettled prints the one-line state of an application that reached what was awaited.
func writeSettled(w io.Writer, a argocd.App) error {
	_, err := fmt.Fprintf(w, "%s is %s and %s at %s\n", termsafe.String(a.Name), termsafe.String(a.Sync),
		termsafe.String(a.Health), termsafe.String(termsafe.Dash(argocd.ShortRevision(a.Revision))))
	return err
}
