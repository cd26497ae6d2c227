package apps

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/termsafe"
)

// WatchOptions are the inputs of `opsctl apps watch` and `apps list --watch`.
type WatchOptions struct {
	Factory *cmdutil.Factory
	Client  ClientFunc

	// Name limits the watch to one application; empty watches all.
	Name string
}

// NewCmdWatch returns `opsctl apps watch [NAME]`.
func NewCmdWatch(f *cmdutil.Factory, client ClientFunc, runF func(*WatchOptions) error) *cobra.Command {
	opts := &WatchOptions{Factory: f, Client: client}
	return &cobra.Command{
		Use:   "watch [NAME]",
		Short: "Stream application changes (sync, health, revision, operation) until interrupted",
		Long: `Print the current state of every application (or of NAME), then one line whenever the
sync status, health, revision or running operation of one changes, until interrupted.
With -o json, prints one JSON event per line.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Name = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return watchRun(cmd.Context(), opts)
		},
	}
}

// watchColumns are the fixed widths of the streamed lines (a tabwriter cannot align lines
// printed one at a time).
const watchFormat = "%-20s  %-28s  %-9s  %-11s  %-8s  %s\n"

func watchRun(ctx context.Context, opts *WatchOptions) error {
	f := opts.Factory
	out := f.IOStreams.Out
	json := f.Output == cmdutil.OutputJSON
	if f.Output == cmdutil.OutputYAML {
		return cmdutil.FlagErrorf("watch streams table or json lines; -o yaml is not supported")
	}
	if !json {
		fmt.Fprint(out, strings.TrimRight(fmt.Sprintf(watchFormat, "TIME", "NAME", "SYNC", "HEALTH", "REVISION", "OPERATION"), " \n")+"\n")
	}
	last := map[string]string{}
	return withClient(ctx, opts.Client, func(c argocd.Apps) error {
		return c.Watch(ctx, opts.Name, func(ev argocd.Event) error {
			a := ev.App
			row := []string{a.Sync, a.Health, argocd.ShortRevision(a.Revision), a.Operation.Summary()}
			key := ev.Type + "\x00" + strings.Join(row, "\x00")
			if ev.Type == argocd.EventModified {
				key = argocd.EventAdded + "\x00" + strings.Join(row, "\x00")
			}
			// Argo CD sends an event for every reconciliation; print only what an operator sees change.
			if last[a.Name] == key {
				return nil
			}
			last[a.Name] = key
			if json {
				return cmdutil.WriteNDJSON(out, ev)
			}
			name := a.Name
			if ev.Type == argocd.EventDeleted {
				name += " (deleted)"
			}
			line := fmt.Sprintf(watchFormat, now(f).UTC().Format("2006-01-02T15:04:05Z"),
				termsafe.Truncate(name, 28), termsafe.String(a.Sync), termsafe.String(a.Health),
				termsafe.String(termsafe.Dash(argocd.ShortRevision(a.Revision))), termsafe.String(a.Operation.Summary()))
			_, err := io.WriteString(out, strings.TrimRight(line, " \n")+"\n")
			return err
		})
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
