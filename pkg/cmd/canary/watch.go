package canary

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/rollout"
	"github.com/come2us/opsctl/pkg/termsafe"
)

// WatchOptions are the inputs of `opsctl canary watch`.
type WatchOptions struct {
	Factory *cmdutil.Factory
	Repo    RepoOptions
	Live    LiveOptions

	Service      string
	Env          string
	AutoRollback bool
	Interval     time.Duration
	// FailureLimit is how many consecutive breaching checks roll back; 0 means the context's
	// canary.failureLimit, else rollout.DefaultFailureLimit.
	FailureLimit int
	Yes          bool
}

// NewCmdWatch returns `opsctl canary watch SERVICE --env ENV [--auto-rollback]`.
func NewCmdWatch(f *cmdutil.Factory, runF func(*WatchOptions) error) *cobra.Command {
	opts := &WatchOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "watch SERVICE",
		Short: "Poll the canary's rollback criteria; with --auto-rollback, roll back on a breach",
		Long: `Evaluate the design's rollback criteria every --interval and print one line per round.

With --auto-rollback, a rollback criterion that fails in --failure-limit consecutive rounds
(default: the context's canary.failureLimit, else 2) commits the rollback itself (canary weight
0 and off, all traffic to v1), with the failing criteria and their values as the reason, and
exits 1; a single failing round is reported with its count. Criteria without data, or with too
few requests in their window, are reported but never roll back: a monitoring outage must not
move traffic. Without --auto-rollback, breaches are only reported.

Ends when interrupted (exit 0) or when no canary runs any more. Errors on the way (git, a
push that fails) are reported and retried after at most 5s; they do not end the watch.
--auto-rollback is refused under --readonly and asks for confirmation on a terminal unless
--yes.`,
		Example: `  opsctl canary watch payment --env prod --auto-rollback --yes`,
		Args:    exactArgs(1, "one SERVICE (order, payment or product)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Service = args[0]
			if err := validService(opts.Service); err != nil {
				return err
			}
			if err := validEnv(opts.Env, true); err != nil {
				return err
			}
			if opts.FailureLimit < 0 {
				return cmdutil.FlagErrorf("--failure-limit must be at least 1, got %d", opts.FailureLimit)
			}
			if opts.Interval < time.Second {
				return cmdutil.FlagErrorf("--interval must be at least 1s, got %s", opts.Interval)
			}
			if opts.Repo.Open == nil {
				opts.Repo.Open = openFromFactory(f, &opts.Repo)
			}
			liveFromFactory(f, &opts.Live)
			if runF != nil {
				return runF(opts)
			}
			return watchRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Env, "env", "", "environment: dev or prod (required)")
	fl.BoolVar(&opts.AutoRollback, "auto-rollback", false, "commit the rollback as soon as a rollback criterion fails")
	fl.DurationVar(&opts.Interval, "interval", 30*time.Second, "time between evaluations")
	fl.IntVar(&opts.FailureLimit, "failure-limit", 0, "consecutive failing rounds before the rollback (default: the context's canary.failureLimit, else 2)")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation of --auto-rollback")
	addRepoFlags(cmd, &opts.Repo)
	return cmd
}

func watchRun(ctx context.Context, opts *WatchOptions) error {
	f := opts.Factory
	ios := f.IOStreams
	if opts.AutoRollback {
		if err := f.CheckWritable(); err != nil {
			return err
		}
		q := fmt.Sprintf("Roll %s/%s back automatically when a rollback criterion fails?", opts.Service, opts.Env)
		if err := f.Confirm(q, opts.Yes); err != nil {
			return err
		}
	}
	repo, err := opts.Repo.Open(ctx)
	if err != nil {
		return err
	}
	defer repo.Close()
	ctrl := canary.New(repo)
	gates, err := opts.Live.Gates(opts.Env)
	if err != nil {
		return err
	}
	limit := opts.FailureLimit
	if _, c, err := f.Context(); limit == 0 && err == nil && c != nil {
		limit = c.Canary.FailureLimit
	}
	g := &rollout.Guard{
		Gates:        gates,
		Target:       canary.GateTarget{Service: opts.Service, Env: opts.Env, Namespace: opts.Live.Namespace(opts.Env)},
		Interval:     opts.Interval,
		FailureLimit: limit,
		Breach: func(_ []canary.GateResult, consecutive, limit int) {
			if f.Output != cmdutil.OutputJSON && opts.AutoRollback && consecutive < limit {
				fmt.Fprintf(ios.ErrOut, "breach %d of %d: rolling back if the next %s fail%s too\n",
					consecutive, limit, plural(limit-consecutive, "round"), map[bool]string{true: "s", false: ""}[limit-consecutive == 1])
			}
		},
		// A failed round (git unreachable, a refused push) is reported and retried: the watch
		// protects the canary only while it runs.
		Error: func(err error, retryIn time.Duration) {
			fmt.Fprintf(ios.ErrOut, "%s error: %s; retrying in %s\n", f.Now().UTC().Format("15:04:05"), termsafe.String(err.Error()), retryIn)
		},
		Running: func(ctx context.Context) (bool, error) {
			st, err := ctrl.Status(ctx, opts.Env, opts.Service)
			return st.Running(), err
		},
		Report: func(rep canary.GateReport) {
			if f.Output == cmdutil.OutputJSON {
				_ = cmdutil.WriteNDJSON(ios.Out, rep)
				return
			}
			fmt.Fprintln(ios.Out, termsafe.String(watchLine(f.Now(), rep, opts.AutoRollback)))
		},
	}
	if opts.AutoRollback {
		g.Rollback = func(ctx context.Context, reason string) (err error) {
			// The rollback is opsctl's own write: it goes through a clone of its own, so that
			// whatever the operator left in the working copy cannot block it.
			w, closeW, err := repo.WriteClone(ctx)
			if err != nil {
				return fmt.Errorf("prepare opsctl's own clone for the rollback: %w; nothing was pushed", err)
			}
			defer func() {
				if cerr := closeW(); cerr != nil {
					err = errors.Join(err, fmt.Errorf("release opsctl's clone of the GitOps remote: %w", cerr))
				}
			}()
			wctrl := canary.New(w)
			p, err := wctrl.Plan(ctx, opts.Env, opts.Service, canary.Op{Action: canary.ActionRollback}, reason)
			if err != nil {
				return err
			}
			out, err := wctrl.Execute(ctx, p)
			if out != nil {
				fmt.Fprintf(ios.ErrOut, "%s\n%s\n", termsafe.String(p.Summary()), pushedLine(p, out.Result))
			}
			return err
		}
	}
	out, err := g.Run(ctx)
	if err != nil {
		return err
	}
	if out.RolledBack {
		// The canary failed: say so in the exit code too, for whoever runs the watch.
		fmt.Fprintf(ios.ErrOut, "rolled back %s/%s: %s\n", opts.Service, opts.Env, termsafe.String(out.Reason))
		return cmdutil.ErrSilent
	}
	return nil
}

// watchLine summarises one evaluation: "12:00:30 pass" or "12:00:30 fail: canary 5xx rate (1m
// average) 4.20% (rollback if ≥ 3%); unknown: canary CPU of limit (no data ...)".
func watchLine(now time.Time, rep canary.GateReport, auto bool) string {
	var fails, unknown, few []string
	fewWhy := ""
	for _, r := range rep.Results {
		switch {
		case r.Verdict == canary.VerdictFail:
			fails = append(fails, fmt.Sprintf("%s %s (%s)", r.Criterion.Name, r.Display, r.Criterion.ThresholdText()))
		case r.Verdict == canary.VerdictUnknown && strings.HasPrefix(r.Detail, "only "):
			// Too small a sample is not missing data: say how many requests there were.
			few = append(few, r.Criterion.Name)
			fewWhy = r.Detail
		case r.Verdict == canary.VerdictUnknown:
			unknown = append(unknown, r.Criterion.Name)
		}
	}
	line := now.UTC().Format("15:04:05") + " " + string(rep.Verdict())
	if len(fails) > 0 {
		line += ": " + strings.Join(fails, "; ")
		if !auto {
			line += " — would roll back (run with --auto-rollback to do it)"
		}
	}
	if len(few) > 0 {
		line += " [" + fewWhy + ": " + strings.Join(few, ", ") + "]"
	}
	if len(unknown) > 0 {
		line += " [no data: " + strings.Join(unknown, ", ") + "]"
	}
	return line
}

// plural says "1 round" or "2 rounds".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
