package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// gitopsMarkers are the files that identify the repository's GitOps tree.
var gitopsMarkers = []string{
	filepath.Join("argocd", "applicationset.yaml"),
	filepath.Join("charts", "saga-service", "Chart.yaml"),
}

// ErrNoGitOps means the GitOps tree to seed the sandbox repository from was not found.
var ErrNoGitOps = errors.New("the repository's gitops/ tree was not found")

// FindGitOps returns the gitops/ directory of the opsctl repository that holds dir (searching
// dir and its parents), the tree a fresh clone's `go run ./cmd/opsctl-sandbox` seeds from.
func FindGitOps(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		cand := filepath.Join(d, "gitops")
		if isGitOpsTree(cand) {
			return cand, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%w in %s or above it: run the sandbox from a clone of the opsctl repository, or pass --gitops DIR", ErrNoGitOps, abs)
		}
	}
}

func isGitOpsTree(dir string) bool {
	for _, m := range gitopsMarkers {
		if st, err := os.Stat(filepath.Join(dir, m)); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// gitRunner runs the git CLI, never prompting.
type gitRunner struct{ env []string }

func (g gitRunner) run(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"GIT_TERMINAL_PROMPT=0"}, g.env...)...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// seedRepo makes bare (the remote Argo CD watches and opsctl pushes to) and work (a clone of it,
// the operator's working copy), both holding src's tree under gitops/ on main. Existing
// repositories are kept as they are: a kept state keeps its history.
func seedRepo(ctx context.Context, src, bare, work string) (created bool, err error) {
	g := gitRunner{}
	if _, err := exec.LookPath("git"); err != nil {
		return false, fmt.Errorf("the sandbox's GitOps repository needs the git CLI: %w", err)
	}
	if _, err := os.Stat(filepath.Join(bare, "HEAD")); err == nil {
		if _, err := os.Stat(filepath.Join(work, ".git")); err != nil {
			if _, err := g.run(ctx, filepath.Dir(work), "clone", "--quiet", bare, work); err != nil {
				return false, err
			}
		}
		return false, ensureIdentity(ctx, g, work)
	}
	if !isGitOpsTree(src) {
		return false, fmt.Errorf("%s: %w (it must hold argocd/applicationset.yaml and charts/saga-service)", src, ErrNoGitOps)
	}
	if _, err := g.run(ctx, filepath.Dir(bare), "init", "--quiet", "--bare", "--initial-branch=main", bare); err != nil {
		return false, err
	}
	if err := os.RemoveAll(work); err != nil {
		return false, err
	}
	if _, err := g.run(ctx, filepath.Dir(work), "init", "--quiet", "--initial-branch=main", work); err != nil {
		return false, err
	}
	if err := copyTree(src, filepath.Join(work, "gitops")); err != nil {
		return false, fmt.Errorf("copy %s into the sandbox repository: %w", src, err)
	}
	if err := ensureIdentity(ctx, g, work); err != nil {
		return false, err
	}
	steps := [][]string{
		{"add", "--all"},
		{"-c", "commit.gpgsign=false", "-c", "user.name=" + seedName, "-c", "user.email=" + seedEmail,
			"commit", "--quiet", "-m", "GitOps tree for the opsctl sandbox", "-m", "Seeded from " + src + "."},
		{"remote", "add", "origin", bare},
		{"push", "--quiet", "--set-upstream", "origin", "main"},
	}
	for _, args := range steps {
		if _, err := g.run(ctx, work, args...); err != nil {
			return false, err
		}
	}
	return true, nil
}

// seedName and seedEmail sign the seed commit only. Every later commit carries whoever makes
// it: the operator's git identity, or opsctl's fallback to the operator (the same name the DLT
// ledger records), never a shared placeholder.
const (
	seedName  = "opsctl sandbox"
	seedEmail = "sandbox@opsctl.invalid"
)

// ensureIdentity removes the placeholder identity earlier sandboxes wrote into the working
// copy's own configuration, which credited every canary commit to "opsctl sandbox". An identity
// the operator configured is left alone.
func ensureIdentity(ctx context.Context, g gitRunner, work string) error {
	for _, kv := range [][2]string{{"user.name", seedName}, {"user.email", seedEmail}} {
		if v, err := g.run(ctx, work, "config", "--local", kv[0]); err != nil || v != kv[1] {
			continue
		}
		if _, err := g.run(ctx, work, "config", "--local", "--unset", kv[0]); err != nil {
			return err
		}
	}
	return nil
}

// copyTree copies the regular files and directories of src into dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, info.Mode().Perm()|0o600)
		}
		return nil // symlinks and devices are not part of a GitOps tree
	})
}
