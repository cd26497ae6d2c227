package redrive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/come2us/opsctl/pkg/agent"
	"github.com/come2us/opsctl/pkg/buildinfo"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/metrics"
	"github.com/come2us/opsctl/pkg/replay"
)

// ErrNoPolicy means no policy was named and the context has none.
var ErrNoPolicy = errors.New("no redrive policy")

// Resolve returns the policy a command applies: the file named by flag (re-read when it
// changes), the built-in default when flag is "default", else the redrive section of the
// context (named ctxName in the configuration file cfgFile).
func Resolve(flag string, ctx *config.Context, ctxName, cfgFile string) (Source, error) {
	switch {
	case flag == DefaultName:
		return Static{P: Default()}, nil
	case flag != "":
		return NewFileSource(flag)
	case ctx != nil && ctx.HasRedrive():
		p, err := FromNode(&ctx.Redrive, fmt.Sprintf("%s (context %s)", cfgFile, ctxName))
		if err != nil {
			return nil, err
		}
		return Static{P: p}, nil
	}
	return nil, fmt.Errorf("%w: pass --policy FILE, or --policy %s for the built-in policy (opsctl dlt redrive --print-default-policy shows it), or add a redrive section to context %s; nothing was changed",
		ErrNoPolicy, DefaultName, ctxName)
}

// AgentConfig configures the redrive loops of an agent.
type AgentConfig struct {
	Engine *replay.Engine
	Policy Source
	// Clock is the agent's clock (default time.Now).
	Clock func() time.Time
	// Metrics receives what passes and surveys find (nil: none).
	Metrics *metrics.Agent
	// Report records the health of the policy (an agent's Report), nil for none.
	Report func(component string, err error)
	// Identity names the agent in the metrics' info series.
	Identity string
	Logger   *slog.Logger
	// PassInterval and SurveyInterval pace the loops (defaults 30s and 1m); Window is how far
	// back surveys count redrive runs (DefaultWindow).
	PassInterval, SurveyInterval, Window time.Duration
}

// Loops returns the agent's redrive loops: "redrive", a pass every PassInterval, and
// "survey", the per-DLT state for the metrics every SurveyInterval. Both read the policy
// afresh each step, so a changed policy file is applied (or refused, and reported) within one
// interval.
func Loops(cfg AgentConfig) []agent.Loop {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PassInterval <= 0 {
		cfg.PassInterval = 30 * time.Second
	}
	if cfg.SurveyInterval <= 0 {
		cfg.SurveyInterval = time.Minute
	}
	l := &loops{AgentConfig: cfg}
	// Only the leader surveys and redrives: an agent that stops leading drops its per-DLT
	// series, so that alerts never read a former leader's numbers beside the new one's.
	idle := func() {
		if m := cfg.Metrics; m != nil {
			m.ResetDLTs()
			m.RedriveRefused.Reset()
		}
	}
	return []agent.Loop{
		{Name: "redrive", Interval: cfg.PassInterval, Step: l.pass, OnIdle: idle},
		{Name: "survey", Interval: cfg.SurveyInterval, Step: l.survey, OnIdle: idle},
	}
}

type loops struct {
	AgentConfig
	// mu serialises policy: both loops read the policy.
	mu      sync.Mutex
	digest  string // the policy digest last published
	problem string // the policy problem last logged
}

// policy returns the policy in force and publishes its state.
func (l *loops) policy() *Policy {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, problem := l.Policy.Policy()
	if l.Report != nil {
		l.Report("policy", problem)
	}
	if problem != nil && problem.Error() != l.problem {
		l.Logger.Error("redrive policy refused; the last good one stays in force", "err", problem)
	}
	l.problem = ""
	if problem != nil {
		l.problem = problem.Error()
	}
	if m := l.Metrics; m != nil {
		m.PolicyValid.Set(boolGauge(problem == nil))
		if p.Digest != l.digest {
			m.Info.Reset()
			m.Info.WithLabelValues(l.Identity, buildinfo.Get().Version, p.Digest).Set(1)
		}
	}
	if p.Digest != l.digest {
		if l.digest != "" {
			l.Logger.Info("redrive policy changed", "policy", p.Digest, "was", l.digest, "source", p.Source)
		}
		l.digest = p.Digest
	}
	return p
}

func (l *loops) pass(ctx context.Context) error {
	p := l.policy()
	rep, err := Pass(ctx, l.Engine, p, l.Clock, false)
	if m := l.Metrics; m != nil {
		for _, r := range rep.Runs {
			m.RedriveRefused.WithLabelValues(r.DLT, r.Rule).Set(float64(r.Refused))
			if r.Summary != nil && r.Summary.Replayed > 0 {
				m.RedriveRecords.WithLabelValues(r.DLT, r.Rule).Add(float64(r.Summary.Replayed))
			}
		}
		switch {
		case err != nil:
			m.RedrivePasses.WithLabelValues(metrics.PassError).Inc()
		case rep.Paused:
			m.RedrivePasses.WithLabelValues(metrics.PassPaused).Inc()
		default:
			m.RedrivePasses.WithLabelValues(metrics.PassOK).Inc()
			m.RedriveLastPass.Set(float64(rep.Finished.Unix()))
		}
	}
	for _, r := range rep.Runs {
		if r.Summary != nil {
			l.Logger.Info("redrove dead letters", "dlt", r.DLT, "rule", r.Rule, "run", r.Summary.RunID,
				"replayed", r.Summary.Replayed, "refused", r.Summary.Refused, "failed", r.Summary.Failed, "status", r.Summary.Status)
		}
		if r.Refused > 0 {
			l.Logger.Warn("due dead letters refused by the replay engine; they wait for an operator", "dlt", r.DLT, "rule", r.Rule, "refused", r.Refused)
		}
		if r.Note != "" {
			l.Logger.Info("redrive run", "dlt", r.DLT, "rule", r.Rule, "note", r.Note)
		}
	}
	return err
}

func (l *loops) survey(ctx context.Context) error {
	p := l.policy()
	s, err := TakeSurvey(ctx, l.Engine, p, l.Clock(), l.Window)
	if err != nil {
		return err
	}
	if m := l.Metrics; m != nil {
		ExportSurvey(m, s)
	}
	return nil
}

// ExportSurvey sets the per-DLT gauges from a survey; DLTs that no longer exist are dropped.
func ExportSurvey(m *metrics.Agent, s *Survey) {
	m.ResetDLTs()
	age := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return max(0, s.At.Sub(t).Seconds())
	}
	for _, d := range s.DLTs {
		m.DLTRecords.WithLabelValues(d.Topic).Set(float64(d.Records))
		m.DLTRecordsLastHour.WithLabelValues(d.Topic).Set(float64(d.LastHour))
		m.DLTOldestAge.WithLabelValues(d.Topic).Set(age(d.Oldest))
		m.DLTOperatorRecords.WithLabelValues(d.Topic).Set(float64(d.Operator))
		m.DLTOperatorOldestAge.WithLabelValues(d.Topic).Set(age(d.OperatorOldest))
		m.DLTRedriveWaiting.WithLabelValues(d.Topic).Set(float64(d.Waiting))
		m.DLTRedriveDue.WithLabelValues(d.Topic).Set(float64(d.Due))
		m.DLTRedriven.WithLabelValues(d.Topic).Set(float64(d.Redriven))
		m.DLTRedrivenCameBack.WithLabelValues(d.Topic).Set(float64(d.CameBack))
	}
	m.DLTSurveyTimestamp.Set(float64(s.At.Unix()))
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
