package dlt

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/cmdutil"
)

// HistoryOptions are the inputs of `opsctl dlt history`.
type HistoryOptions struct {
	Factory *cmdutil.Factory
	// Topic limits the history to one DLT; "" shows every DLT's runs.
	Topic string
	Limit int
}

// NewCmdHistory returns `opsctl dlt history [TOPIC]`.
func NewCmdHistory(f *cmdutil.Factory, runF func(*HistoryOptions) error) *cobra.Command {
	opts := &HistoryOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "history [TOPIC]",
		Short: "Show replay runs from the ledger: who, when, how many, why",
		Long: `Show the replay runs the ledger records, newest first: when each started, who ran it
(user@host), the DLT, its outcome, how many records it replayed, skipped, refused and failed,
and the reason given. A run that was killed shows status "running" with the replays the ledger
holds for it. A run of a DLT that was deleted since (and perhaps created again: a new topic of
the same name, whose records are others) is marked "(deleted since)".`,
		Args: cmdutil.UsageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Topic = args[0]
			}
			if opts.Limit < 0 {
				return cmdutil.FlagErrorf("--limit must not be negative")
			}
			if runF != nil {
				return runF(opts)
			}
			return historyRun(cmd, opts)
		},
	}
	cmd.Flags().IntVar(&opts.Limit, "limit", 50, "show at most this many runs (0: all)")
	return cmd
}

func historyRun(cmd *cobra.Command, opts *HistoryOptions) error {
	f := opts.Factory
	s, err := openSession(cmd, f)
	if err != nil {
		return err
	}
	defer s.Close()
	runs, err := s.engine.History(cmd.Context(), opts.Topic)
	if err != nil {
		return engineError(err)
	}
	if opts.Limit > 0 && len(runs) > opts.Limit {
		runs = runs[:opts.Limit]
	}
	return write(f, runs, func(w io.Writer) error {
		t := f.NewTable(w, "STARTED", "RUN", "DLT", "ACTOR", "STATUS", "REPLAYED", "SKIPPED", "REFUSED", "FAILED", "REASON")
		for _, r := range runs {
			dltName := r.DLT
			if r.Recreated {
				// The run read a topic of that name that has been deleted since: its records
				// are gone, and the DLT there now is another.
				dltName += " (deleted since)"
			}
			t.Row(stamp(r.Started), r.RunID, dltName, r.Actor, paint(f, statusColor(r.Status), r.Status), fmt.Sprint(r.Counts.Replayed),
				fmt.Sprint(r.Counts.Skipped), fmt.Sprint(r.Counts.Refused), fmt.Sprint(r.Counts.Failed), truncate(r.Reason, 60))
		}
		return t.Flush()
	})
}
