package canary

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/termsafe"
)

// MutateOptions are the inputs of the commands that change a canary: start, step, set, promote
// and rollback.
type MutateOptions struct {
	Factory *cmdutil.Factory
	Repo    RepoOptions

	Action  canary.Action
	Service string
	Env     string
	// ImageTag is start's --image-tag; Weight is set's --weight.
	ImageTag string
	Weight   int
	Force    bool
	Reason   string
	DryRun   bool
	Yes      bool

	// Wait follows the pushed change until Argo CD synced it and the live VirtualService
	// carries it, for at most Timeout.
	Wait    bool
	Timeout time.Duration
	// SkipGates moves traffic without consulting the gates (start, step, set, promote); the
	// reason is recorded in the commit's Canary-Gates-Skipped trailer.
	SkipGates bool
	// Live opens Argo CD, the mesh and Prometheus for --wait and the gates.
	Live LiveOptions

	// Controller builds the canary controller over the opened repository; tests and later
	// features (gates, Argo CD --wait) add options here.
	Controller func(store canary.Store) *canary.Controller
}

type mutateDoc struct{ use, short, example string }

// docFor returns the help text of an action's command.
func docFor(action canary.Action) mutateDoc {
	switch action {
	case canary.ActionStart:
		return mutateDoc{
			use:   "start SERVICE --image-tag TAG",
			short: "Deploy TAG as the canary (v2) with 10% of the traffic (phase 0)",
			example: `  opsctl canary start payment --env prod --image-tag 1.5.0 --reason "release 1.5.0"
  opsctl canary start payment --env prod --image-tag 1.5.0 --reason "release 1.5.0" --dry-run`,
		}
	case canary.ActionStep:
		return mutateDoc{
			use:     "step SERVICE",
			short:   "Move the canary to the next weight on the ladder 10 -> 30 -> 50 -> 100",
			example: `  opsctl canary step payment --env prod --reason "phase 0 criteria met: pods ready, no errors"`,
		}
	case canary.ActionSet:
		return mutateDoc{
			use:   "set SERVICE --weight N",
			short: "Set the canary weight (on the ladder and without skipping phases unless --force)",
			example: `  opsctl canary set payment --env prod --weight 10 --reason "back to 10% while we look"
  opsctl canary set payment --env prod --weight 20 --force --reason "gentler step for a risky change"`,
		}
	case canary.ActionPromote:
		return mutateDoc{
			use:     "promote SERVICE",
			short:   "Make the canary tag the stable tag and turn the canary off (needs 100% unless --force)",
			example: `  opsctl canary promote payment --env prod --reason "phase 3 stable for 30m"`,
		}
	case canary.ActionRollback:
		return mutateDoc{
			use:     "rollback SERVICE",
			short:   "Send all traffic back to v1 and turn the canary off, in one commit",
			example: `  opsctl canary rollback payment --env prod --reason "5xx above 3%" --yes`,
		}
	}
	return mutateDoc{use: string(action) + " SERVICE", short: string(action)}
}

// NewCmdMutate returns the command for one mutating action.
func NewCmdMutate(f *cmdutil.Factory, action canary.Action, runF func(*MutateOptions) error) *cobra.Command {
	opts := &MutateOptions{Factory: f, Action: action}
	doc := docFor(action)
	cmd := &cobra.Command{
		Use:   doc.use,
		Short: doc.short,
		Long: doc.short + `.

The change is committed to the service's values file with Opsctl-* trailers and pushed; Argo CD
applies it. --dry-run prints the diff and changes nothing. On a terminal you are asked to
confirm; elsewhere pass --yes. If someone changed the same canary meanwhile, nothing is pushed
and the error names their commit.

Gates: start, step, set and promote are refused, with nothing changed, while a rollback
criterion or a pass criterion of the current phase fails or has no data on Prometheus (see
` + "`opsctl canary check`" + `), and when the context has no Prometheus at all. --skip-gates moves
traffic anyway; it needs --reason, and the commit records the skip in a Canary-Gates-Skipped
trailer. Rollback is never gated.

--wait then asks Argo CD to refresh (and to sync, when auto-sync is off) and waits until the
application is Synced and Healthy at the pushed commit and the live VirtualService carries the
new weights. If the sync fails, the application turns Degraded or --timeout passes, it exits 1
saying which of the three did not arrive; the change stays pushed.`,
		Example: doc.example,
		Args:    exactArgs(1, "one SERVICE (order, payment or product)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Service = args[0]
			if err := validService(opts.Service); err != nil {
				return err
			}
			if err := validEnv(opts.Env, true); err != nil {
				return err
			}
			switch action {
			case canary.ActionStart:
				if opts.ImageTag == "" {
					return cmdutil.FlagErrorf("--image-tag is required")
				}
				if !gitops.ValidTag(opts.ImageTag) {
					return cmdutil.FlagErrorf("--image-tag %q is not a valid image tag", opts.ImageTag)
				}
			case canary.ActionSet:
				if !cmd.Flags().Changed("weight") {
					return cmdutil.FlagErrorf("--weight is required")
				}
				if opts.Weight < 0 || opts.Weight > 100 {
					return cmdutil.FlagErrorf("--weight %d is outside 0-100", opts.Weight)
				}
			}
			if opts.SkipGates && opts.Reason == "" {
				return cmdutil.FlagErrorf("--skip-gates needs --reason: why the gates are skipped is recorded in the commit")
			}
			if err := gitops.ValidateReason(opts.Reason); err != nil {
				return cmdutil.FlagErrorf("--reason: %v", err)
			}
			if opts.Repo.Open == nil {
				opts.Repo.Open = openFromFactory(f, &opts.Repo)
			}
			if opts.Wait && opts.DryRun {
				return cmdutil.FlagErrorf("--wait follows a pushed change; a --dry-run pushes nothing")
			}
			if opts.Timeout <= 0 {
				return cmdutil.FlagErrorf("--timeout must be positive, got %s", opts.Timeout)
			}
			if opts.Controller == nil {
				extra, err := opts.liveControllerOptions()
				if err != nil {
					return err
				}
				opts.Controller = func(s canary.Store) *canary.Controller { return canary.New(s, extra...) }
			}
			if runF != nil {
				return runF(opts)
			}
			return mutateRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Env, "env", "", "environment: dev or prod (required)")
	fl.StringVar(&opts.Reason, "reason", "", "why, recorded in the commit (required)")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the values diff and change nothing")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&opts.Wait, "wait", false, "after the push, wait until Argo CD synced it (Synced, Healthy) and the live VirtualService carries the new weights")
	fl.DurationVar(&opts.Timeout, "timeout", argocd.DefaultWaitTimeout, "how long --wait waits")
	if action.Gated() {
		fl.BoolVar(&opts.SkipGates, "skip-gates", false, "move traffic without consulting the gates; needs --reason, recorded in the commit")
		// --gate was the opt-in before gates were on by default; scripts may still pass it.
		fl.Bool("gate", false, "no effect: the gates are always on")
		_ = fl.MarkDeprecated("gate", "the gates are always on; use --skip-gates --reason to skip them")
	}
	switch action {
	case canary.ActionStart:
		fl.StringVar(&opts.ImageTag, "image-tag", "", "canary image tag (required)")
	case canary.ActionSet:
		fl.IntVar(&opts.Weight, "weight", 0, "canary weight in percent, 0-100 (required)")
		fl.BoolVar(&opts.Force, "force", false, "allow weights off the ladder and skipping phases")
	case canary.ActionPromote:
		fl.BoolVar(&opts.Force, "force", false, "promote before the canary reached 100%")
	}
	addRepoFlags(cmd, &opts.Repo)
	return cmd
}

// liveControllerOptions adds the context's gates, its bake time (canary.bakeTime, default
// 5m) and the --wait follower. The canary service
// decides when the gates apply.
func (o *MutateOptions) liveControllerOptions() ([]canary.Option, error) {
	f := o.Factory
	liveFromFactory(f, &o.Live)
	extra := []canary.Option{canary.WithGates(o.Live.gateSource(func(rep canary.GateReport) {
		if rep.Verdict() != canary.VerdictPass {
			_ = writeGateTable(f, f.IOStreams.ErrOut, rep)
		}
	}))}
	_, c, _ := f.Context()
	extra = append(extra, canary.WithBakeTime(canary.ContextBakeTime(c), f.Now))
	if o.Wait {
		extra = append(extra, canary.WithFollower(o.Live.follower(f, o.Env, o.Timeout)))
	}
	return extra, nil
}

// planJSON is the -o json/yaml form of a dry run or an applied change.
type planJSON struct {
	Env     string     `json:"env"`
	Service string     `json:"service"`
	Action  string     `json:"action"`
	Summary string     `json:"summary"`
	From    canaryJSON `json:"from"`
	To      canaryJSON `json:"to"`
	Stable  struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"stable"`
	Path   string `json:"path"`
	Base   string `json:"base"`
	Diff   string `json:"diff"`
	DryRun bool   `json:"dryRun"`
	// Commit, Remote, Branch and Attempts are set once the change is pushed.
	Commit   string `json:"commit,omitempty"`
	Remote   string `json:"remote,omitempty"`
	Branch   string `json:"branch,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
}

func toPlanJSON(p *canary.Plan, dryRun bool) planJSON {
	out := planJSON{
		Env: p.Env, Service: p.Service, Action: string(p.Op.Action), Summary: p.Summary(),
		From: canaryJSON{Enabled: p.From.Canary.Enabled, Tag: p.From.Canary.Tag, Weight: p.From.Canary.Weight},
		To:   canaryJSON{Enabled: p.To.Canary.Enabled, Tag: p.To.Canary.Tag, Weight: p.To.Canary.Weight},
		Path: p.Base.Path, Base: p.Base.Commit, Diff: p.Diff(), DryRun: dryRun,
	}
	out.Stable.From, out.Stable.To = p.From.StableTag, p.To.StableTag
	return out
}

func mutateRun(ctx context.Context, opts *MutateOptions) (err error) {
	f := opts.Factory
	ios := f.IOStreams
	// A dry run only reads; everything else is refused under --readonly before any I/O.
	if !opts.DryRun {
		if err := f.CheckWritable(); err != nil {
			return err
		}
	}
	repo, err := opts.Repo.Open(ctx)
	if err != nil {
		return err
	}
	defer repo.Close()
	// opsctl commits from a clone of its own: nothing in the operator's working copy
	// (uncommitted edits, a rebase in progress) can block a change, least of all a rollback.
	var store canary.Store = repo
	if !opts.DryRun {
		w, closeW, err := repo.WriteClone(ctx)
		if err != nil {
			return fmt.Errorf("prepare opsctl's own clone of the GitOps remote: %w; nothing was changed", err)
		}
		defer func() {
			if cerr := closeW(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("release opsctl's clone of the GitOps remote: %w", cerr))
			}
		}()
		store = w
	}
	ctrl := opts.Controller(store)

	op := canary.Op{Action: opts.Action, Tag: opts.ImageTag, Weight: opts.Weight, Force: opts.Force, SkipGates: opts.SkipGates}
	plan, err := ctrl.Plan(ctx, opts.Env, opts.Service, op, opts.Reason)
	if err != nil {
		if errors.Is(err, gitops.ErrNoChange) {
			return fmt.Errorf("%w; nothing was changed", err)
		}
		if errors.Is(err, canary.ErrInvalid) {
			return fmt.Errorf("%w; nothing was changed", err)
		}
		return err
	}

	human := f.Output == cmdutil.OutputTable
	if opts.DryRun {
		if !human {
			return f.Write(toPlanJSON(plan, true), nil)
		}
		fmt.Fprintln(ios.Out, termsafe.String(plan.Summary()))
		fmt.Fprint(ios.Out, termsafe.Block(plan.Diff()))
		fmt.Fprintln(ios.ErrOut, "dry run: nothing was committed or pushed")
		return nil
	}

	if !opts.Yes && ios.CanPrompt() {
		// Show exactly what will be pushed before asking.
		fmt.Fprintln(ios.Out, termsafe.String(plan.Summary()))
		fmt.Fprint(ios.Out, termsafe.Block(plan.Diff()))
	}
	question := fmt.Sprintf("Commit and push to %s/%s (%s)?", repo.Remote(), repo.Branch(), gitops.ApplicationName(opts.Service, opts.Env))
	if err := f.Confirm(termsafe.String(question), opts.Yes); err != nil {
		return err
	}
	out, err := ctrl.Execute(ctx, plan)
	if out == nil {
		return err
	}
	if !out.Result.AlreadyApplied {
		if ok, cerr := repo.CatchUp(ctx); cerr != nil || !ok {
			fmt.Fprintf(ios.ErrOut, "your working copy %s was left as it was (it has changes of its own); git pull shows the change\n", termsafe.String(repo.Dir()))
		}
	}
	res := toPlanJSON(plan, false)
	res.Commit, res.Remote, res.Branch, res.Attempts = out.Result.Commit, out.Result.Remote, out.Result.Branch, out.Result.Attempts
	werr := f.Write(res, func(w io.Writer) error {
		_, e := fmt.Fprintf(w, "%s\n%s\n", termsafe.String(plan.Summary()), pushedLine(plan, out.Result))
		return e
	})
	return errors.Join(err, werr)
}

// pushedLine says where a change landed: "pushed abc1234 to origin/main", noting a rollback
// re-applied on top of a change pushed meanwhile, or one that found the canary already off.
func pushedLine(p *canary.Plan, res gitops.Result) string {
	if res.AlreadyApplied {
		return fmt.Sprintf("the canary is already off at %s/%s %s (%s); nothing was pushed",
			termsafe.String(res.Remote), termsafe.String(res.Branch), shortCommit(res.Commit), termsafe.String(res.To.String()))
	}
	line := fmt.Sprintf("pushed %s to %s/%s", shortCommit(res.Commit), termsafe.String(res.Remote), termsafe.String(res.Branch))
	if res.From != p.From {
		line += fmt.Sprintf(" (re-applied on top of a change pushed meanwhile: from %s)", termsafe.String(res.From.String()))
	}
	return line
}
