package argosim

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing/fstest" // only fstest.MapFS, an in-memory fs.FS; the package does not import testing
	"time"
)

// maxTreeBytes bounds what one commit's tree may hold in memory. The GitOps tree is a few
// hundred kilobytes; anything near this limit is not a GitOps repository.
const maxTreeBytes = 64 << 20

// treeCacheSize is how many commits' trees are kept: the current head, the one before it and a
// few manual syncs to older revisions.
const treeCacheSize = 8

// gitRepo reads commits of the repository the simulated Argo CD watches, with the git CLI, the
// way Argo CD's repo-server does: resolve a target revision to a commit, then read the tree at
// that commit (never the working tree, which may hold uncommitted edits).
type gitRepo struct {
	dir string
	bin string
	env []string

	mu    sync.Mutex
	trees map[string]fs.FS
	order []string // commits in trees, oldest first
}

func newGitRepo(dir, bin string, env []string) *gitRepo {
	return &gitRepo{dir: dir, bin: bin, env: env, trees: map[string]fs.FS{}}
}

// run executes git in the repository and returns stdout; a failure carries git's stderr.
func (g *gitRepo) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, g.bin, args...)
	cmd.Dir = g.dir
	cmd.Env = append(append(os.Environ(), "LC_ALL=C", "GIT_TERMINAL_PROMPT=0"), g.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("git %s: %w", args[0], ctx.Err())
		}
		return nil, fmt.Errorf("git %s: %s", args[0], firstLine(msg))
	}
	return stdout.Bytes(), nil
}

// validRevision refuses revisions that git could read as an option or that hold whitespace
// or control characters; targetRevision comes from an Application anyone with kube access
// may edit.
func validRevision(rev string) error {
	if rev == "" {
		return errors.New("empty revision")
	}
	if strings.HasPrefix(rev, "-") || strings.ContainsFunc(rev, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("revision %q is not a branch, tag or commit", rev)
	}
	return nil
}

// resolve returns the commit a revision (branch, tag, HEAD or commit hash) points at.
func (g *gitRepo) resolve(ctx context.Context, rev string) (string, error) {
	if err := validRevision(rev); err != nil {
		return "", err
	}
	out, err := g.run(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("unable to resolve %q to a commit SHA in %s", rev, g.dir)
	}
	return strings.TrimSpace(string(out)), nil
}

// tree returns the files of a commit as an in-memory file system, cached per commit.
func (g *gitRepo) tree(ctx context.Context, commit string) (fs.FS, error) {
	g.mu.Lock()
	t, ok := g.trees[commit]
	g.mu.Unlock()
	if ok {
		return t, nil
	}
	out, err := g.run(ctx, "archive", "--format=tar", commit)
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", shortSHA(commit), err)
	}
	t, err = untar(out)
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", shortSHA(commit), err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.trees[commit]; !ok {
		g.trees[commit] = t
		g.order = append(g.order, commit)
		for len(g.order) > treeCacheSize {
			delete(g.trees, g.order[0])
			g.order = g.order[1:]
		}
	}
	return t, nil
}

// forget drops every cached tree (a hard refresh).
func (g *gitRepo) forget() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.trees = map[string]fs.FS{}
	g.order = nil
}

func untar(data []byte) (fs.FS, error) {
	files := fstest.MapFS{}
	r := tar.NewReader(bytes.NewReader(data))
	var total int64
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("git archive output: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue // directories are implied; symlinks and git's pax header are not chart files
		}
		total += h.Size
		if total > maxTreeBytes {
			return nil, fmt.Errorf("the tree is larger than %d bytes", maxTreeBytes)
		}
		b, err := io.ReadAll(io.LimitReader(r, h.Size))
		if err != nil {
			return nil, fmt.Errorf("git archive output: %s: %w", h.Name, err)
		}
		files[strings.TrimPrefix(h.Name, "./")] = &fstest.MapFile{Data: b, Mode: 0o644, ModTime: h.ModTime}
	}
}

// commitInfo is what RevisionMetadata reports about a commit.
type commitInfo struct {
	Author  string
	Date    time.Time
	Message string
	Tags    []string
}

// info reads a commit's author, date, message and tags.
func (g *gitRepo) info(ctx context.Context, commit string) (commitInfo, error) {
	out, err := g.run(ctx, "show", "-s", "--format=%an <%ae>%x00%aI%x00%B", commit)
	if err != nil {
		return commitInfo{}, fmt.Errorf("read commit %s: %w", shortSHA(commit), err)
	}
	parts := strings.SplitN(string(out), "\x00", 3)
	if len(parts) != 3 {
		return commitInfo{}, fmt.Errorf("read commit %s: unexpected git output", shortSHA(commit))
	}
	date, err := time.Parse(time.RFC3339, strings.TrimSpace(parts[1]))
	if err != nil {
		return commitInfo{}, fmt.Errorf("read commit %s: date: %w", shortSHA(commit), err)
	}
	ci := commitInfo{Author: parts[0], Date: date, Message: strings.TrimSpace(parts[2])}
	tags, err := g.run(ctx, "tag", "--points-at", commit)
	if err != nil {
		return commitInfo{}, fmt.Errorf("read tags of %s: %w", shortSHA(commit), err)
	}
	ci.Tags = strings.Fields(string(tags))
	return ci, nil
}

func shortSHA(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}
