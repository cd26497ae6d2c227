package canary_test

import (
	"context"
	"errors"
	"testing"
	"time"

	pcanary "github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
	"github.com/come2us/opsctl/tui/canary"
)

// startedCanary is a GitOps remote whose order/prod canary was started at 1.1.0 (gates
// skipped), and a working copy of it.
func startedCanary(t *testing.T) (*gitopstest.Remote, string) {
	t.Helper()
	ctx := context.Background()
	remote := gitopstest.NewRemote(t)
	dir := remote.Clone("Bob")
	repo, err := gitops.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	ctrl := pcanary.New(repo)
	p, err := ctrl.Plan(ctx, "prod", "order", pcanary.Op{Action: pcanary.ActionStart, Tag: "1.1.0", SkipGates: true}, "release 1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctrl.Execute(ctx, p); err != nil {
		t.Fatal(err)
	}
	return remote, dir
}

// TestBackendAppliesTheCanaryPolicy: the board's backend goes through pkg/canary's service, so
// a context without Prometheus refuses a step from the TUI exactly as `opsctl canary step`
// does (ErrNoGates, nothing pushed), while a rollback still lands.
func TestBackendAppliesTheCanaryPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	remote, dir := startedCanary(t)

	be := canary.NewBackend(canary.Deps{OpenRepo: func(ctx context.Context) (*gitops.Repo, error) { return gitops.Open(ctx, dir) }})
	head := remote.Head()
	step, _, err := be.Plan(ctx, "prod", "order", pcanary.Op{Action: pcanary.ActionStep})
	if err != nil {
		t.Fatal(err)
	}
	out, err := be.Execute(ctx, step, "looks fine", func(canary.Progress) {})
	var ge *pcanary.GateError
	if out != nil || !errors.As(err, &ge) || !errors.Is(err, pcanary.ErrNoGates) || !errors.Is(err, pcanary.ErrNoPrometheus) {
		t.Fatalf("step without Prometheus: %+v, %v; want the policy's refusal", out, err)
	}
	if remote.Head() != head {
		t.Fatal("the TUI stepped a canary no gate could judge")
	}

	back, _, err := be.Plan(ctx, "prod", "order", pcanary.Op{Action: pcanary.ActionRollback})
	if err != nil {
		t.Fatal(err)
	}
	var stages []canary.Progress
	out, err = be.Execute(ctx, back, "errors", func(p canary.Progress) { stages = append(stages, p) })
	if err != nil || out == nil || out.Result.Commit != remote.Head() {
		t.Fatalf("rollback: %+v, %v", out, err)
	}
	// The push is reported by the service's first follower, with the commit, before the end.
	var pushed bool
	for _, s := range stages {
		pushed = pushed || s.Commit == out.Result.Commit
	}
	if !pushed || stages[len(stages)-1].Frac != 1 {
		t.Errorf("progress %+v", stages)
	}
}

// TestBackendHoldsAStepForTheBakeTime: the board's step waits out the bake time as `opsctl
// canary step` does — one policy — while a rollback never waits.
func TestBackendHoldsAStepForTheBakeTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	remote, dir := startedCanary(t)

	// Gates that open (their Prometheus is never reached: the bake time refuses first).
	gates := func(string) (*pcanary.GateEvaluator, error) {
		return pcanary.NewGateEvaluator(config.Prometheus{URL: "http://127.0.0.1:1"})
	}
	// The start is committed at 10:00 (TestMain) and the clock says 12:00: a 3-hour bake has
	// an hour to go, whatever day the test runs on.
	be := canary.NewBackend(canary.Deps{OpenRepo: func(ctx context.Context) (*gitops.Repo, error) { return gitops.Open(ctx, dir) },
		Gates: gates, BakeTime: 3 * time.Hour, Now: func() time.Time { return fixedNow }})
	head := remote.Head()
	step, _, err := be.Plan(ctx, "prod", "order", pcanary.Op{Action: pcanary.ActionStep})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := be.Execute(ctx, step, "looks fine", func(canary.Progress) {}); !errors.Is(err, pcanary.ErrBaking) {
		t.Fatalf("step right after the start: %v; want it held back by the bake time", err)
	}
	if remote.Head() != head {
		t.Fatal("the board stepped a canary that had not baked")
	}
	back, _, err := be.Plan(ctx, "prod", "order", pcanary.Op{Action: pcanary.ActionRollback})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := be.Execute(ctx, back, "errors", func(canary.Progress) {}); err != nil || out == nil {
		t.Fatalf("rollback during the bake time: %+v, %v", out, err)
	}
}
