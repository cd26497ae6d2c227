package apps

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/cmdutil"
)

// WaitOptions are the inputs of `opsctl apps wait`.
type WaitOptions struct {
	Factory *cmdutil.Factory
	Client  ClientFunc

	Name         string
	Sync         bool
	Health       bool
	Operation    bool
	Revision     string
	FailDegraded bool
	Timeout      time.Duration
}

// NewCmdWait returns `opsctl apps wait NAME`.
func NewCmdWait(f *cmdutil.Factory, client ClientFunc, runF func(*WaitOptions) error) *cobra.Command {
	opts := &WaitOptions{Factory: f, Client: client}
	cmd := &cobra.Command{
		Use:   "wait NAME",
		Short: "Wait until an application is synced and/or healthy",
		Long: `Wait until an application meets the given conditions. With none of --sync, --health,
--operation and --revision, waits for all of Synced, Healthy and no running operation.

Exits 1 with one line when the timeout passes (naming the conditions that did not arrive), when a
sync operation fails, or with --fail-degraded when the application turns Degraded.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if opts.Timeout <= 0 {
				return cmdutil.FlagErrorf("--timeout must be positive, got %s", opts.Timeout)
			}
			if runF != nil {
				return runF(opts)
			}
			return waitRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.Sync, "sync", false, "wait for sync status Synced")
	fl.BoolVar(&opts.Health, "health", false, "wait for health Healthy")
	fl.BoolVar(&opts.Operation, "operation", false, "wait until no operation is running")
	fl.StringVar(&opts.Revision, "revision", "", "wait until Argo CD reports this git revision")
	fl.BoolVar(&opts.FailDegraded, "fail-degraded", false, "stop as soon as the synced application is Degraded")
	fl.DurationVar(&opts.Timeout, "timeout", argocd.DefaultWaitTimeout, "how long to wait")
	return cmd
}

func waitRun(ctx context.Context, opts *WaitOptions) error {
	f := opts.Factory
	want := argocd.WaitFor{Synced: opts.Sync, Healthy: opts.Health, OperationDone: opts.Operation,
		Revision: opts.Revision, FailOnDegraded: opts.FailDegraded, Timeout: opts.Timeout}
	var app argocd.App
	err := withClient(ctx, opts.Client, func(c argocd.Apps) error {
		var err error
		app, err = argocd.Wait(ctx, c, opts.Name, want)
		return err
	})
	if err != nil {
		return err
	}
	return f.Write(app, func(w io.Writer) error { return writeSettled(w, app) })
}
