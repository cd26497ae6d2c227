package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/gitops"
)

// FleetGuard is the canary guard of `opsctl agent`: each round (Step) it reads every service's
// values file in every environment from the GitOps repository, judges the rollback criteria of
// each running canary, and rolls back, through git, a canary whose breach held for
// FailureLimit consecutive rounds — the same criteria, failure limit and rollback as
// `canary watch --auto-rollback`, without anyone's terminal having to stay open.
//
// It changes weights only through git: Argo CD syncs the rollback like any other commit, so
// nothing fights Argo CD over the VirtualService. Each round opens opsctl's own clone (Open),
// never a working copy someone edits. A round that fails for one canary (a file that does not
// parse, a refused push) still judges the others and returns the errors joined; the agent
// retries the step, and the breach counts survive it, so a failed rollback is tried again as
// soon as the breach still holds.
type FleetGuard struct {
	// Open returns opsctl's own clone of the GitOps repository, fresh from the remote, and a
	// function that releases it. It is called once per round.
	Open func(ctx context.Context) (canary.Store, func() error, error)
	// Gates returns the evaluator for an environment's canaries (the context's Prometheus).
	Gates func(env string) (*canary.GateEvaluator, error)
	// Namespace returns the workloads' namespace of env; nil or "" means come2us-<env>.
	Namespace func(env string) string
	// Envs and Services are what is guarded (default gitops.Environments() and
	// gitops.Services()).
	Envs, Services []string
	// FailureLimit is how many consecutive breaching rounds roll a canary back (default
	// DefaultFailureLimit).
	FailureLimit int
	// Logger receives breaches, rollbacks and per-canary errors (default: discarded).
	Logger *slog.Logger
	// RolledBack, when set, hears of each rollback that landed (metrics, tests).
	RolledBack func(env, service string, reason string, res gitops.Result)

	mu sync.Mutex
	// runs holds the analysis of each running canary, by env/service@tag: a new canary of
	// the same service starts from zero.
	runs map[string]*Analysis
}

// watched is one running canary found in a round.
type watched struct {
	env, service string
	key          string
	report       canary.GateReport
	err          error
}

// Step is one round over every canary. It returns nil when every canary was read and judged
// (and every due rollback landed), else the errors joined.
func (g *FleetGuard) Step(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.runs == nil {
		g.runs = map[string]*Analysis{}
	}
	log := g.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	store, closeStore, err := g.Open(ctx)
	if err != nil {
		return fmt.Errorf("open the GitOps repository: %w", err)
	}
	defer func() { _ = closeStore() }()

	var errs []error
	var running []*watched
	seen := map[string]bool{}
	for _, env := range orDefault(g.Envs, gitops.Environments()) {
		for _, svc := range orDefault(g.Services, gitops.Services()) {
			snap, err := store.Read(ctx, env, svc)
			if err != nil {
				errs = append(errs, fmt.Errorf("read the canary of %s/%s: %w", svc, env, err))
				// Its count stays: an unreadable round is no evidence either way.
				seen[keyPrefix(env, svc)] = true
				continue
			}
			if !snap.Release.Canary.Enabled {
				continue
			}
			w := &watched{env: env, service: svc, key: keyPrefix(env, svc) + snap.Release.Canary.Tag}
			seen[w.key] = true
			running = append(running, w)
		}
	}
	// Forget canaries that ended (promoted, rolled back by someone) or were replaced.
	for k := range g.runs {
		if !seen[k] && !seen[prefixOf(k)] {
			delete(g.runs, k)
		}
	}

	// Judge every canary at once: a Prometheus that does not answer costs one deadline per
	// round, not one per canary.
	var wg sync.WaitGroup
	for _, w := range running {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev, err := g.Gates(w.env)
			if err != nil {
				w.err = fmt.Errorf("judge the canary of %s/%s: %w", w.service, w.env, err)
				return
			}
			ns := ""
			if g.Namespace != nil {
				ns = g.Namespace(w.env)
			}
			w.report, w.err = ev.Evaluate(ctx, canary.GateTarget{Service: w.service, Env: w.env, Namespace: ns}, canary.GateRollbackCriteria())
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}

	ctrl := canary.New(store)
	for _, w := range running {
		if w.err != nil {
			errs = append(errs, w.err)
			continue
		}
		an := g.runs[w.key]
		if an == nil {
			an = &Analysis{Limit: g.FailureLimit}
			g.runs[w.key] = an
		}
		b, consecutive, due := an.Observe(w.report)
		if len(b) == 0 {
			log.Debug("canary passes", "service", w.service, "env", w.env, "verdict", w.report.Verdict())
			continue
		}
		log.Warn("canary breaches its rollback criteria", "service", w.service, "env", w.env,
			"breach", canary.GateBreachReason(b), "consecutive", consecutive, "limit", an.limit())
		if !due {
			continue
		}
		reason := Reason(b)
		res, err := g.rollback(ctx, ctrl, w.env, w.service, reason)
		if err != nil {
			errs = append(errs, fmt.Errorf("roll back %s/%s after a breach (%s): %w", w.service, w.env, canary.GateBreachReason(b), err))
			continue
		}
		delete(g.runs, w.key)
		log.Warn("canary rolled back", "service", w.service, "env", w.env, "reason", reason,
			"commit", res.Commit, "already", res.AlreadyApplied)
		if g.RolledBack != nil {
			g.RolledBack(w.env, w.service, reason, res)
		}
	}
	return errors.Join(errs...)
}

// Reset forgets every breach count. The agent calls it when it stops leading: counts from
// before a gap in leadership are not consecutive with what a later round sees.
func (g *FleetGuard) Reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.runs = nil
}

// rollback commits the rollback of env/service with reason: never gated, and it wins every
// race but one against another rollback.
func (g *FleetGuard) rollback(ctx context.Context, ctrl *canary.Controller, env, service, reason string) (gitops.Result, error) {
	p, err := ctrl.Plan(ctx, env, service, canary.Op{Action: canary.ActionRollback}, reason)
	if errors.Is(err, gitops.ErrNoChange) {
		// Rolled back by someone else since the round read the file.
		return gitops.Result{AlreadyApplied: true}, nil
	}
	if err != nil {
		return gitops.Result{}, err
	}
	out, err := ctrl.Execute(ctx, p)
	if err != nil {
		return gitops.Result{}, err
	}
	return out.Result, nil
}

// FleetGuardInterval is the default pause between rounds: as often as `canary watch` checks.
const FleetGuardInterval = 30 * time.Second

func keyPrefix(env, service string) string { return env + "/" + service + "@" }

// prefixOf returns the env/service@ part of a key.
func prefixOf(key string) string {
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == '@' {
			return key[:i+1]
		}
	}
	return key
}

func orDefault(v, def []string) []string {
	if len(v) == 0 {
		return def
	}
	return v
}
