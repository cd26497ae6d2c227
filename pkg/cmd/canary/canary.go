// Package canary implements `opsctl canary`: see and move Istio canary weights by committing to
// the GitOps repository (status, start, step, set, promote, rollback, history).
package canary

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/gitops"
)

// NewCmdCanary returns `opsctl canary` with its subcommands.
func NewCmdCanary(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "canary <command>",
		Short: "Shift canary traffic by committing weights to the GitOps repository",
		Long: `Canaries are manual and GitOps-driven: each command edits the service's values file
(gitops/envs/<env>/<service>/values.yaml), commits it with Opsctl-* trailers and pushes;
Argo CD syncs it and the Istio VirtualService splits the traffic.

Phases: 0 (0% -> 10%), 1 (10% -> 30%), 2 (30% -> 50%), 3 (50% -> 100%), then promote.
Rollback sends all traffic back to v1 in one commit.

The live side: status shows the live VirtualService weight and whether git, Argo CD and the
mesh agree; --wait follows a pushed change into Argo CD and Envoy; check judges the design's
rollback and phase criteria on Prometheus; start, step, set and promote refuse to move traffic
while one fails or has no data (--skip-gates --reason overrides, recorded in the commit);
rollback is never gated; watch --auto-rollback rolls back on a breach.

The repository is --gitops-dir (a working copy), else the context's gitops.dir, else the
context's gitops.repo (cloned into the user cache directory).`,
	}
	cmd.AddCommand(
		NewCmdStatus(f, nil),
		NewCmdMutate(f, canary.ActionStart, nil),
		NewCmdMutate(f, canary.ActionStep, nil),
		NewCmdMutate(f, canary.ActionSet, nil),
		NewCmdMutate(f, canary.ActionPromote, nil),
		NewCmdMutate(f, canary.ActionRollback, nil),
		NewCmdHistory(f, nil),
		NewCmdCheck(f, nil),
		NewCmdWatch(f, nil),
	)
	return cmd
}

// RepoOptions say where the GitOps repository is. Every subcommand embeds them.
type RepoOptions struct {
	// Dir is --gitops-dir: an existing working copy.
	Dir string
	// GitTimeout is --git-timeout: how long each git command (fetch, push, clone...) may run;
	// 0 means the context's gitops.timeout, else gitops.DefaultTimeout.
	GitTimeout time.Duration
	// Open opens the repository; NewCmd* sets it from the factory, tests may replace it.
	Open func(ctx context.Context) (*gitops.Repo, error)
}

func addRepoFlags(cmd *cobra.Command, o *RepoOptions) {
	cmd.Flags().StringVar(&o.Dir, "gitops-dir", "", "GitOps working copy to use (default: the context's gitops.dir or gitops.repo)")
	cmd.Flags().DurationVar(&o.GitTimeout, "git-timeout", 0, "how long each git fetch, push or clone may take before it is stopped (default: the context's gitops.timeout, else 30s)")
}

// openFromFactory resolves the repository as every opsctl command does
// (cmdutil.Factory.GitOpsOpener), with the command's --gitops-dir and --git-timeout.
func openFromFactory(f *cmdutil.Factory, o *RepoOptions, extra ...gitops.Option) func(ctx context.Context) (*gitops.Repo, error) {
	return f.GitOpsOpener(o.Dir, o.GitTimeout, extra...)
}

// exactArgs and maxArgs are cobra argument checks that fail as usage errors (exit 2).
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return cmdutil.FlagErrorf("expected %s, got %d argument(s)", what, len(args))
		}
		return nil
	}
}

func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) > n {
			return cmdutil.FlagErrorf("expected at most %s, got %d arguments", what, len(args))
		}
		return nil
	}
}

// validEnv checks an --env value ("" allowed when optional).
func validEnv(env string, required bool) error {
	if env == "" {
		if required {
			return cmdutil.FlagErrorf("--env is required (%s)", strings.Join(gitops.Environments(), " or "))
		}
		return nil
	}
	if !slices.Contains(gitops.Environments(), env) {
		return cmdutil.FlagErrorf("unknown environment %q: want %s", env, strings.Join(gitops.Environments(), " or "))
	}
	return nil
}

// validService checks a SERVICE argument.
func validService(svc string) error {
	if !slices.Contains(gitops.Services(), svc) {
		return cmdutil.FlagErrorf("unknown service %q: want one of %s", svc, strings.Join(gitops.Services(), ", "))
	}
	return nil
}

// stateLabel renders a canary state compactly: "off" or "1.1.0 @ 30%".
func stateLabel(r gitops.Release) string {
	if !r.Canary.Enabled {
		return "off"
	}
	return fmt.Sprintf("%s @ %d%%", r.Canary.Tag, r.Canary.Weight)
}

// age renders how long ago t was ("45s", "12m", "3h", "4d").
func age(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// shortCommit abbreviates a commit hash to seven characters for tables.
func shortCommit(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}
