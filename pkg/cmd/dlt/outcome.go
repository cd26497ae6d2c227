package dlt

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/replay"
)

// OutcomeOptions are the inputs of `opsctl dlt outcome`.
type OutcomeOptions struct {
	Factory *cmdutil.Factory
	Session
	// RunID is the run, or the start of its id.
	RunID string
}

// NewCmdOutcome returns `opsctl dlt outcome RUN_ID`.
func NewCmdOutcome(f *cmdutil.Factory, runF func(*OutcomeOptions) error) *cobra.Command {
	opts := &OutcomeOptions{Factory: f}
	return &cobra.Command{
		Use:   "outcome RUN_ID",
		Short: "Show what became of a replay run's records: failed again, consumed or not",
		Long: `Show what happened after a replay run (the id 'opsctl dlt history' prints, or its start):

  came back  the replayed records that failed again and are back in a dead-letter topic
             (they carry the run's x-opsctl-replay-id), grouped by their new error source
             and code, with a sample of each ('opsctl dlt show' it);
  consumed   per target topic and consumer group, how many of the replayed records lie below
             the group's committed offsets, how many not yet, and the group's lag there.

A run whose records mostly came back replayed an error that replaying does not fix.`,
		Example: `  opsctl dlt outcome 0190f1e2-6b1c-7a3e-9d4f-2c8e1a7b5d33
  opsctl dlt outcome 0190f1e2 -o json`,
		Args: cmdutil.UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.RunID = args[0]
			if err := opts.Session.read(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return outcomeRun(cmd.Context(), opts)
		},
	}
}

// outcomeView is `dlt outcome -o json`.
type outcomeView struct {
	Run     *replay.Run     `json:"run"`
	Outcome *replay.Outcome `json:"outcome"`
}

func outcomeRun(ctx context.Context, opts *OutcomeOptions) error {
	f := opts.Factory
	s, err := openSession(f, opts.Session)
	if err != nil {
		return err
	}
	defer s.Close()
	run, out, err := s.engine.Outcome(ctx, opts.RunID)
	if errors.Is(err, replay.ErrRunNotFound) {
		return err
	}
	if err != nil {
		return engineError(err)
	}
	return write(f, outcomeView{Run: run, Outcome: out}, func(w io.Writer) error {
		return outcomeTable(f, w, run, out)
	})
}

func outcomeTable(f *cmdutil.Factory, w io.Writer, run *replay.Run, out *replay.Outcome) error {
	dltName := sanitize(run.DLT)
	if run.Recreated {
		dltName += " (deleted since)"
	}
	fmt.Fprintf(w, "%s %s of %s: %s, started %s by %s, reason %q\n", paintHeader(f, "Run"), run.RunID, dltName,
		paint(f, statusColor(run.Status), run.Status), stamp(run.Started), sanitize(run.Actor), sanitize(run.Reason))
	fmt.Fprintf(w, "  %s the ledger holds; %d came back to a dead-letter topic (%d dead letters read to find them)\n",
		plural(int64(out.Replayed), "replayed record"), out.CameBack, out.Scanned)
	if out.Replayed >= replay.DoesNotHelpMin && replay.DoesNotHelp(int64(out.Replayed), int64(out.CameBack)) {
		fmt.Fprintf(w, "  %s\n", paint(f, "1", "Most of them failed again: replaying did not help; fix the cause first."))
	}
	if out.CameBack > 0 {
		fmt.Fprintln(w)
		t := f.NewTable(w, "CAME BACK", "ERROR SOURCE", "ERROR CODE", "SAMPLE")
		for _, ec := range out.ByError {
			t.Row(fmt.Sprint(ec.Count), ec.ErrorSource, ec.ErrorCode, ec.Sample.String())
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	t := f.NewTable(w, "TARGET", "REPLAYED", "CONSUMER GROUP", "CONSUMED", "PENDING", "LAG")
	for _, tp := range out.Targets {
		if len(tp.Groups) == 0 {
			t.Row(tp.Topic, fmt.Sprint(tp.Replayed), "(no group has committed offsets here)", "-", fmt.Sprint(tp.Replayed), "-")
			continue
		}
		for _, g := range tp.Groups {
			name := g.Group
			if g.Targeted {
				name += " (the run's --group)"
			}
			t.Row(tp.Topic, fmt.Sprint(tp.Replayed), name, fmt.Sprint(g.Consumed), fmt.Sprint(g.Pending), fmt.Sprint(g.Lag))
		}
	}
	return t.Flush()
}
