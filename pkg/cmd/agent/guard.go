package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/come2us/opsctl/pkg/agent"
	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/kube"
	"github.com/come2us/opsctl/pkg/rollout"
)

// Modes of --canary-guard.
const (
	guardAuto   = "auto"
	guardAlways = "always"
	guardNever  = "never"
)

// guardWanted decides whether the canary guard runs: always and never say so; auto runs it
// when the context names both a GitOps repository and a Prometheus, and otherwise says why not.
func (o *Options) guardWanted(c *config.Context) (bool, string, error) {
	var missing []string
	if c.GitOps.Repo == "" && c.GitOps.Dir == "" {
		missing = append(missing, "gitops.repo (or gitops.dir)")
	}
	if c.Prometheus.URL == "" {
		missing = append(missing, "prometheus.url")
	}
	switch {
	case o.CanaryGuard == guardNever:
		return false, "--canary-guard never", nil
	case len(missing) == 0:
		return true, "", nil
	case o.CanaryGuard == guardAlways:
		return false, "", cmdutil.FlagErrorf("--canary-guard always: the context sets no %s; nothing was started", strings.Join(missing, " and no "))
	}
	return false, "the context sets no " + strings.Join(missing, " and no "), nil
}

// guardLoop is the agent's "canary-guard" loop: a rollout.FleetGuard round every
// --canary-interval over the environments of --canary-envs.
func (o *Options) guardLoop(c *config.Context, id agent.Identity, logger *slog.Logger) agent.Loop {
	fg := &rollout.FleetGuard{
		Open:         guardStore(c, id.Actor),
		Gates:        guardGates(c),
		Namespace:    func(env string) string { return kube.Namespace(c.Kube, env) },
		Envs:         o.CanaryEnvs,
		FailureLimit: c.Canary.FailureLimit,
		Logger:       logger,
	}
	// A standby's counts would be stale when it leads again: it starts from zero.
	return agent.Loop{Name: "canary-guard", Interval: o.CanaryInterval, Step: fg.Step, OnIdle: fg.Reset}
}

// guardGates returns the evaluator of the context's Prometheus for every environment. The
// agent reads pod readiness from kube-state-metrics there too, not from the Kubernetes API: it
// needs no access to the workloads, only to its Lease.
func guardGates(c *config.Context) func(env string) (*canary.GateEvaluator, error) {
	return func(string) (*canary.GateEvaluator, error) {
		if c.Prometheus.URL == "" {
			return nil, canary.ErrNoPrometheus
		}
		var opts []canary.GateOption
		if d := c.PrometheusTimeout(); d > 0 {
			opts = append(opts, canary.GateWithDeadline(d))
		}
		return canary.NewGateEvaluator(c.Prometheus, opts...)
	}
}

// guardStore opens opsctl's own clone of the context's GitOps repository for one round: a
// clone of gitops.repo in the cache directory, or, for a context naming a working copy
// (gitops.dir), a clone of that copy's remote, so that nobody's edits can block a rollback.
// Commits are the agent's: author and committer are its actor, whatever git configures.
func guardStore(c *config.Context, actor string) func(ctx context.Context) (canary.Store, func() error, error) {
	email := actor
	if !strings.Contains(email, "@") {
		email += "@opsctl.invalid"
	}
	opts := []gitops.Option{
		gitops.WithGitEnv("GIT_AUTHOR_NAME="+actor, "GIT_AUTHOR_EMAIL="+email, "GIT_COMMITTER_NAME="+actor, "GIT_COMMITTER_EMAIL="+email),
		// One fetch (the clone's) serves a round's reads; a rollback fetches again anyway.
		gitops.WithFetchTTL(time.Minute),
	}
	if c.GitOps.Branch != "" {
		opts = append(opts, gitops.WithBranch(c.GitOps.Branch))
	}
	if d := c.GitTimeout(); d > 0 {
		opts = append(opts, gitops.WithTimeout(d))
	}
	return func(ctx context.Context) (canary.Store, func() error, error) {
		if c.GitOps.Repo != "" {
			r, err := gitops.Clone(ctx, c.GitOps.Repo, opts...)
			if err != nil {
				return nil, nil, err
			}
			return r, r.Close, nil
		}
		r, err := gitops.Open(ctx, expandHome(c.GitOps.Dir), opts...)
		if err != nil {
			return nil, nil, err
		}
		// Closing a working copy opened in place releases nothing and cannot fail.
		defer func() { _ = r.Close() }()
		w, closeW, err := r.WriteClone(ctx, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("prepare opsctl's own clone of %s: %w", r.Dir(), err)
		}
		return w, closeW, nil
	}
}

// validEnvs checks --canary-envs.
func validEnvs(envs []string) error {
	for _, e := range envs {
		if !slices.Contains(gitops.Environments(), e) {
			return cmdutil.FlagErrorf("--canary-envs %q: want %s", e, strings.Join(gitops.Environments(), ", "))
		}
	}
	return nil
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return home + "/" + rest
		}
	}
	return p
}
