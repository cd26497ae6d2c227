package rollout

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

// fleet is a GitOps remote with canaries started by an operator, and a FleetGuard over it
// that opens its own clone of the remote each round, committing as the agent.
type fleet struct {
	remote *gitopstest.Remote
	prom   *promStub
	gates  *canary.GateEvaluator
	guard  *FleetGuard
	rolled []string
}

const agentActor = "opsctl-agent@agent-0"

func newFleet(t *testing.T, canaries ...[2]string) *fleet {
	t.Helper()
	f := &fleet{remote: gitopstest.NewRemote(t)}
	ctx := context.Background()
	op, err := gitops.Open(ctx, f.remote.Clone("Alice"))
	if err != nil {
		t.Fatal(err)
	}
	ctrl := canary.New(op)
	for _, c := range canaries {
		p, err := ctrl.Plan(ctx, c[0], c[1], canary.Op{Action: canary.ActionStart, Tag: "1.1.0", SkipGates: true}, "release 1.1.0")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ctrl.Execute(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	f.prom, f.gates = guardGates(t)
	cache := t.TempDir()
	f.guard = &FleetGuard{
		Open: func(ctx context.Context) (canary.Store, func() error, error) {
			r, err := gitops.Clone(ctx, f.remote.URL, gitops.WithCacheDir(cache), gitops.WithFetchTTL(time.Minute),
				gitops.WithGitEnv("GIT_AUTHOR_NAME="+agentActor, "GIT_AUTHOR_EMAIL="+agentActor,
					"GIT_COMMITTER_NAME="+agentActor, "GIT_COMMITTER_EMAIL="+agentActor))
			if err != nil {
				return nil, nil, err
			}
			return r, r.Close, nil
		},
		Gates: func(string) (*canary.GateEvaluator, error) { return f.gates, nil },
		RolledBack: func(env, service, reason string, res gitops.Result) {
			f.rolled = append(f.rolled, service+"/"+env+": "+reason)
		},
	}
	return f
}

// set gives each canary (env, service) its 5xx ratio over 600 requests.
func (f *fleet) set(t *testing.T, ratios map[[2]string]string) {
	t.Helper()
	values := map[string]string{}
	for c, v := range ratios {
		target := canary.GateTarget{Service: c[1], Env: c[0]}
		q5xx, _ := f.gates.Query(canary.GateQueryCanary5xx, target)
		qcount, _ := f.gates.Query(canary.GateQueryCanaryRequests, target)
		values[q5xx], values[qcount] = v, "600"
	}
	f.prom.mu.Lock()
	f.prom.values = values
	f.prom.mu.Unlock()
}

func (f *fleet) canaryOn(t *testing.T, env, service string) bool {
	t.Helper()
	rel, err := gitops.ReadRelease(f.remote.File("gitops/envs/" + env + "/" + service + "/values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return rel.Canary.Enabled
}

// TestFleetGuardRollsBackTheBreachingCanaryOnly: two canaries run, one breaches. Each round of
// the agent's guard judges both; the breaching one is rolled back once the breach held for the
// failure limit (2 rounds), in a commit by the agent with the breach as its reason; the healthy
// one, and a service without a canary, are left alone.
func TestFleetGuardRollsBackTheBreachingCanaryOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	orderProd, paymentDev := [2]string{"prod", "order"}, [2]string{"dev", "payment"}
	f := newFleet(t, orderProd, paymentDev)
	f.set(t, map[[2]string]string{orderProd: "0.052", paymentDev: "0.001"})
	head := f.remote.Head()

	if err := f.guard.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if f.remote.Head() != head || len(f.rolled) != 0 {
		t.Fatalf("the first breaching round rolled back (%v)", f.rolled)
	}
	if err := f.guard.Step(ctx); err != nil {
		t.Fatal(err)
	}
	reason := "auto-rollback: canary 5xx rate (1m average) 5.20% (rollback if ≥ 3%)"
	if len(f.rolled) != 1 || f.rolled[0] != "order/prod: "+reason {
		t.Fatalf("rollbacks %q", f.rolled)
	}
	if f.canaryOn(t, "prod", "order") || !f.canaryOn(t, "dev", "payment") {
		t.Fatalf("after the rollback: order/prod on=%v, payment/dev on=%v", f.canaryOn(t, "prod", "order"), f.canaryOn(t, "dev", "payment"))
	}
	msg := gitopstest.Git(t, f.remote.URL, "log", "-1", "--format=%an <%ae>%n%B", "main")
	for _, want := range []string{agentActor + " <" + agentActor + ">", reason, "Opsctl-Action: canary-rollback", "Opsctl-Service: order", "Opsctl-Env: prod"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("rollback commit lacks %q:\n%s", want, msg)
		}
	}
	// Nothing left to roll back: more rounds change nothing.
	head = f.remote.Head()
	for range 2 {
		if err := f.guard.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if f.remote.Head() != head || len(f.rolled) != 1 {
		t.Fatalf("later rounds pushed (%q)", f.rolled)
	}
}

// TestFleetGuardRetriesARefusedRollback: the remote refuses the rollback push. The round
// returns the error (the agent retries the step and reports the loop unhealthy) and the breach
// count survives, so the next round that still breaches rolls back at once.
func TestFleetGuardRetriesARefusedRollback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	orderProd := [2]string{"prod", "order"}
	f := newFleet(t, orderProd)
	f.set(t, map[[2]string]string{orderProd: "0.052"})
	rejectPushes(t, f.remote, 1, "remote: the branch is locked for maintenance")

	if err := f.guard.Step(ctx); err != nil {
		t.Fatal(err)
	}
	err := f.guard.Step(ctx)
	if err == nil || !strings.Contains(err.Error(), "roll back order/prod after a breach (canary 5xx rate (1m average) 5.20% (rollback if ≥ 3%))") ||
		!strings.Contains(err.Error(), "locked for maintenance") {
		t.Fatalf("round with a refused push = %v", err)
	}
	var rejected *gitops.PushRejectedError
	if !errors.As(err, &rejected) {
		t.Fatalf("round error %T does not carry the refusal", err)
	}
	if !f.canaryOn(t, "prod", "order") {
		t.Fatal("the canary is off although the push was refused")
	}
	if err := f.guard.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if f.canaryOn(t, "prod", "order") || len(f.rolled) != 1 {
		t.Fatalf("the retry did not roll back (%q)", f.rolled)
	}
}

// TestFleetGuardNeverRollsBackOnUnknown: without data (Prometheus answers nothing) no round
// rolls back: unknown is no breach, and a monitoring outage must not move traffic.
func TestFleetGuardNeverRollsBackOnUnknown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFleet(t, [2]string{"prod", "order"})
	head := f.remote.Head()
	for range 3 {
		if err := f.guard.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if f.remote.Head() != head || len(f.rolled) != 0 {
		t.Fatalf("rolled back without data: %q", f.rolled)
	}
}

// TestFleetGuardWithoutPrometheusFails: a context without Prometheus cannot guard: every round
// fails, saying so, and nothing is pushed.
func TestFleetGuardWithoutPrometheusFails(t *testing.T) {
	t.Parallel()
	f := newFleet(t, [2]string{"prod", "order"})
	f.guard.Gates = func(string) (*canary.GateEvaluator, error) { return nil, canary.ErrNoPrometheus }
	head := f.remote.Head()
	err := f.guard.Step(context.Background())
	if !errors.Is(err, canary.ErrNoPrometheus) || !strings.Contains(err.Error(), "judge the canary of order/prod") {
		t.Fatalf("round without Prometheus = %v", err)
	}
	if f.remote.Head() != head {
		t.Fatal("pushed without gates")
	}
}

// TestFleetGuardResetForgetsBreaches: after Reset (the agent stopped leading) one breaching
// round is a first breach again, not the second of a run.
func TestFleetGuardResetForgetsBreaches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	orderProd := [2]string{"prod", "order"}
	f := newFleet(t, orderProd)
	f.set(t, map[[2]string]string{orderProd: "0.052"})
	if err := f.guard.Step(ctx); err != nil {
		t.Fatal(err)
	}
	f.guard.Reset()
	if err := f.guard.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if !f.canaryOn(t, "prod", "order") || len(f.rolled) != 0 {
		t.Fatalf("rolled back on the first breach after a reset: %q", f.rolled)
	}
	if err := f.guard.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if f.canaryOn(t, "prod", "order") {
		t.Fatal("two breaching rounds after the reset did not roll back")
	}
}
