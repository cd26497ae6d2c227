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

// ListOptions are the inputs of `opsctl apps list`.
type ListOptions struct {
	Factory *cmdutil.Factory
	Client  ClientFunc

	// Watch keeps streaming changes after the list.
	Watch bool
}

// NewCmdList returns `opsctl apps list`.
func NewCmdList(f *cmdutil.Factory, client ClientFunc, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{Factory: f, Client: client}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List applications with their sync, health, revision, last sync and running operation",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			if opts.Watch {
				return watchRun(cmd.Context(), &WatchOptions{Factory: f, Client: client})
			}
			return listRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Watch, "watch", "w", false, "after the list, print every change as it happens (until interrupted)")
	return cmd
}

func listRun(ctx context.Context, opts *ListOptions) error {
	f := opts.Factory
	var list []argocd.App
	err := withClient(ctx, opts.Client, func(c argocd.Apps) error {
		var err error
		list, err = c.List(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if list == nil {
		list = []argocd.App{}
	}
	return f.Write(list, func(w io.Writer) error { return writeListTable(f, w, list, now(f)) })
}

// listHeader is the header of the application table.
var listHeader = []string{"NAME", "PROJECT", "SYNC", "HEALTH", "REVISION", "LAST SYNC", "OPERATION"}

func listRow(a argocd.App, at time.Time) []string {
	return []string{a.Name, a.Project, a.Sync, a.Health, termsafe.Dash(argocd.ShortRevision(a.Revision)), ago(at, a.LastSync), a.Operation.Summary()}
}

func writeListTable(f *cmdutil.Factory, w io.Writer, list []argocd.App, at time.Time) error {
	t := f.NewTable(w, listHeader...)
	for _, a := range list {
		t.Row(listRow(a, at)...) // Row sanitises every cell
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if len(list) == 0 {
		_, err := fmt.Fprintln(f.IOStreams.ErrOut, "No applications (check --project and the token's permissions).")
		return err
	}
	return nil
}
