package dlt

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/replay"
)

// StatsOptions are the inputs of `opsctl dlt stats`.
type StatsOptions struct {
	Factory *cmdutil.Factory
	Session
	Topic     string
	Selection SelectionFlags
}

// NewCmdStats returns `opsctl dlt stats TOPIC`.
func NewCmdStats(f *cmdutil.Factory, runF func(*StatsOptions) error) *cobra.Command {
	opts := &StatsOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "stats TOPIC",
		Short: "Group a dead-letter topic's records by errorSource × errorCode",
		Long: `Read a dead-letter topic (streaming, in bounded memory) and group its records by error
source and error code — from the value's errorSource/errorCode fields, or from Spring's
kafka_dlt-exception-* or Connect's __connect.errors.* headers — with counts, first and last
seen, and the coordinate of one sample record per group (see it with 'opsctl dlt show').

For each group it also says how many of its dead letters the replay ledger records as replayed
and how many of those came back to the topic (a dead letter naming them in
x-opsctl-replayed-from). A group most of whose replays came back is marked "replay does not
help": fix the cause before replaying the rest.`,
		Example: `  opsctl dlt stats orders-failed.DLT
  opsctl dlt stats orders-failed.DLT --since 24h -o json`,
		Args: cmdutil.UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Topic = args[0]
			opts.Selection.changed(cmd)
			if err := opts.Session.read(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return statsRun(cmd.Context(), opts)
		},
	}
	opts.Selection.register(cmd, "stop after this many selected records (0: all)")
	return cmd
}

func statsRun(ctx context.Context, opts *StatsOptions) error {
	f := opts.Factory
	sel, err := opts.Selection.Build(clock(f)())
	if err != nil {
		return err
	}
	if w := sinceWarning(sel, clock(f)()); w != "" {
		fmt.Fprintln(f.IOStreams.ErrOut, w)
	}
	s, err := openSession(f, opts.Session)
	if err != nil {
		return err
	}
	defer s.Close()
	st, err := s.engine.Stats(ctx, opts.Topic, &sel)
	if err != nil {
		return engineError(err)
	}
	printWhereWarnings(f.IOStreams.ErrOut, st.WhereErrors, st.FirstWhereError, st.WhereMissing)
	return write(f, st, func(w io.Writer) error {
		groups := len(st.Groups)
		if st.Other != nil {
			groups++
		}
		fmt.Fprintf(w, "%s: %s in %s (%d scanned)\n\n", sanitize(st.Topic), plural(st.Selected, "record"), plural(int64(groups), "group"), st.Scanned)
		t := f.NewTable(w, "ERROR SOURCE", "ERROR CODE", "COUNT", "FIRST SEEN", "LAST SEEN", "REPLAYED", "CAME BACK", "SAMPLE", "SAMPLE MESSAGE")
		rows := st.Groups
		if st.Other != nil {
			rows = append(rows, *st.Other)
		}
		for _, g := range rows {
			t.Row(g.ErrorSource, g.ErrorCode, fmt.Sprint(g.Count), stamp(g.FirstSeen), stamp(g.LastSeen),
				countCell(g.Replayed), cameBackCell(g), fmt.Sprintf("%d/%d", g.Sample.Partition, g.Sample.Offset), truncate(g.SampleMessage, 60))
		}
		return t.Flush()
	})
}

// countCell shows a count, "-" for none.
func countCell(n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

// cameBackCell shows how many of a group's replays came back, and says so when replaying that
// error does not help.
func cameBackCell(g replay.Group) string {
	if g.Replayed == 0 {
		return "-"
	}
	cell := fmt.Sprint(g.FailedAgain)
	if g.ReplayDoesNotHelp {
		cell += " (replay does not help)"
	}
	return cell
}
