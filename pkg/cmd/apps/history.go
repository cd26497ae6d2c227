package apps

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/termsafe"
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
		Short: "Show an application's sync history: which revision was deployed when, by whom, and its commit",
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
	var history []argocd.Deployment
	err := withClient(ctx, opts.Client, func(c argocd.Apps) error {
		app, err := c.Get(ctx, opts.Name)
		if err != nil {
			return err
		}
		// Commit messages say what each deployment was; without them (core mode, a revision
		// gone from git) the history is still shown, with a note.
		var cerr error
		history, cerr = argocd.WithCommits(ctx, c, opts.Name, app.History)
		if cerr != nil && ctx.Err() == nil {
			fmt.Fprintf(f.IOStreams.ErrOut, "note: commit messages: %s\n", termsafe.Line(cerr.Error()))
		}
		return ctx.Err()
	})
	if err != nil {
		return err
	}
	if history == nil {
		history = []argocd.Deployment{}
	}
	return f.Write(history, func(w io.Writer) error {
		t := f.NewTable(w, "ID", "DEPLOYED", "REVISION", "BY", "COMMIT", "SOURCE")
		for _, d := range history {
			commit := "-"
			if d.Commit != nil {
				commit = d.Commit.Subject()
			}
			t.Row(itoa(d.ID), d.DeployedAt.Format(time.RFC3339), termsafe.Dash(argocd.ShortRevision(d.Revision)), termsafe.Dash(d.InitiatedBy), commit, d.Source)
		}
		return t.Flush()
	})
}
