package dlt

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/cmdutil"
)

// TopicsOptions are the inputs of `opsctl dlt topics`.
type TopicsOptions struct {
	Factory *cmdutil.Factory
}

// NewCmdTopics returns `opsctl dlt topics`. runF replaces the run in tests.
func NewCmdTopics(f *cmdutil.Factory, runF func(*TopicsOptions) error) *cobra.Command {
	opts := &TopicsOptions{Factory: f}
	return &cobra.Command{
		Use:   "topics",
		Short: "List dead-letter topics with counts, age and replays so far",
		Long: `List the dead-letter topics of the cluster (names matching the context's dlt.pattern,
by default ending in .DLT or -dlt): retained records, oldest and newest record time, records
of the last hour, and how many of their records the replay ledger says were replayed.`,
		Args: cmdutil.UsageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return topicsRun(cmd, opts)
		},
	}
}

func topicsRun(cmd *cobra.Command, opts *TopicsOptions) error {
	f := opts.Factory
	s, err := openSession(cmd, f)
	if err != nil {
		return err
	}
	defer s.Close()
	topics, err := s.engine.Topics(cmd.Context())
	if err != nil {
		return engineError(fmt.Errorf("list dead-letter topics: %w", err))
	}
	return write(f, topics, func(w io.Writer) error {
		t := f.NewTable(w, "TOPIC", "PARTITIONS", "RECORDS", "OLDEST", "NEWEST", "LAST HOUR", "REPLAYED")
		for _, ti := range topics {
			t.Row(ti.Topic, fmt.Sprint(ti.Partitions), fmt.Sprint(ti.Records), stampPtr(ti.Oldest), stampPtr(ti.Newest),
				fmt.Sprint(ti.LastHour), fmt.Sprint(ti.Replayed))
		}
		return t.Flush()
	})
}
