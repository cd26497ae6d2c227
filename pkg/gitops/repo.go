package gitops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Repo is a GitOps working copy that opsctl reads from and pushes to: either the user's own
// checkout (Open) or a clone that opsctl keeps in its cache directory (Clone).
type Repo struct {
	git         *git
	top         string // working copy root
	remote      string // e.g. "origin"
	branch      string // remote branch Argo CD watches, e.g. "main"
	root        string // GitOps tree inside the repository, e.g. "gitops"
	maxAttempts int
	logger      *slog.Logger
	owned       bool // a cache clone: opsctl may reset it
	unlock      func()
	// beforePush runs just before each push (tests use it to lose a race on purpose).
	beforePush func(ctx context.Context, attempt int) error
	fetchTTL   time.Duration
	fetchedAt  time.Time
	// onCacheBusy runs when WriteClone finds the cache locked (a test seam).
	onCacheBusy func()
}

// Option configures Open and Clone.
type Option func(*options)

type options struct {
	root        string
	branch      string
	remote      string
	maxAttempts int
	logger      *slog.Logger
	gitBin      string
	gitEnv      []string
	cacheDir    string
	beforePush  func(ctx context.Context, attempt int) error
	fetchTTL    time.Duration
	// identity is the fallback author and committer (name, email).
	identity    [2]string
	onCacheBusy func()
	timeout     time.Duration
}

// WithRoot sets the directory inside the repository that holds charts/ and envs/ (default
// DefaultRoot, "gitops"; "." for a repository that is only the GitOps tree).
func WithRoot(root string) Option { return func(o *options) { o.root = root } }

// WithBranch sets the remote branch to read and push (default: the current branch's upstream
// for Open, the remote's default branch for Clone).
func WithBranch(branch string) Option { return func(o *options) { o.branch = branch } }

// WithRemote sets the remote name for Open (default: the current branch's upstream remote, or
// "origin").
func WithRemote(remote string) Option { return func(o *options) { o.remote = remote } }

// WithMaxAttempts bounds how many times Apply pushes when it keeps losing races to commits that
// touch other files (default 5).
func WithMaxAttempts(n int) Option { return func(o *options) { o.maxAttempts = n } }

// WithFetchTTL lets Read and History reuse a fetch younger than d instead of fetching again
// (default 0: always fetch). A one-shot CLI run reading several services sets it; Apply always
// fetches, so a stale read can never cause a lost update, only a conflict.
func WithFetchTTL(d time.Duration) Option { return func(o *options) { o.fetchTTL = d } }

// WithTimeout bounds every git command (fetch, push, clone, and the local ones) to d (default
// DefaultTimeout, 30s). A command that runs longer is killed with the processes it started, and
// the error says what had already been done.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithLogger sets the logger for git invocations (debug level).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithGit sets the git binary (default "git" from PATH).
func WithGit(bin string) Option { return func(o *options) { o.gitBin = bin } }

// WithGitEnv adds KEY=VALUE pairs to git's environment, after the process environment (for
// example GIT_AUTHOR_NAME in tests). GIT_TERMINAL_PROMPT=0 is always set, whatever env says.
func WithGitEnv(kv ...string) Option { return func(o *options) { o.gitEnv = append(o.gitEnv, kv...) } }

// WithFallbackIdentity makes commits carry name and email when git configures no identity for
// the working copy (user.name, user.email) and the environment sets none (GIT_AUTHOR_NAME):
// opsctl passes the operator, so history never credits a machine account or a placeholder.
func WithFallbackIdentity(name, email string) Option {
	return func(o *options) { o.identity = [2]string{name, email} }
}

// WithCacheDir sets where Clone keeps its clones (default os.UserCacheDir()/opsctl/gitops).
func WithCacheDir(dir string) Option { return func(o *options) { o.cacheDir = dir } }

// withBeforePush runs fn just before each push; tests use it to make a push lose a race.
func withBeforePush(fn func(ctx context.Context, attempt int) error) Option {
	return func(o *options) { o.beforePush = fn }
}

func buildOptions(opts []Option) options {
	o := options{root: DefaultRoot, maxAttempts: 5, gitBin: "git", timeout: DefaultTimeout}
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.timeout <= 0 {
		o.timeout = DefaultTimeout
	}
	if o.maxAttempts < 1 {
		o.maxAttempts = 1
	}
	return o
}

// Open uses an existing working copy at dir (any directory inside it). The working copy must be
// on a branch; Apply refuses to run while it has uncommitted changes to tracked files.
func Open(ctx context.Context, dir string, opts ...Option) (*Repo, error) {
	o := buildOptions(opts)
	g := &git{bin: o.gitBin, dir: dir, env: o.gitEnv, timeout: o.timeout, logger: o.logger}
	top, err := g.line(ctx, "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, fmt.Errorf("open GitOps working copy %s: %w", dir, err)
	}
	g.dir = top
	g.env = append(g.env, fallbackIdentityEnv(ctx, g, o.identity)...)
	current, err := g.line(ctx, "symbolic-ref", "--quiet", "--short", "HEAD")
	if err != nil {
		return nil, fmt.Errorf("open GitOps working copy %s: HEAD is detached; check out the branch Argo CD watches: %w", top, err)
	}
	remote, branch := o.remote, o.branch
	if remote == "" {
		remote, _ = g.line(ctx, "config", "--get", "branch."+current+".remote")
	}
	if branch == "" {
		if merge, _ := g.line(ctx, "config", "--get", "branch."+current+".merge"); merge != "" {
			branch = strings.TrimPrefix(merge, "refs/heads/")
		}
	}
	if remote == "" || remote == "." {
		remote = "origin"
	}
	if branch == "" {
		branch = current
	}
	if o.branch != "" && current != o.branch {
		return nil, fmt.Errorf("open GitOps working copy %s: it is on branch %q, not %q; check out %q first", top, current, o.branch, o.branch)
	}
	if _, err := g.line(ctx, "remote", "get-url", remote); err != nil {
		return nil, fmt.Errorf("open GitOps working copy %s: remote %q: %w", top, remote, err)
	}
	return &Repo{git: g, top: top, remote: remote, branch: branch, root: o.root, maxAttempts: o.maxAttempts, logger: o.logger, unlock: func() {}, beforePush: o.beforePush, fetchTTL: o.fetchTTL, onCacheBusy: o.onCacheBusy}, nil
}

// CacheDir returns where Clone keeps the clone of url under cacheDir (empty: the default
// os.UserCacheDir()/opsctl/gitops).
func CacheDir(cacheDir, url string) (string, error) {
	if cacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("find cache directory: %w", err)
		}
		cacheDir = filepath.Join(base, "opsctl", "gitops")
	}
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(cacheDir, hex.EncodeToString(sum[:])[:16]), nil
}

// Clone returns a Repo for the remote url, cloned into (or refreshed in) opsctl's cache
// directory. The cache clone belongs to opsctl: it is reset to the remote branch on every
// Clone, and a lock file keeps two opsctl processes from using it at once. Call Close when done.
func Clone(ctx context.Context, url string, opts ...Option) (*Repo, error) {
	o := buildOptions(opts)
	if url == "" {
		return nil, fmt.Errorf("clone GitOps repository: empty URL")
	}
	dir, err := CacheDir(o.cacheDir, url)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, fmt.Errorf("clone GitOps repository: %w", err)
	}
	unlock, err := lockFile(dir + ".lock")
	if err != nil {
		return nil, fmt.Errorf("clone GitOps repository %s: %w", url, err)
	}
	r, err := cloneLocked(ctx, url, dir, o)
	if err != nil {
		unlock()
		return nil, err
	}
	r.unlock = unlock
	return r, nil
}

func cloneLocked(ctx context.Context, url, dir string, o options) (*Repo, error) {
	g := &git{bin: o.gitBin, dir: filepath.Dir(dir), env: o.gitEnv, timeout: o.timeout, logger: o.logger}
	if _, err := os.Stat(filepath.Join(dir, ".git")); errors.Is(err, os.ErrNotExist) {
		tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".tmp-")
		if err != nil {
			return nil, fmt.Errorf("clone GitOps repository %s: %w", url, err)
		}
		defer os.RemoveAll(tmp)
		args := []string{"clone", "--quiet", "--no-tags"}
		if o.branch != "" {
			args = append(args, "--branch", o.branch)
		}
		if _, err := g.run(ctx, nil, append(args, "--", url, tmp)...); err != nil {
			return nil, fmt.Errorf("clone GitOps repository %s: %w", url, err)
		}
		_ = os.RemoveAll(dir) // a leftover without .git
		if err := os.Rename(tmp, dir); err != nil {
			return nil, fmt.Errorf("clone GitOps repository %s: %w", url, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("clone GitOps repository %s: %w", url, err)
	}
	g.dir = dir
	g.env = append(g.env, fallbackIdentityEnv(ctx, g, o.identity)...)
	if got, err := g.line(ctx, "remote", "get-url", "origin"); err != nil || got != url {
		return nil, fmt.Errorf("clone GitOps repository %s: cache %s belongs to %q; remove it and retry", url, dir, got)
	}
	branch := o.branch
	if branch == "" {
		if head, err := g.line(ctx, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"); err == nil {
			branch = strings.TrimPrefix(head, "origin/")
		} else {
			branch = "main"
		}
	}
	r := &Repo{git: g, top: dir, remote: "origin", branch: branch, root: o.root, maxAttempts: o.maxAttempts, logger: o.logger, owned: true, beforePush: o.beforePush, fetchTTL: o.fetchTTL}
	if err := r.fetch(ctx); err != nil {
		return nil, fmt.Errorf("clone GitOps repository %s: %w", url, err)
	}
	// The cache is opsctl's own: bring it to exactly the remote branch.
	for _, args := range [][]string{
		{"checkout", "--quiet", "--force", "-B", branch, r.trackingRef()},
		{"reset", "--quiet", "--hard", r.trackingRef()},
		{"clean", "--quiet", "-ffdx"},
	} {
		if _, err := g.run(ctx, nil, args...); err != nil {
			return nil, fmt.Errorf("refresh cached clone %s: %w", dir, err)
		}
	}
	return r, nil
}

// Close releases the cache lock taken by Clone. It is a no-op for Open.
func (r *Repo) Close() error {
	if r.unlock != nil {
		r.unlock()
		r.unlock = nil
	}
	return nil
}

// Dir returns the working copy's root directory.
func (r *Repo) Dir() string { return r.top }

// Remote returns the remote name pushes go to.
func (r *Repo) Remote() string { return r.remote }

// Branch returns the remote branch that is read and pushed.
func (r *Repo) Branch() string { return r.branch }

// Root returns the GitOps tree's directory inside the repository.
func (r *Repo) Root() string { return r.root }

func (r *Repo) trackingRef() string { return "refs/remotes/" + r.remote + "/" + r.branch }

// fetch updates the remote-tracking ref of the branch.
func (r *Repo) fetch(ctx context.Context) error {
	spec := "+refs/heads/" + r.branch + ":" + r.trackingRef()
	if _, err := r.git.run(ctx, nil, "fetch", "--quiet", "--no-tags", r.remote, spec); err != nil {
		return fmt.Errorf("fetch %s %s: %w", r.remote, r.branch, err)
	}
	r.fetchedAt = time.Now()
	return nil
}

// remoteHead fetches and returns the commit at the tip of the remote branch.
func (r *Repo) remoteHead(ctx context.Context) (string, error) {
	if err := r.fetch(ctx); err != nil {
		return "", err
	}
	return r.git.line(ctx, "rev-parse", "--verify", r.trackingRef()+"^{commit}")
}

// readHead is remoteHead for reads: it reuses a fetch younger than the fetch TTL.
func (r *Repo) readHead(ctx context.Context) (string, error) {
	if r.fetchTTL > 0 && !r.fetchedAt.IsZero() && time.Since(r.fetchedAt) < r.fetchTTL {
		return r.git.line(ctx, "rev-parse", "--verify", r.trackingRef()+"^{commit}")
	}
	return r.remoteHead(ctx)
}

// Snapshot is one values file as it is at the tip of the remote branch.
type Snapshot struct {
	Env     string
	Service string
	// Path is the file's slash-separated path inside the repository.
	Path string
	// Commit is the remote commit the file was read from.
	Commit string
	// Data is the file's exact bytes.
	Data []byte
	// Release is what Data says about the stable image and the canary.
	Release Release
}

// Read fetches and returns a service's values file at the tip of the remote branch (which may
// be ahead of the working copy). A malformed file is an error wrapping ErrMalformed.
func (r *Repo) Read(ctx context.Context, env, service string) (Snapshot, error) {
	p, err := ValuesPath(r.root, env, service)
	if err != nil {
		return Snapshot{}, err
	}
	head, err := r.readHead(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	return r.readAt(ctx, head, env, service, p)
}

func (r *Repo) readAt(ctx context.Context, commit, env, service, p string) (Snapshot, error) {
	data, err := r.git.run(ctx, nil, "show", commit+":"+p)
	if err != nil {
		return Snapshot{}, fmt.Errorf("read %s at %s: %w", p, ShortHash(commit), err)
	}
	rel, err := ReadRelease(data)
	if err != nil {
		return Snapshot{}, fmt.Errorf("read %s at %s: %w", p, ShortHash(commit), err)
	}
	return Snapshot{Env: env, Service: service, Path: p, Commit: commit, Data: data, Release: rel}, nil
}

// WriteClone returns a Repo for writes opsctl makes on its own (watch --auto-rollback's
// rollback): a clone of r's remote in opsctl's cache directory, fetched fresh and reset to the
// remote branch, so that nothing in the operator's working copy (uncommitted edits, unpushed
// commits, a rebase in progress) can block it. Commits carry the identity git gives r's working
// copy (user.name and user.email) unless GIT_AUTHOR_NAME is set in the environment. When r is
// already a cache clone it is returned itself. Call the returned close function when done.
func (r *Repo) WriteClone(ctx context.Context, opts ...Option) (*Repo, func() error, error) {
	if r.owned {
		return r, func() error { return nil }, nil
	}
	url, err := r.git.line(ctx, "remote", "get-url", r.remote)
	if err != nil {
		return nil, nil, fmt.Errorf("find the URL of remote %s in %s: %w", r.remote, r.top, err)
	}
	env := append([]string(nil), r.git.env...)
	env = append(env, r.identityEnv(ctx)...)
	// The operator's push URL, when it differs (remote.<name>.pushurl), is where the clone
	// pushes too.
	pushURL, err := r.git.line(ctx, "remote", "get-url", "--push", r.remote)
	if err != nil {
		return nil, nil, fmt.Errorf("find the push URL of remote %s in %s: %w", r.remote, r.top, err)
	}
	all := []Option{WithBranch(r.branch), WithRoot(r.root), WithMaxAttempts(r.maxAttempts), WithLogger(r.logger),
		WithGit(r.git.bin), WithGitEnv(env...), withBeforePush(r.beforePush), WithTimeout(r.git.timeout)}
	// A rollback must not lose to an interactive command that holds the cache for a moment:
	// wait for it rather than give up.
	for {
		w, err := Clone(ctx, url, append(all, opts...)...)
		if err == nil {
			if err := w.setPushURL(ctx, url, pushURL); err != nil {
				_ = w.Close()
				return nil, nil, err
			}
			return w, w.Close, nil
		}
		if !errors.Is(err, ErrCacheBusy) {
			return nil, nil, err
		}
		if r.onCacheBusy != nil {
			r.onCacheBusy()
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("%w (gave up waiting: %w)", err, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// setPushURL makes the cache clone push where the operator's working copy pushes: pushURL when
// it differs from the fetch URL, else the fetch URL (the cache is shared between runs, so an
// earlier run's push URL is cleared).
func (r *Repo) setPushURL(ctx context.Context, url, pushURL string) error {
	if pushURL == url {
		_, _ = r.git.run(ctx, nil, "config", "--unset-all", "remote.origin.pushurl")
		return nil
	}
	if _, err := r.git.run(ctx, nil, "remote", "set-url", "--push", "origin", pushURL); err != nil {
		return fmt.Errorf("set the push URL of cached clone %s: %w", r.top, err)
	}
	return nil
}

// withOnCacheBusy runs fn each time WriteClone finds the cache locked; tests use it to release
// the lock they hold.
func withOnCacheBusy(fn func()) Option { return func(o *options) { o.onCacheBusy = fn } }

// identityEnv returns the GIT_AUTHOR_* and GIT_COMMITTER_* variables that make a commit in
// another clone carry the identity git configures for r's working copy; none when the
// environment already sets one or git configures none.
func (r *Repo) identityEnv(ctx context.Context) []string {
	if os.Getenv("GIT_AUTHOR_NAME") != "" || os.Getenv("GIT_COMMITTER_NAME") != "" {
		return nil
	}
	name, _ := r.git.line(ctx, "config", "user.name")
	email, _ := r.git.line(ctx, "config", "user.email")
	if name == "" || email == "" {
		return nil
	}
	return []string{"GIT_AUTHOR_NAME=" + name, "GIT_AUTHOR_EMAIL=" + email, "GIT_COMMITTER_NAME=" + name, "GIT_COMMITTER_EMAIL=" + email}
}

// fallbackIdentityEnv returns the GIT_AUTHOR_* and GIT_COMMITTER_* variables for identity when
// git configures no user.name or user.email in g's working copy and the environment sets no
// author; none otherwise.
func fallbackIdentityEnv(ctx context.Context, g *git, identity [2]string) []string {
	if identity[0] == "" || identity[1] == "" || os.Getenv("GIT_AUTHOR_NAME") != "" || os.Getenv("GIT_COMMITTER_NAME") != "" {
		return nil
	}
	name, _ := g.line(ctx, "config", "user.name")
	email, _ := g.line(ctx, "config", "user.email")
	if name != "" && email != "" {
		return nil
	}
	return []string{"GIT_AUTHOR_NAME=" + identity[0], "GIT_AUTHOR_EMAIL=" + identity[1],
		"GIT_COMMITTER_NAME=" + identity[0], "GIT_COMMITTER_EMAIL=" + identity[1]}
}

// CatchUp fast-forwards the working copy to the remote branch after opsctl pushed from a clone
// of its own (WriteClone), so the operator's checkout shows the change. ok is false, and
// nothing is touched, when the working copy has changes or commits of its own.
func (r *Repo) CatchUp(ctx context.Context) (ok bool, err error) {
	if r.owned {
		return true, nil
	}
	head, err := r.remoteHead(ctx)
	if err != nil {
		return false, err
	}
	if err := r.ensureClean(ctx); errors.Is(err, ErrDirty) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if ok, err := r.isAncestor(ctx, "HEAD", head); err != nil || !ok {
		return false, err
	}
	return true, r.fastForward(ctx, head)
}
