package dlt

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/replay"
)

// HistoryOptions are the inputs of `opsctl dlt history`.
type HistoryOptions struct {
	Factory *cmdutil.Factory
	Session
	// Topic limits the history to one DLT; "" shows every DLT's runs.
	Topic string
	Limit int
}

// NewCmdHistory returns `opsctl dlt history [TOPIC]`.
func NewCmdHistory(f *cmdutil.Factory, runF func(*HistoryOptions) error) *cobra.Command {
	opts := &HistoryOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "history [TOPIC]",
		Short: "Show replay runs from the ledger: who, when, how many, why, and what became of them",
		Long: `Show the replay runs the ledger records, newest first: when each started, who ran it
(user@host), the DLT, its outcome, how many records it replayed, skipped, refused and failed,
and the reason given. A run that was killed shows status "running" with the replays the ledger
holds for it. A run of a DLT that was deleted since (and perhaps created again: a new topic of
the same name, whose records are others) is marked "(deleted since)".

What became of each run's records: CAME BACK counts the replayed records that failed again and
are back in a dead-letter topic (they carry the run's x-opsctl-replay-id), with their new
error code; CONSUMED shows, for the consumer group furthest behind on the run's target topics
(or the run's --group), how many of the replayed records lie below its committed offsets.
'opsctl dlt outcome RUN' shows one run's in full.`,
		Args: cmdutil.UsageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Topic = args[0]
			}
			if opts.Limit < 0 {
				return cmdutil.FlagErrorf("--limit must not be negative")
			}
			if err := opts.Session.read(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return historyRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVar(&opts.Limit, "limit", 50, "show at most this many runs (0: all)")
	return cmd
}

func historyRun(ctx context.Context, opts *HistoryOptions) error {
	f := opts.Factory
	s, err := openSession(f, opts.Session)
	if err != nil {
		return err
	}
	defer s.Close()
	runs, err := s.engine.History(ctx, opts.Topic)
	if err != nil {
		return engineError(err)
	}
	if opts.Limit > 0 && len(runs) > opts.Limit {
		runs = runs[:opts.Limit]
	}
	outcomes, err := s.engine.Outcomes(ctx, runs)
	if err != nil {
		return engineError(fmt.Errorf("read what became of the replayed records: %w", err))
	}
	rows := make([]historyRow, len(runs))
	for i, r := range runs {
		rows[i] = historyRow{Run: r, Outcome: outcomes[r.RunID]}
	}
	return write(f, rows, func(w io.Writer) error {
		t := f.NewTable(w, "STARTED", "RUN", "DLT", "ACTOR", "STATUS", "REPLAYED", "SKIPPED", "REFUSED", "FAILED", "CAME BACK", "CONSUMED", "REASON")
		for _, row := range rows {
			r := row.Run
			dltName := r.DLT
			if r.Recreated {
				// The run read a topic of that name that has been deleted since: its records
				// are gone, and the DLT there now is another.
				dltName += " (deleted since)"
			}
			t.Row(stamp(r.Started), r.RunID, dltName, r.Actor, paint(f, statusColor(r.Status), r.Status), fmt.Sprint(r.Counts.Replayed),
				fmt.Sprint(r.Counts.Skipped), fmt.Sprint(r.Counts.Refused), fmt.Sprint(r.Counts.Failed),
				cameBackSummary(row.Outcome), consumedSummary(row.Outcome), truncate(r.Reason, 60))
		}
		return t.Flush()
	})
}

// historyRow is one run in `dlt history`, with what became of its records.
type historyRow struct {
	replay.Run
	Outcome *replay.Outcome `json:"outcome,omitempty"`
}

// cameBackSummary is a history cell: how many replayed records came back, and their most
// frequent new error code.
func cameBackSummary(o *replay.Outcome) string {
	if o == nil || o.Replayed == 0 {
		return "-"
	}
	if o.CameBack == 0 {
		return "0"
	}
	top := o.ByError[0]
	cell := fmt.Sprintf("%d %s", o.CameBack, top.ErrorCode)
	if n := len(o.ByError) - 1; n > 0 {
		cell += fmt.Sprintf(" +%d more", n)
	}
	return truncate(cell, 48)
}

// consumedSummary is a history cell: of the replayed records, how many the consumer group
// that matters has read — the run's --group, else the group furthest behind.
func consumedSummary(o *replay.Outcome) string {
	if o == nil || o.Replayed == 0 {
		return "-"
	}
	g, of, ok := o.Slowest()
	if !ok {
		return "no group yet"
	}
	return truncate(fmt.Sprintf("%d/%d %s", g.Consumed, of, g.Group), 48)
}
