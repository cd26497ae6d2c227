package dlt

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/replay"
)

// TopicsOptions are the inputs of `opsctl dlt topics`.
type TopicsOptions struct {
	Factory *cmdutil.Factory
	Session
}

// NewCmdTopics returns `opsctl dlt topics`. runF replaces the run in tests.
func NewCmdTopics(f *cmdutil.Factory, runF func(*TopicsOptions) error) *cobra.Command {
	opts := &TopicsOptions{Factory: f}
	return &cobra.Command{
		Use:   "topics",
		Short: "List dead-letter topics with counts, age and replays so far",
		Long: `List the dead-letter topics of the cluster (names matching the context's dlt.pattern,
by default ending in .DLT or -dlt): retained records, oldest and newest record time, records
of the last hour, how many of their records the replay ledger says were replayed, and the
consumer lag on each DLT's original topic (its name without the DLT suffix): the lag of every
consumer group reading that topic, summed; "-" when no group reads it or it does not exist.`,
		Args: cmdutil.UsageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.Session.read(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return topicsRun(cmd.Context(), opts)
		},
	}
}

func topicsRun(ctx context.Context, opts *TopicsOptions) error {
	f := opts.Factory
	s, err := openSession(f, opts.Session)
	if err != nil {
		return err
	}
	defer s.Close()
	topics, err := s.engine.Topics(ctx)
	if err != nil {
		return engineError(fmt.Errorf("list dead-letter topics: %w", err))
	}
	names := make([]string, len(topics))
	for i, ti := range topics {
		names[i] = ti.Topic
	}
	// The lag is read after the counts, so a cluster whose groups cannot be read still lists
	// its dead letters; the lag column then says it does not know, and stderr says why.
	lags, err := s.engine.OriginLags(ctx, names)
	if err != nil {
		fmt.Fprintf(f.IOStreams.ErrOut, "warning: consumer lag of the original topics not shown: %s\n", sanitize(err.Error()))
	}
	rows := make([]topicRow, len(topics))
	for i, ti := range topics {
		rows[i] = topicRow{TopicInfo: ti, OriginLag: lags[ti.Topic]}
	}
	return write(f, rows, func(w io.Writer) error {
		t := f.NewTable(w, "TOPIC", "PARTITIONS", "RECORDS", "OLDEST", "NEWEST", "LAST HOUR", "REPLAYED", "ORIGIN LAG")
		for _, r := range rows {
			t.Row(r.Topic, fmt.Sprint(r.Partitions), fmt.Sprint(r.Records), stampPtr(r.Oldest), stampPtr(r.Newest),
				fmt.Sprint(r.LastHour), fmt.Sprint(r.Replayed), originLagCell(r.OriginLag))
		}
		return t.Flush()
	})
}

// topicRow is one DLT in `dlt topics`, with the consumer lag on its original topic (null in
// JSON when the original topic does not exist or could not be read).
type topicRow struct {
	replay.TopicInfo
	OriginLag *replay.OriginLag `json:"originLag"`
}

// originLagCell is the ORIGIN LAG cell: the summed lag, "-" when unknown.
func originLagCell(l *replay.OriginLag) string {
	if !l.Known() {
		return "-"
	}
	return fmt.Sprint(l.Lag)
}
