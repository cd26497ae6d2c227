package apps

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/cmdutil"
)

// HistoryOptions are the inputs of `opsctl apps history`.
type HistoryOptions struct {
	Factory *cmdutil.Factory
	Client  ClientFunc

	Name string
}

// NewCmdHistory returns `opsctl apps history NAME`.
func NewCmdHistory(f *cmdutil.Factory, client ClientFunc, runF func(*HistoryOptions) error) *cobra.Command {
	opts := &HistoryOptions{Factory: f, Client: client}
	return &cobra.Command{
		Use:   "history NAME",
		Short: "Show an application's sync history: which revision was deployed when, by whom",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(opts)
			}
			return historyRun(cmd.Context(), opts)
		},
	}
}

func historyRun(ctx context.Context, opts *HistoryOptions) error {
	f := opts.Factory
	var app argocd.App
	err := withClient(ctx, opts.Client, func(c argocd.Apps) error {
		var err error
		app, err = c.Get(ctx, opts.Name)
		return err
	})
	if err != nil {
		return err
	}
	history := app.History
	if history == nil {
		history = []argocd.Deployment{}
	}
	return f.Write(history, func(w io.Writer) error {
		t := f.NewTable(w, "ID", "DEPLOYED", "REVISION", "BY", "SOURCE")
		for _, d := range history {
			t.Row(itoa(d.ID), d.DeployedAt.Format(time.RFC3339), dash(argocd.ShortRevision(d.Revision)), dash(d.InitiatedBy), d.Source)
		}
		return t.Flush()
	})
}
