package dlt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/iostreams"
	"github.com/come2us/opsctl/pkg/replay"
)

// ReplayOptions are the inputs of `opsctl dlt replay`.
type ReplayOptions struct {
	Factory *cmdutil.Factory
	Session
	Topic      string
	Selection  SelectionFlags
	To         string
	Group      string
	Reason     string
	Force      bool
	DryRun     bool
	Yes        bool
	MaxReplays int
	Rate       float64
}

// NewCmdReplay returns `opsctl dlt replay TOPIC`.
func NewCmdReplay(f *cmdutil.Factory, runF func(*ReplayOptions) error) *cobra.Command {
	opts := &ReplayOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "replay TOPIC",
		Short: "Replay dead letters to their original topics, exactly once",
		Long: `Send the selected dead letters back to the topic their headers name
(kafka_dlt-original-topic, __connect.errors.topic or x-original-topic), key and value
unchanged, business and trace headers kept, dead-letter headers dropped, and
x-opsctl-replay-id, x-opsctl-replay-count, x-opsctl-replayed-from (and x-opsctl-target-group
with --group) added.

Exactly once across runs: every replayed record is written together with its entry in the
replay ledger in one Kafka transaction; records the ledger holds are skipped (--force replays
them again); a run killed at any point can simply be run again; a second run of the same DLT
fences the first. Consumers must read with isolation.level=read_committed. Two batches are
in flight at a time, each in its own transaction, with the transactional ids
opsctl-replay/TOPIC and opsctl-replay/TOPIC/1: the Kafka principal needs both (a prefixed
ACL or IAM resource on opsctl-replay/ covers them).

Rules: records without a known original topic are refused. If the context has a topic
allowlist (dlt.allowlist), every target must be on it and --to may name one of them; without
an allowlist a record may only go back to its own original topic and --to is refused.
Records replayed --max-replays times already (default 3, or dlt.maxReplays) are refused
unless --force.

--dry-run prints the plan and changes nothing. Otherwise a terminal gets the plan and a
confirmation prompt (--yes skips it; scripts must pass --yes). With --yes there is no separate
plan: the replay reads the selection once, and a run that finds nothing to replay is still
recorded in the history. --reason is required and goes into the ledger. Exit code 3 when some
records were refused or failed.`,
		Example: `  opsctl dlt replay orders-failed.DLT --since 2h --dry-run
  opsctl dlt replay orders-failed.DLT --where 'errorCode == "DB_LOCK_TIMEOUT"' --reason "INC-42: lock fixed"
  opsctl dlt replay orders-failed.DLT --group product-service-group --rate 200 --reason "..." --yes -o json`,
		Args: cmdutil.UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Topic = args[0]
			opts.Selection.changed(cmd)
			if !opts.DryRun && strings.TrimSpace(opts.Reason) == "" {
				return cmdutil.FlagErrorf("--reason is required: say why you replay (it is recorded in the ledger); nothing was changed")
			}
			if opts.Rate < 0 || opts.MaxReplays < 0 {
				return cmdutil.FlagErrorf("--rate and --max-replays must not be negative")
			}
			if err := opts.Session.read(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return replayRun(cmd.Context(), opts)
		},
	}
	opts.Selection.register(cmd, "replay at most this many records (already replayed and refused ones do not count)")
	fs := cmd.Flags()
	fs.StringVar(&opts.To, "to", "", "replay to this topic instead of each record's original topic (must be on the context's allowlist)")
	fs.StringVar(&opts.Group, "group", "", "only this consumer group should process the replayed records (x-opsctl-target-group)")
	fs.StringVar(&opts.Reason, "reason", "", "why you replay, recorded in the ledger (required)")
	fs.BoolVar(&opts.Force, "force", false, "replay records already replayed, and records past --max-replays")
	fs.BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	fs.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	fs.IntVar(&opts.MaxReplays, "max-replays", 0, "refuse records replayed this many times already (default: the context's dlt.maxReplays, else 3)")
	fs.Float64Var(&opts.Rate, "rate", 0, "replay at most this many records per second (0: as fast as possible)")
	return cmd
}

// resultLine and summaryLine are the NDJSON lines of `dlt replay -o json`.
type resultLine struct {
	Type string `json:"type"` // "result"
	replay.Result
}

type summaryLine struct {
	Type string `json:"type"` // "summary"
	*replay.Summary
}

type planLine struct {
	Type string `json:"type"` // "plan"
	*replay.Plan
}

func replayRun(ctx context.Context, opts *ReplayOptions) error {
	f := opts.Factory
	sel, err := opts.Selection.Build(clock(f)())
	if err != nil {
		return err
	}
	if !opts.DryRun {
		if err := f.CheckWritable(); err != nil {
			return err
		}
	}
	s, err := openSession(f, opts.Session)
	if err != nil {
		return err
	}
	defer s.Close()
	req := replay.Request{Topic: opts.Topic, Selection: sel, To: opts.To, Group: opts.Group, Reason: opts.Reason,
		Force: opts.Force, MaxReplays: opts.MaxReplays, Limit: sel.Limit, Rate: opts.Rate}
	req.Selection.Limit = 0
	out := f.IOStreams.Out
	// The plan is made when someone reads it: --dry-run, or the confirmation prompt. It is a
	// scan of the selection and the ledger, which the replay makes again, so with --yes the
	// replay goes ahead without one and takes half the time.
	// A --since in the future selects nothing unless some dead letter is stamped later still:
	// the plan says which, so a run that would replay nothing is not recorded.
	future := sinceWarning(sel, clock(f)())
	if future != "" {
		fmt.Fprintln(f.IOStreams.ErrOut, future)
	}
	planned := opts.DryRun || !opts.Yes || future != ""
	var bar *iostreams.Progress
	if planned {
		plan, err := s.engine.Plan(ctx, req)
		if err != nil {
			return engineError(err)
		}
		printWhereWarnings(f.IOStreams.ErrOut, plan.WhereErrors, plan.FirstWhereError, plan.WhereMissing)
		if opts.DryRun || plan.Replay == 0 {
			if err := writePlan(f, plan, opts.DryRun); err != nil {
				return err
			}
			// A dry run exits as the run would: 3 when records would be refused.
			switch {
			case plan.Refused > 0 && opts.DryRun:
				return &cmdutil.PartialError{Summary: fmt.Sprintf("%d records would be refused", plan.Refused)}
			case plan.Refused > 0:
				return &cmdutil.PartialError{Summary: fmt.Sprintf("%d records refused, nothing replayed", plan.Refused)}
			}
			return nil
		}
		if f.IOStreams.CanPrompt() {
			w := out
			if f.Output != cmdutil.OutputTable {
				w = f.IOStreams.ErrOut // keep stdout machine-readable
			}
			if err := planTable(f, w, plan); err != nil {
				return err
			}
		}
		question := fmt.Sprintf("Replay %d records from %s (reason %q)?", plan.Replay, sanitize(plan.Topic), sanitize(opts.Reason))
		if err := f.Confirm(question, opts.Yes); err != nil {
			return err
		}
		req.Bound = plan.EndOffsets
		bar = f.IOStreams.StartProgress("replaying "+sanitize(opts.Topic), int(plan.Replay))
		req.OnProgress = progressByReplayed(bar)
	} else {
		bar = f.IOStreams.StartProgress("replaying "+sanitize(opts.Topic), 0)
		req.OnProgress = progressByScanned(bar)
	}
	var notable []replay.Result
	var werr error
	// A table shows only the refusals and failures; JSON and YAML every record.
	req.ProblemsOnly = f.Output == cmdutil.OutputTable
	req.OnResult = func(r replay.Result) {
		switch f.Output {
		case cmdutil.OutputJSON:
			if err := writeJSON(out, resultLine{Type: "result", Result: r}, false); err != nil && werr == nil {
				werr = err
			}
		case cmdutil.OutputYAML:
			err := writeYAML(out, resultLine{Type: "result", Result: r})
			if err == nil {
				_, err = fmt.Fprintln(out, "---")
			}
			if err != nil && werr == nil {
				werr = err
			}
		default:
			if (r.Action == replay.ActionRefused || r.Action == replay.ActionFailed) && len(notable) < 10 {
				notable = append(notable, r)
			}
		}
	}
	sum, err := s.engine.Replay(ctx, req)
	bar.Done()
	if errors.Is(err, replay.ErrRefused) {
		// Refused before it started: there was no run to summarise, and none was recorded.
		return err
	}
	if !planned && sum != nil {
		printWhereWarnings(f.IOStreams.ErrOut, sum.WhereErrors, sum.FirstWhereError, sum.WhereMissing)
	}
	if perr := writeSummary(f, sum, notable); perr != nil && err == nil {
		err = perr
	}
	var se *replay.SilenceError
	if errors.As(err, &se) {
		return fmt.Errorf("%v: %s", se, stoppedRun(sum))
	}
	if err != nil {
		return engineError(err)
	}
	if !planned && f.Output == cmdutil.OutputTable && sum.Replayed == 0 && sum.Failed == 0 {
		fmt.Fprintf(out, "\nNothing to replay: %s already replayed, %d refused.\n", plural(int64(sum.Skipped), "record"), sum.Refused)
	}
	if werr != nil {
		return fmt.Errorf("write results: %w", werr)
	}
	if sum.Partial() {
		return &cmdutil.PartialError{Summary: fmt.Sprintf("%d refused, %d failed", sum.Refused, sum.Failed)}
	}
	return nil
}

// progressByReplayed moves a replay's bar against its plan: records replayed (or failed) of
// those planned.
func progressByReplayed(bar *iostreams.Progress) func(replay.Progress) {
	var shown int
	return func(p replay.Progress) {
		if done := p.Replayed + p.Failed; done > shown {
			bar.Add(done - shown)
			shown = done
		}
	}
}

// progressByScanned moves a replay's bar without a plan: offsets read of those in range.
func progressByScanned(bar *iostreams.Progress) func(replay.Progress) {
	var shown int64
	return func(p replay.Progress) {
		bar.SetTotal(int(p.Total))
		if p.Scanned > shown {
			bar.Add(int(p.Scanned - shown))
			shown = p.Scanned
		}
	}
}

func writePlan(f *cmdutil.Factory, plan *replay.Plan, dryRun bool) error {
	out := f.IOStreams.Out
	switch f.Output {
	case cmdutil.OutputJSON:
		return writeJSON(out, planLine{Type: "plan", Plan: plan}, true)
	case cmdutil.OutputYAML:
		return writeYAML(out, planLine{Type: "plan", Plan: plan})
	}
	if err := planTable(f, out, plan); err != nil {
		return err
	}
	switch {
	case dryRun:
		fmt.Fprintln(out, "\nDry run: nothing was changed. Run without --dry-run, with --reason, to replay.")
	case plan.Replay == 0:
		fmt.Fprintln(out, "\nNothing to replay; nothing was changed.")
	}
	return nil
}

func planTable(f *cmdutil.Factory, w io.Writer, plan *replay.Plan) error {
	fmt.Fprintf(w, "%s replay %d of %d selected records from %s (%d scanned; %s)\n", paintHeader(f, "Plan:"),
		plan.Replay, plan.Selected, sanitize(plan.Topic), plan.Scanned, sanitize(plan.Selection))
	if plan.Limited {
		fmt.Fprintln(w, "  (stopped at --limit; more records may follow)")
	}
	for _, t := range plan.Targets {
		fmt.Fprintf(w, "  to %s: %d records\n", sanitize(t.Topic), t.Count)
		for _, sp := range t.Partitions {
			fmt.Fprintf(w, "      partition %d: offsets %d-%d (%s)\n", sp.Partition, sp.First, sp.Last, plural(sp.Count, "record"))
		}
		fmt.Fprintf(w, "      e.g. %s\n", coords(t.Samples))
	}
	if plan.Group != "" {
		fmt.Fprintf(w, "  for consumer group %s only (x-opsctl-target-group)\n", sanitize(plan.Group))
	}
	fmt.Fprintf(w, "  skipped, already replayed: %d", plan.Skipped)
	if len(plan.SkippedSamples) > 0 {
		fmt.Fprintf(w, " (e.g. %s; --force to replay again)", coords(plan.SkippedSamples))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  refused: %d\n", plan.Refused)
	for _, r := range plan.Refusals {
		fmt.Fprintf(w, "      %s  %d × %s (e.g. %s)\n", paint(f, "3", r.Code), r.Count, truncate(r.Reason, 120), coords(r.Samples))
	}
	return nil
}

func coords(cs []replay.Coord) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = sanitize(c.String())
	}
	return strings.Join(s, ", ")
}

func writeSummary(f *cmdutil.Factory, sum *replay.Summary, notable []replay.Result) error {
	out := f.IOStreams.Out
	switch f.Output {
	case cmdutil.OutputJSON:
		return writeJSON(out, summaryLine{Type: "summary", Summary: sum}, false)
	case cmdutil.OutputYAML:
		return writeYAML(out, summaryLine{Type: "summary", Summary: sum})
	}
	fmt.Fprintf(out, "Replay run %s of %s: %s\n", sum.RunID, sanitize(sum.Topic), paint(f, statusColor(sum.Status), sum.Status))
	t := f.NewTable(out)
	t.Row("  selected", fmt.Sprint(sum.Selected))
	t.Row("  replayed", fmt.Sprint(sum.Replayed))
	t.Row("  skipped, already replayed", fmt.Sprint(sum.Skipped))
	t.Row("  refused", fmt.Sprint(sum.Refused))
	t.Row("  failed", fmt.Sprint(sum.Failed))
	if err := t.Flush(); err != nil {
		return err
	}
	if sum.Limited {
		fmt.Fprintln(out, "  stopped at --limit; run again to continue")
	}
	for _, r := range notable {
		fmt.Fprintf(out, "  %s %s: %s\n", r.Action, sanitize(r.From.String()), truncate(r.Reason, 200))
	}
	if sum.Refused+sum.Failed > len(notable) && len(notable) > 0 {
		fmt.Fprintln(out, "  … (-o json lists every record)")
	}
	if sum.Note != "" {
		fmt.Fprintf(out, "  Note: %s.\n", sanitize(sum.Note))
	}
	if sum.Failed > 0 || sum.Status == replay.RunFenced || sum.Status == replay.RunCancelled {
		fmt.Fprintln(out, "  Run the same command again: records already replayed are skipped, the rest are replayed.")
	}
	return nil
}

// stoppedRun says what a replay stopped by a silent broker did, and that running it again
// finishes it exactly once.
func stoppedRun(sum *replay.Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "the run stopped; %s had gone out and been committed", plural(int64(sum.Replayed), "replayed record"))
	if sum.CommitUnknown > 0 {
		fmt.Fprintf(&b, "; the commit of %s was sent and not answered (the ledger says whether it was applied)", plural(int64(sum.CommitUnknown), "more record"))
	}
	b.WriteString("; run the same command again: it skips what was committed and replays the rest, exactly once")
	return b.String()
}
