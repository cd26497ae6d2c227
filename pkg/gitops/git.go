package gitops

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
)

// git runs the user's git binary in one working copy. It inherits the user's environment, so
// credential helpers, the SSH agent, signing keys and hooks work as they do in a shell.
type git struct {
	bin    string
	dir    string
	env    []string
	logger *slog.Logger
}

// run executes git with args and returns stdout. A non-zero exit becomes a *GitError carrying
// stderr.
func (g *git) run(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	out, _, err := g.runBoth(ctx, stdin, args...)
	return out, err
}

// runBoth is run that also returns stderr on success (git push reports there).
func (g *git) runBoth(ctx context.Context, stdin []byte, args ...string) ([]byte, []byte, error) {
	cmd := exec.CommandContext(ctx, g.bin, args...)
	cmd.Dir = g.dir
	// LC_ALL=C keeps the messages this package parses in one language.
	cmd.Env = append(append(os.Environ(), "LC_ALL=C"), g.env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	g.logger.Debug("git", "dir", g.dir, "args", args, "err", err)
	if err != nil {
		ge := &GitError{Args: args, Stderr: stderr.String(), Err: err}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ge.ExitCode = ee.ExitCode()
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			ge.Err = errors.Join(ctxErr, err)
		}
		return stdout.Bytes(), stderr.Bytes(), ge
	}
	return stdout.Bytes(), stderr.Bytes(), nil
}

// line runs git and returns stdout's first line, trimmed.
func (g *git) line(ctx context.Context, args ...string) (string, error) {
	out, err := g.run(ctx, nil, args...)
	if err != nil {
		return "", err
	}
	s, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(s), nil
}
