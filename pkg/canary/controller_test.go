package canary_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
)

// pass is a gate that lets every plan through: the tests that are not about gates still run
// under the canary policy, which refuses gated plans when no gate is configured.
var pass = canary.WithGate(canary.GateFunc(func(context.Context, *canary.Plan) error { return nil }))

func openRepo(t *testing.T, dir string) *gitops.Repo {
	t.Helper()
	r, err := gitops.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCanaryLifecycle runs a canary from start to promotion against a real git remote and
// checks the values file, the status and the history after each step.
func TestCanaryLifecycle(t *testing.T) {
	ctx := context.Background()
	remote := gitopstest.NewRemote(t)
	c := canary.New(openRepo(t, remote.Clone("Alice")), pass)

	steps := []struct {
		op         canary.Op
		weight     int
		enabled    bool
		stable     string
		canaryTag  string
		phase      int // -1: no canary
		lastAction string
	}{
		{canary.Op{Action: canary.ActionStart, Tag: "1.1.0"}, 10, true, "1.0.0", "1.1.0", 0, "canary-start"},
		{canary.Op{Action: canary.ActionStep}, 30, true, "1.0.0", "1.1.0", 1, "canary-step"},
		{canary.Op{Action: canary.ActionSet, Weight: 50}, 50, true, "1.0.0", "1.1.0", 2, "canary-set"},
		{canary.Op{Action: canary.ActionStep}, 100, true, "1.0.0", "1.1.0", 3, "canary-step"},
		{canary.Op{Action: canary.ActionPromote}, 0, false, "1.1.0", "", -1, "canary-promote"},
	}
	for i, s := range steps {
		p, err := c.Plan(ctx, "prod", "payment", s.op, "step "+string(s.op.Action))
		if err != nil {
			t.Fatalf("step %d plan: %v", i, err)
		}
		out, err := c.Execute(ctx, p)
		if err != nil {
			t.Fatalf("step %d execute: %v", i, err)
		}
		if out.Result.Commit != remote.Head() {
			t.Errorf("step %d: commit %s is not the remote head %s", i, out.Result.Commit, remote.Head())
		}
		st, err := c.Status(ctx, "prod", "payment")
		if err != nil {
			t.Fatal(err)
		}
		r := st.Release
		if r.Canary.Weight != s.weight || r.Canary.Enabled != s.enabled || r.StableTag != s.stable || r.Canary.Tag != s.canaryTag {
			t.Errorf("step %d: state %v", i, r)
		}
		if (s.phase < 0) != (st.Phase == nil) || (st.Phase != nil && st.Phase.Number != s.phase) {
			t.Errorf("step %d: phase %v, want %d", i, st.Phase, s.phase)
		}
		if st.LastChange == nil || st.LastChange.Action != s.lastAction || st.LastChange.Author != "Alice" || st.LastChange.Commit != out.Result.Commit {
			t.Errorf("step %d: last change %+v", i, st.LastChange)
		}
	}

	hist, err := c.History(ctx, "prod", "payment", 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range hist {
		actions = append(actions, e.Action)
	}
	if got := strings.Join(actions, ","); got != "canary-promote,canary-step,canary-set,canary-step,canary-start" {
		t.Errorf("history %s", got)
	}
	// The rendered chart follows: the promoted tag is now the stable image.
	if data := remote.File("gitops/envs/prod/payment/values.yaml"); !strings.Contains(string(data), `tag: "1.1.0"`) {
		t.Errorf("values file after promote:\n%s", data)
	}
}

func TestGatesAndFollowers(t *testing.T) {
	ctx := context.Background()
	remote := gitopstest.NewRemote(t)
	repo := openRepo(t, remote.Clone("Alice"))

	// Start a canary past a gate that passes.
	plain := canary.New(repo, pass)
	p, err := plain.Plan(ctx, "dev", "order", canary.Op{Action: canary.ActionStart, Tag: "1.1.0"}, "new build")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Execute(ctx, p); err != nil {
		t.Fatal(err)
	}

	var gateSaw []string
	var followed []string
	gate := canary.GateFunc(func(ctx context.Context, p *canary.Plan) error {
		gateSaw = append(gateSaw, string(p.Op.Action))
		return errors.New("5xx at 4% over 1m (limit 3%)")
	})
	follow := canary.FollowerFunc(func(ctx context.Context, p *canary.Plan, res gitops.Result) error {
		followed = append(followed, res.Commit)
		return errors.New("argo cd did not sync within 2m")
	})
	c := canary.New(repo, canary.WithGate(gate), canary.WithFollower(follow))

	// A failing gate stops a step: nothing is pushed.
	head := remote.Head()
	p, err = c.Plan(ctx, "dev", "order", canary.Op{Action: canary.ActionStep}, "looks fine")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Execute(ctx, p)
	var ge *canary.GateError
	if !errors.As(err, &ge) || !strings.Contains(err.Error(), "5xx at 4%") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("err = %v, want a GateError", err)
	}
	if remote.Head() != head {
		t.Error("a gated step was pushed")
	}

	// Rollback skips the gates; the follower runs and its error comes with the outcome.
	p, err = c.Plan(ctx, "dev", "order", canary.Op{Action: canary.ActionRollback}, "errors")
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Execute(ctx, p)
	if out == nil || out.Result.Commit != remote.Head() {
		t.Fatalf("rollback not pushed: %+v, %v", out, err)
	}
	if err == nil || !strings.Contains(err.Error(), "argo cd did not sync") || !strings.Contains(err.Error(), "is pushed as") {
		t.Errorf("follower error %v", err)
	}
	if strings.Join(gateSaw, ",") != "step" {
		t.Errorf("gates saw %v, want only the step", gateSaw)
	}
	if len(followed) != 1 || followed[0] != out.Result.Commit {
		t.Errorf("followed %v", followed)
	}
}

// TestStalePlanConflicts: Bob plans from what he read, Alice changes the canary, Bob's
// execution must fail with a conflict naming Alice, and the remote keeps her change.
func TestStalePlanConflicts(t *testing.T) {
	ctx := context.Background()
	remote := gitopstest.NewRemote(t)
	alice := canary.New(openRepo(t, remote.Clone("Alice")), pass)
	bob := canary.New(openRepo(t, remote.Clone("Bob")), pass)

	p, err := alice.Plan(ctx, "prod", "product", canary.Op{Action: canary.ActionStart, Tag: "3.0.0"}, "release 3.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Execute(ctx, p); err != nil {
		t.Fatal(err)
	}
	bobPlan, err := bob.Plan(ctx, "prod", "product", canary.Op{Action: canary.ActionStep}, "metrics ok")
	if err != nil {
		t.Fatal(err)
	}
	p, err = alice.Plan(ctx, "prod", "product", canary.Op{Action: canary.ActionRollback}, "5xx spike")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Execute(ctx, p); err != nil {
		t.Fatal(err)
	}
	_, err = bob.Execute(ctx, bobPlan)
	var conflict *gitops.ConflictError
	if !errors.As(err, &conflict) || len(conflict.Changes) != 1 || conflict.Changes[0].Action != "canary-rollback" ||
		!strings.Contains(err.Error(), "Alice") || !strings.Contains(err.Error(), "5xx spike") {
		t.Fatalf("err = %v, want a conflict naming Alice's rollback", err)
	}
	st, err := bob.Status(ctx, "prod", "product")
	if err != nil || st.Running() || st.Release.Canary.Weight != 0 {
		t.Errorf("after the conflict: %+v, %v", st.Release, err)
	}
}

// TestPolicy is the canary policy every front end gets from the Controller: gated actions are
// refused when no gate can judge them (none configured, or the gate source fails), skipping the
// gates needs nothing but the plan's reason and is recorded in a trailer, and rollback is never
// gated.
func TestPolicy(t *testing.T) {
	ctx := context.Background()
	remote := gitopstest.NewRemote(t)
	repo := openRepo(t, remote.Clone("Alice"))
	head := remote.Head()

	start := canary.Op{Action: canary.ActionStart, Tag: "1.1.0"}
	noProm := canary.WithGates(func(string) (canary.Gate, error) { return nil, errors.New("prometheus.url is not set") })
	for name, c := range map[string]*canary.Controller{
		"no gate configured": canary.New(repo),
		"gate source fails":  canary.New(repo, noProm),
	} {
		p, err := c.Plan(ctx, "dev", "order", start, "new build")
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Execute(ctx, p)
		var ge *canary.GateError
		if !errors.As(err, &ge) || !errors.Is(err, canary.ErrNoGates) || !strings.Contains(err.Error(), "nothing was changed") ||
			!strings.Contains(err.Error(), "--skip-gates") {
			t.Fatalf("%s: err = %v, want a GateError wrapping ErrNoGates", name, err)
		}
		if remote.Head() != head {
			t.Fatalf("%s: a refused start was pushed", name)
		}
	}

	// Skipped with a reason: pushed, and the skip is in the commit.
	c := canary.New(repo, noProm)
	p, err := c.Plan(ctx, "dev", "order", canary.Op{Action: canary.ActionStart, Tag: "1.1.0", SkipGates: true}, "Prometheus is down, release is urgent")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Execute(ctx, p); err != nil {
		t.Fatal(err)
	}
	msg := gitopstest.Git(t, remote.URL, "log", "-1", "--format=%B", "main")
	if !strings.Contains(msg, "\nCanary-Gates-Skipped: Prometheus is down, release is urgent") {
		t.Fatalf("commit lacks the skip trailer:\n%s", msg)
	}
	if !strings.Contains(p.Summary(), "[gates skipped]") {
		t.Errorf("summary %q does not say the gates are skipped", p.Summary())
	}

	// Rollback is never gated, so it has no gates to skip.
	if _, err := c.Plan(ctx, "dev", "order", canary.Op{Action: canary.ActionRollback, SkipGates: true}, "r"); !errors.Is(err, canary.ErrInvalid) {
		t.Errorf("rollback --skip-gates: %v", err)
	}
	p, err = c.Plan(ctx, "dev", "order", canary.Op{Action: canary.ActionRollback}, "errors")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Execute(ctx, p); err != nil {
		t.Fatalf("rollback without any gate: %v", err)
	}
	if msg := gitopstest.Git(t, remote.URL, "log", "-1", "--format=%B", "main"); strings.Contains(msg, canary.TrailerGatesSkipped) {
		t.Errorf("rollback commit claims skipped gates:\n%s", msg)
	}
}

// TestBakeTime: after a step, the next one is refused until the weight's commit (its git
// date) is the bake time old by the injected clock, saying how long remains; a rollback is
// never held back.
func TestBakeTime(t *testing.T) {
	ctx := context.Background()
	remote := gitopstest.NewRemote(t)
	commitAt := func(hhmm string) {
		t.Setenv("GIT_AUTHOR_DATE", "2026-11-25T"+hhmm+":00Z")
		t.Setenv("GIT_COMMITTER_DATE", "2026-11-25T"+hhmm+":00Z")
	}
	var now time.Time
	clock := func(hhmm string) {
		var err error
		if now, err = time.Parse(time.RFC3339, "2026-11-25T"+hhmm+":00Z"); err != nil {
			t.Fatal(err)
		}
	}
	c := canary.New(openRepo(t, remote.Clone("Alice")), pass, canary.WithBakeTime(5*time.Minute, func() time.Time { return now }))
	run := func(op canary.Op) error {
		t.Helper()
		p, err := c.Plan(ctx, "prod", "payment", op, "bake test")
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Execute(ctx, p)
		return err
	}

	commitAt("10:00")
	clock("10:00")
	if err := run(canary.Op{Action: canary.ActionStart, Tag: "1.1.0"}); err != nil {
		t.Fatalf("start is never held back: %v", err)
	}
	head := remote.Head()
	clock("10:02")
	err := run(canary.Op{Action: canary.ActionStep})
	var ge *canary.GateError
	if !errors.As(err, &ge) || ge.Gate != "bake" || !errors.Is(err, canary.ErrBaking) ||
		!strings.Contains(err.Error(), "10% was committed 2m0s ago") || !strings.Contains(err.Error(), "3m0s remain (try again after 10:05:00 UTC") ||
		!strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("step 2 minutes after the start = %v", err)
	}
	if remote.Head() != head {
		t.Fatal("a refused step moved the remote")
	}

	clock("10:05")
	commitAt("10:05")
	if err := run(canary.Op{Action: canary.ActionStep}); err != nil {
		t.Fatalf("step after 5 minutes: %v", err)
	}
	clock("10:09")
	if err := run(canary.Op{Action: canary.ActionSet, Weight: 50}); !errors.Is(err, canary.ErrBaking) || !strings.Contains(err.Error(), "30% was committed 4m0s ago") || !strings.Contains(err.Error(), "1m0s remain") {
		t.Fatalf("set 50 four minutes after 30%% = %v", err)
	}
	if err := run(canary.Op{Action: canary.ActionSet, Weight: 10}); err != nil {
		t.Fatalf("lowering the weight is never held back: %v", err)
	}
	if err := run(canary.Op{Action: canary.ActionRollback}); err != nil {
		t.Fatalf("a rollback is never held back: %v", err)
	}
}
