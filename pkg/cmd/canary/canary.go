// Package canary implements `opsctl canary`: see and move Istio canary weights by committing to
// the GitOps repository (status, start, step, set, promote, rollback, history).
package canary

import (
	"context"
	"fmt"
	"os"
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

// openFromFactory resolves the repository: --gitops-dir, then the context's gitops.dir, then
// its gitops.repo (cloned into the cache). The context's gitops.branch applies to the latter two.
func openFromFactory(f *cmdutil.Factory, o *RepoOptions, extra ...gitops.Option) func(ctx context.Context) (*gitops.Repo, error) {
	return func(ctx context.Context) (*gitops.Repo, error) {
		// One command run reads several files; one fetch serves them all.
		opts := append([]gitops.Option{gitops.WithFetchTTL(time.Minute), operatorIdentity(f)}, extra...)
		// git never prompts (the gitops package sets GIT_TERMINAL_PROMPT=0): a prompt would
		// only wait for the deadline.
		if o.GitTimeout < 0 {
			return nil, cmdutil.FlagErrorf("--git-timeout must be positive, got %s", o.GitTimeout)
		}
		_, c, cerr := f.Context()
		timeout := o.GitTimeout
		if timeout <= 0 && cerr == nil {
			timeout = c.GitTimeout()
		}
		if timeout > 0 {
			opts = append(opts, gitops.WithTimeout(timeout))
		}
		if o.Dir != "" {
			return gitops.Open(ctx, expandHome(o.Dir), opts...)
		}
		if cerr != nil {
			return nil, cerr
		}
		if c.GitOps.Branch != "" {
			opts = append(opts, gitops.WithBranch(c.GitOps.Branch))
		}
		switch {
		case c.GitOps.Dir != "":
			return gitops.Open(ctx, expandHome(c.GitOps.Dir), opts...)
		case c.GitOps.Repo != "":
			return gitops.Clone(ctx, c.GitOps.Repo, opts...)
		}
		return nil, cmdutil.FlagErrorf("no GitOps repository: pass --gitops-dir, or set gitops.dir or gitops.repo in the context")
	}
}

// operatorIdentity is who commits when git configures nobody for the working copy: the
// operator, as the DLT ledger records them (cmdutil.Factory.Actor, OPSCTL_ACTOR or user@host).
func operatorIdentity(f *cmdutil.Factory) gitops.Option {
	actor := f.Actor()
	email := actor
	if !strings.Contains(email, "@") {
		email += "@opsctl.invalid"
	}
	return gitops.WithFallbackIdentity(actor, email)
}

// OpenRepo returns the GitOps repository opener every canary command uses, for callers outside
// the command tree (the TUI): dir when set, else the context's gitops.dir, else a cached clone
// of gitops.repo. extra options are added to the command's (a TUI passes
// gitops.WithGitEnv("GIT_TERMINAL_PROMPT=0"): a credential prompt would tear its screen).
func OpenRepo(f *cmdutil.Factory, dir string, extra ...gitops.Option) func(ctx context.Context) (*gitops.Repo, error) {
	return openFromFactory(f, &RepoOptions{Dir: dir}, extra...)
}

// NewLiveOptions returns the live-side openers (Argo CD, the mesh, the gates' Prometheus,
// namespaces) resolved from the factory's context, as the canary commands use them.
func NewLiveOptions(f *cmdutil.Factory) LiveOptions {
	var o LiveOptions
	liveFromFactory(f, &o)
	return o
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return home + "/" + rest
		}
	}
	return p
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
