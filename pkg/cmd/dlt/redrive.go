package dlt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/redrive"
	"github.com/come2us/opsctl/pkg/replay"
)

// RedriveOptions are the inputs of `opsctl dlt redrive`.
type RedriveOptions struct {
	Factory *cmdutil.Factory
	Session
	// Policy is --policy: a file, "default", or "" for the context's redrive section.
	Policy   string
	Once     bool
	DryRun   bool
	Interval time.Duration
	// PrintDefault prints the built-in policy and does nothing else.
	PrintDefault bool
}

// NewCmdRedrive returns `opsctl dlt redrive`.
func NewCmdRedrive(f *cmdutil.Factory, runF func(*RedriveOptions) error) *cobra.Command {
	opts := &RedriveOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "redrive",
		Short: "Replay transient dead letters automatically, as a redrive policy says",
		Long: `Apply a redrive policy to every dead-letter topic: replay the records whose error
code (or exception class) a rule names once they are old enough, waiting longer after each
time one fails again (the rule's backoff ladder), at most the rule's rate, and never more than
its maxReplays times. Codes no rule names, and those of hold rules, are left for operators.

Each rule's pass over a DLT is an ordinary replay run: exactly once, recorded in the ledger
with the rule as its reason (opsctl dlt history shows it), fenced by any other replay of the
same DLT. A run only starts when its plan finds records due, so a quiet pass records nothing.

The policy is --policy FILE, --policy default (the built-in policy for the SAGA services'
codes; --print-default-policy shows it), or else the context's redrive section. A policy
that is not valid is refused with the line and reason of every problem.

--once makes one pass (for cron and tests); without it passes repeat every --interval until
interrupted, as the in-cluster agent's loop does (opsctl agent runs it leader-elected, with
metrics). --dry-run plans and changes nothing. Exit code 3 when due records were refused or
failed.`,
		Example: `  opsctl dlt redrive --policy default --once --dry-run
  opsctl dlt redrive --policy redrive-policy.yaml --once
  opsctl dlt redrive --interval 1m
  opsctl dlt redrive --print-default-policy > redrive-policy.yaml`,
		Args: cmdutil.UsageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Interval <= 0 {
				return cmdutil.FlagErrorf("--interval %s: want a positive duration; nothing was changed", opts.Interval)
			}
			if err := opts.Session.read(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return redriveRun(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.Policy, "policy", "", `redrive policy file, or "default" for the built-in policy (default: the context's redrive section)`)
	fs.BoolVar(&opts.Once, "once", false, "make one pass and exit")
	fs.BoolVar(&opts.DryRun, "dry-run", false, "plan the passes and change nothing")
	fs.DurationVar(&opts.Interval, "interval", 30*time.Second, "pause between passes (without --once)")
	fs.BoolVar(&opts.PrintDefault, "print-default-policy", false, "print the built-in policy and exit")
	return cmd
}

func redriveRun(ctx context.Context, opts *RedriveOptions) error {
	f := opts.Factory
	if opts.PrintDefault {
		_, err := f.IOStreams.Out.Write(redrive.DefaultText())
		return err
	}
	if !opts.DryRun {
		if err := f.CheckWritable(); err != nil {
			return err
		}
	}
	name, cctx, err := f.Context()
	if err != nil {
		return err
	}
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	src, err := redrive.Resolve(opts.Policy, cctx, name, cfg.File())
	if errors.Is(err, redrive.ErrInvalid) || errors.Is(err, redrive.ErrNoPolicy) {
		return cmdutil.FlagErrorf("%v", err)
	}
	if err != nil {
		return fmt.Errorf("%w; nothing was changed", err)
	}
	s, err := openSession(f, opts.Session)
	if err != nil {
		return err
	}
	defer s.Close()
	for {
		p, problem := src.Policy()
		if problem != nil {
			fmt.Fprintf(f.IOStreams.ErrOut, "warning: %s\n", sanitize(problem.Error()))
		}
		rep, err := redrive.Pass(ctx, s.engine, p, clock(f), opts.DryRun)
		if werr := writeRedrive(f, rep, opts.DryRun); werr != nil && err == nil {
			err = werr
		}
		if opts.Once {
			return redriveExit(err, rep)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(f.IOStreams.ErrOut, "Error: %s (next pass in %s)\n", sanitize(engineError(err).Error()), opts.Interval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(opts.Interval):
		}
	}
}

// redriveExit is the exit of a single pass: the error, or 3 when due records were refused or
// failed.
func redriveExit(err error, rep *redrive.Report) error {
	var se *replay.SilenceError
	if errors.As(err, &se) {
		return fmt.Errorf("%w; run it again once the broker answers: what was committed is skipped, the rest is redriven exactly once", err)
	}
	if err != nil {
		return engineError(err)
	}
	var refused, failed int64
	for _, r := range rep.Runs {
		refused += r.Refused
		if r.Summary != nil {
			failed += int64(r.Summary.Failed)
		}
	}
	if refused+failed > 0 {
		return &cmdutil.PartialError{Summary: fmt.Sprintf("%d due records refused, %d failed", refused, failed)}
	}
	return nil
}

func writeRedrive(f *cmdutil.Factory, rep *redrive.Report, dry bool) error {
	if rep == nil {
		return nil
	}
	switch f.Output {
	case cmdutil.OutputJSON:
		return writeJSON(f.IOStreams.Out, rep, false)
	case cmdutil.OutputYAML:
		if err := writeYAML(f.IOStreams.Out, rep); err != nil {
			return err
		}
		_, err := fmt.Fprintln(f.IOStreams.Out, "---")
		return err
	}
	return redriveTable(f, f.IOStreams.Out, rep, dry)
}

func redriveTable(f *cmdutil.Factory, w io.Writer, rep *redrive.Report, dry bool) error {
	verb := "redriven"
	if dry {
		verb = "due (dry run: nothing was changed)"
	}
	n := int64(rep.Redriven())
	if dry {
		n = 0
		for _, r := range rep.Runs {
			n += r.Due
		}
	}
	fmt.Fprintf(w, "%s %s: %s %s over %s (policy %s)\n", paintHeader(f, "Redrive pass"), stamp(rep.Started),
		plural(n, "record"), verb, plural(int64(rep.DLTs), "dead-letter topic"), rep.Policy)
	if rep.Paused && !dry {
		fmt.Fprintln(w, "  The policy is paused: nothing was redriven.")
		return nil
	}
	t := f.NewTable(w, "  DLT", "RULE", "DUE", "REDRIVEN", "REFUSED", "FAILED", "RUN", "NOTE")
	rows := 0
	for _, r := range rep.Runs {
		if r.Due == 0 && r.Refused == 0 && r.Summary == nil && r.Error == "" {
			continue
		}
		rows++
		redriven, failed, run := "-", "-", "-"
		if r.Summary != nil {
			redriven, failed, run = fmt.Sprint(r.Summary.Replayed), fmt.Sprint(r.Summary.Failed), r.Summary.RunID
		}
		note := r.Note
		switch {
		case r.Error != "":
			note = r.Error
		case r.Paused:
			note = "rule paused"
		}
		t.Row("  "+r.DLT, r.Rule, fmt.Sprint(r.Due), redriven, fmt.Sprint(r.Refused), failed, run, truncate(note, 100))
	}
	if rows == 0 {
		fmt.Fprintln(w, "  Nothing due.")
		return nil
	}
	return t.Flush()
}
