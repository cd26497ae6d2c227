// Package agent is the long-running side of opsctl, `opsctl agent`: a small runner of
// independent loops (the DLT redrive and survey now; the canary guard later) that run only on
// the replica holding a Kubernetes Lease, with one identity, one health state and one set of
// Prometheus metrics shared by every loop.
//
// Leadership decides who works; it does not decide what is committed. A deposed leader may
// still be finishing a step when its successor starts one (a lease lost to a dead API, a
// paused process): the loops must stay correct then, as the redrive loop is — every replay
// run fences the earlier runs of its DLT in Kafka, so a record goes out once whoever sends it.
//
// Nothing ends the process but its context: a failed step marks its loop unhealthy and is
// retried with a backoff, a panicking step is recovered and reported the same way, and a
// Kubernetes API that stops answering costs the lease (the loops stop) until it answers again.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/come2us/opsctl/pkg/metrics"
)

// Loop is one job of the agent, run step after step while the agent leads.
type Loop struct {
	// Name identifies the loop in health, metrics and logs ("redrive", "survey").
	Name string
	// Interval is the pause between the end of a step that succeeded and the next one.
	Interval time.Duration
	// Step does one round of the job. An error marks the loop unhealthy until a step succeeds;
	// the next step comes after a backoff instead of the interval. Step must return when ctx
	// is cancelled (the agent stops, or loses the lease).
	Step func(ctx context.Context) error
	// OnIdle, when set, runs when the loop stops (the agent stops leading, or stops): it
	// clears what only a running loop keeps true, such as the gauges a standby must not
	// export.
	OnIdle func()
}

// Config configures an Agent.
type Config struct {
	// Identity is who the agent is: in the lease, the ledger and the metrics.
	Identity Identity
	Loops    []Loop
	// Election elects the one agent that acts among several replicas; nil runs this one alone.
	Election *Election
	// Metrics receives the agent's own series (nil: none).
	Metrics *metrics.Agent
	// Clock paces the loops (default: the real clock); tests step a fake one.
	Clock clock.Clock
	// Logger receives what the agent does (default: discarded).
	Logger *slog.Logger
	// RetryMin and RetryMax bound the backoff after a failed step: RetryMin, doubling up to
	// RetryMax (defaults 5s and 1m), never longer than the loop's interval.
	RetryMin, RetryMax time.Duration
}

// Agent runs loops on the leader.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	health *health
}

// New returns an Agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	if cfg.Identity.ID == "" {
		return nil, errors.New("agent: Config.Identity is required")
	}
	names := map[string]bool{}
	for _, l := range cfg.Loops {
		if l.Name == "" || l.Step == nil || l.Interval <= 0 {
			return nil, fmt.Errorf("agent: loop %q needs a name, a step and a positive interval", l.Name)
		}
		if names[l.Name] {
			return nil, fmt.Errorf("agent: two loops named %q", l.Name)
		}
		names[l.Name] = true
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 5 * time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(cfg.RetryMin, time.Minute)
	}
	role := RoleSingle
	if cfg.Election != nil {
		role = RoleStandby
		if err := cfg.Election.validate(); err != nil {
			return nil, err
		}
	}
	a := &Agent{cfg: cfg, log: cfg.Logger.With("agent", cfg.Identity.ID)}
	a.health = newHealth(cfg.Clock, cfg.Metrics, cfg.Identity.ID, role)
	if cfg.Metrics != nil {
		for _, l := range cfg.Loops {
			cfg.Metrics.LoopHealthy.WithLabelValues(l.Name).Set(0)
			cfg.Metrics.LoopErrors.WithLabelValues(l.Name)
		}
	}
	return a, nil
}

// Report records the health of a component outside the loops (the policy, say): err nil means
// it works. An unhealthy component makes the whole agent unhealthy.
func (a *Agent) Report(component string, err error) { a.health.set(component, err) }

// Status returns the agent's current status.
func (a *Agent) Status() Status { return a.health.status() }

// Run runs the agent until ctx is cancelled: alone, or campaigning for the lease and running
// the loops whenever it holds it. It returns nil once everything it started has stopped (and
// a held lease was released).
func (a *Agent) Run(ctx context.Context) error {
	a.log.Info("agent starting", "identity", a.cfg.Identity.ID, "role", a.health.status().Role, "loops", len(a.cfg.Loops))
	if a.cfg.Election == nil {
		a.lead(ctx)
		return nil
	}
	return a.runElected(ctx)
}

// lead runs every loop until ctx ends, and returns once all have stopped.
func (a *Agent) lead(ctx context.Context) {
	var wg sync.WaitGroup
	for _, l := range a.cfg.Loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.runLoop(ctx, l)
		}()
	}
	wg.Wait()
	for _, l := range a.cfg.Loops {
		a.health.idle(loopComponent(l.Name))
		if l.OnIdle != nil {
			l.OnIdle()
		}
	}
}

func loopComponent(name string) string { return "loop/" + name }

// runLoop runs l's steps until ctx ends: the interval after a step that succeeded, a backoff
// after one that failed.
func (a *Agent) runLoop(ctx context.Context, l Loop) {
	failures := 0
	for ctx.Err() == nil {
		err := a.step(ctx, l)
		if ctx.Err() != nil {
			return // stopped mid-step: not a failure of the loop
		}
		a.health.set(loopComponent(l.Name), err)
		wait := l.Interval
		if err != nil {
			failures++
			wait = min(l.Interval, a.retryAfter(failures))
			a.log.Warn("loop step failed; retrying", "loop", l.Name, "failures", failures, "retry_in", wait, "err", err)
			if m := a.cfg.Metrics; m != nil {
				m.LoopErrors.WithLabelValues(l.Name).Inc()
			}
		} else {
			failures = 0
		}
		if m := a.cfg.Metrics; m != nil {
			m.LoopHealthy.WithLabelValues(l.Name).Set(b2f(err == nil))
		}
		t := a.cfg.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// retryAfter is the backoff after n failed steps in a row.
func (a *Agent) retryAfter(n int) time.Duration {
	d := a.cfg.RetryMin
	for i := 1; i < n && d < a.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, a.cfg.RetryMax)
}

// step runs one step; a panic is recovered into an error, so no loop ends the process.
func (a *Agent) step(ctx context.Context, l Loop) (err error) {
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("loop step panicked", "loop", l.Name, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("loop %s panicked: %v", l.Name, p)
		}
	}()
	return l.Step(ctx)
}
