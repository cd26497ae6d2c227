package cmdutil

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/come2us/opsctl/pkg/gitops"
)

// GitOpsOpener returns the GitOps repository opener of every command and view that reads or
// changes the GitOps repository: dir when set (--gitops-dir), then the context's gitops.dir,
// then its gitops.repo (cloned into the cache); the context's gitops.branch applies to the
// latter two. Each git command gets timeout (--git-timeout), else the context's
// gitops.timeout, else the gitops default. Commits carry the working copy's git identity, else
// the operator (Actor). extra options are added (a TUI passes
// gitops.WithGitEnv("GIT_TERMINAL_PROMPT=0"): a credential prompt would tear its screen).
func (f *Factory) GitOpsOpener(dir string, timeout time.Duration, extra ...gitops.Option) func(ctx context.Context) (*gitops.Repo, error) {
	return func(ctx context.Context) (*gitops.Repo, error) {
		// One command run reads several files; one fetch serves them all.
		opts := append([]gitops.Option{gitops.WithFetchTTL(time.Minute), f.operatorIdentity()}, extra...)
		// git never prompts (the gitops package sets GIT_TERMINAL_PROMPT=0): a prompt would
		// only wait for the deadline.
		if timeout < 0 {
			return nil, FlagErrorf("--git-timeout must be positive, got %s", timeout)
		}
		_, c, cerr := f.Context()
		if timeout <= 0 && cerr == nil {
			timeout = c.GitTimeout()
		}
		if timeout > 0 {
			opts = append(opts, gitops.WithTimeout(timeout))
		}
		if dir != "" {
			return gitops.Open(ctx, expandHome(dir), opts...)
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
		return nil, FlagErrorf("no GitOps repository: pass --gitops-dir, or set gitops.dir or gitops.repo in the context")
	}
}

// operatorIdentity is who commits when git configures nobody for the working copy: the
// operator, as the DLT ledger records them (Actor, OPSCTL_ACTOR or user@host).
func (f *Factory) operatorIdentity() gitops.Option {
	actor := f.Actor()
	email := actor
	if !strings.Contains(email, "@") {
		email += "@opsctl.invalid"
	}
	return gitops.WithFallbackIdentity(actor, email)
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return home + "/" + rest
		}
	}
	return p
}
