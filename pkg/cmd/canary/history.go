package canary

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/gitops"
)

// HistoryOptions are the inputs of `opsctl canary history`.
type HistoryOptions struct {
	Factory *cmdutil.Factory
	Repo    RepoOptions
	Service string
	Env     string
	Limit   int
}

// NewCmdHistory returns `opsctl canary history [SERVICE] [--env ENV]`.
func NewCmdHistory(f *cmdutil.Factory, runF func(*HistoryOptions) error) *cobra.Command {
	opts := &HistoryOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "history [SERVICE]",
		Short: "List canary changes made through opsctl (from the commit trailers)",
		Example: `  opsctl canary history payment --env prod
  opsctl canary history --limit 50 -o json`,
		Args: maxArgs(1, "one SERVICE (order, payment or product)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Service = args[0]
				if err := validService(opts.Service); err != nil {
					return err
				}
			}
			if err := validEnv(opts.Env, false); err != nil {
				return err
			}
			if opts.Limit < 1 {
				return cmdutil.FlagErrorf("--limit must be at least 1")
			}
			if opts.Repo.Open == nil {
				opts.Repo.Open = openFromFactory(f, &opts.Repo)
			}
			if runF != nil {
				return runF(opts)
			}
			return historyRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Env, "env", "", "environment: dev or prod (default: both)")
	cmd.Flags().IntVar(&opts.Limit, "limit", 20, "most recent changes to show")
	addRepoFlags(cmd, &opts.Repo)
	return cmd
}

func historyRun(ctx context.Context, opts *HistoryOptions) error {
	f := opts.Factory
	repo, err := opts.Repo.Open(ctx)
	if err != nil {
		return err
	}
	defer repo.Close()
	entries, err := canary.New(repo).History(ctx, opts.Env, opts.Service, opts.Limit)
	if err != nil {
		return err
	}
	rows := make([]*changeJSON, 0, len(entries))
	for _, e := range entries {
		rows = append(rows, toChangeJSON(e))
	}
	return f.Write(rows, func(w io.Writer) error {
		now := f.Now()
		t := f.NewTable(w, "AGE", "COMMIT", "ENV", "SERVICE", "ACTION", "CHANGE", "AUTHOR", "REASON")
		for _, e := range entries {
			t.Row(age(now, e.Time), shortCommit(e.Commit), e.Env, e.Service, e.Action, transition(e), e.Author, e.Reason)
		}
		return t.Flush()
	})
}

// transition renders a change's From and To trailers as "off -> 1.1.0 @ 10%", adding the stable
// tag when it changed.
func transition(e gitops.Entry) string {
	from, err1 := gitops.ParseState(e.From)
	to, err2 := gitops.ParseState(e.To)
	if err1 != nil || err2 != nil {
		return e.From + " -> " + e.To
	}
	s := stateLabel(from) + " -> " + stateLabel(to)
	if from.StableTag != to.StableTag {
		s += fmt.Sprintf(", stable %s -> %s", from.StableTag, to.StableTag)
	}
	return s
}
