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

// GetOptions are the inputs of `opsctl apps get`.
type GetOptions struct {
	Factory *cmdutil.Factory
	Client  ClientFunc

	Name    string
	Refresh bool
}

// NewCmdGet returns `opsctl apps get NAME`.
func NewCmdGet(f *cmdutil.Factory, client ClientFunc, runF func(*GetOptions) error) *cobra.Command {
	opts := &GetOptions{Factory: f, Client: client}
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show one application: source, sync, health, operation, conditions and resources",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(opts)
			}
			return getRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Refresh, "refresh", false, "ask Argo CD to compare with git again before answering")
	return cmd
}

func getRun(ctx context.Context, opts *GetOptions) error {
	f := opts.Factory
	var app argocd.App
	err := withClient(ctx, opts.Client, func(c argocd.Apps) error {
		var err error
		if opts.Refresh {
			app, err = c.Refresh(ctx, opts.Name, false)
		} else {
			app, err = c.Get(ctx, opts.Name)
		}
		return err
	})
	if err != nil {
		return err
	}
	return f.Write(app, func(w io.Writer) error { return writeApp(f, w, app, now(f)) })
}

func writeApp(f *cmdutil.Factory, w io.Writer, a argocd.App, at time.Time) error {
	src := a.RepoURL
	if a.Path != "" {
		src += "  " + a.Path
	}
	if a.Chart != "" {
		src += "  chart " + a.Chart
	}
	if a.TargetRevision != "" {
		src += " @ " + a.TargetRevision
	}
	sync := a.Sync
	if a.Revision != "" {
		sync += " at " + argocd.ShortRevision(a.Revision)
	}
	health := a.Health
	if a.HealthMessage != "" {
		health += ": " + a.HealthMessage
	}
	lastSync := "-"
	if a.LastSync != nil {
		lastSync = a.LastSync.Format(time.RFC3339) + " (" + ago(at, a.LastSync) + ")"
	}
	auto := "no"
	if a.AutoSync {
		auto = "yes"
	}
	fields := [][2]string{
		{"Name", a.Name},
		{"Project", a.Project},
		{"Source", src},
		{"Destination", a.DestServer + " / " + a.DestNamespace},
		{"Auto sync", auto},
		{"Sync", sync},
		{"Health", health},
		{"Last sync", lastSync},
		{"Operation", operationLine(a.Operation)},
	}
	if a.RefreshPending {
		fields = append(fields, [2]string{"Refresh", "requested, not yet picked up by the controller"})
	}
	for _, kv := range fields {
		if _, err := fmt.Fprintf(w, "%-13s%s\n", kv[0]+":", termsafe.String(kv[1])); err != nil {
			return err
		}
	}
	if len(a.Conditions) > 0 {
		fmt.Fprintln(w)
		t := f.NewTable(w, "CONDITION", "SINCE", "MESSAGE")
		for _, c := range a.Conditions {
			t.Row(c.Type, ago(at, c.Since), c.Message)
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	t := f.NewTable(w, "GROUP", "KIND", "NAMESPACE", "NAME", "SYNC", "HEALTH", "MESSAGE")
	for _, r := range a.Resources {
		sync := r.Sync
		if r.RequiresPruning {
			sync += " (prune)"
		}
		t.Row(termsafe.Dash(r.Group), r.Kind, termsafe.Dash(r.Namespace), r.Name, termsafe.Dash(sync), termsafe.Dash(r.Health), r.HealthMessage)
	}
	return t.Flush()
}

// operationLine describes the current or last operation for `apps get`.
func operationLine(op *argocd.Operation) string {
	if op == nil {
		return "-"
	}
	var parts []string
	parts = append(parts, "sync "+op.Phase)
	if op.Revision != "" {
		parts = append(parts, "to "+argocd.ShortRevision(op.Revision))
	}
	if op.InitiatedBy != "" {
		parts = append(parts, "by "+op.InitiatedBy)
	}
	var flags []string
	if op.Prune {
		flags = append(flags, "prune")
	}
	if op.DryRun {
		flags = append(flags, "dry run")
	}
	s := strings.Join(parts, " ")
	if len(flags) > 0 {
		s += " (" + strings.Join(flags, ", ") + ")"
	}
	if op.Message != "" {
		s += ": " + op.Message
	}
	return s
}
