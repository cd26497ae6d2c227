package gitops

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"
)

// DefaultTimeout bounds every git command opsctl runs when WithTimeout does not say otherwise.
// It is long enough for a push to a slow hosted remote, and short enough that a remote which
// accepts the connection and never answers cannot hold a canary command (or a rollback) forever.
const DefaultTimeout = 30 * time.Second

// waitDelay is how long a killed git may keep its output pipes open (a child such as
// git-remote-https or ssh still holding them) before Wait stops waiting for it.
const waitDelay = 2 * time.Second

// git runs the user's git binary in one working copy. It inherits the user's environment, so
// credential helpers, the SSH agent, signing keys and hooks work as they do in a shell, except
// that git never prompts on the terminal (GIT_TERMINAL_PROMPT=0): a prompt nobody answers would
// only turn into a timeout.
type git struct {
	bin     string
	dir     string
	env     []string
	timeout time.Duration
	logger  *slog.Logger
}

// run executes git with args and returns stdout. A non-zero exit becomes a *GitError carrying
// stderr.
func (g *git) run(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	out, _, err := g.runBoth(ctx, stdin, args...)
	return out, err
}

// runBoth is run that also returns stderr on success (git push reports there). git gets at most
// the configured timeout; when it runs out, git and every process it started (transport
// helpers, ssh, hooks) are killed and the *GitError says so.
func (g *git) runBoth(ctx context.Context, stdin []byte, args ...string) ([]byte, []byte, error) {
	timeout := g.timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, g.bin, args...)
	cmd.Dir = g.dir
	// LC_ALL=C keeps the messages this package parses in one language. The caller's env comes
	// last but cannot turn prompting back on: GIT_TERMINAL_PROMPT=0 is appended after it.
	cmd.Env = append(append(append(os.Environ(), "LC_ALL=C"), g.env...), "GIT_TERMINAL_PROMPT=0")
	killTree(cmd)
	cmd.WaitDelay = waitDelay
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
		} else if cctx.Err() != nil {
			// Our own deadline, not the caller's: say how long git had.
			ge.Timeout = timeout
			ge.Err = errors.Join(ErrTimeout, context.DeadlineExceeded, err)
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
