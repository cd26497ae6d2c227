package gitops

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Commit trailers written by Apply and read by History.
const (
	TrailerAction  = "Opsctl-Action"
	TrailerService = "Opsctl-Service"
	TrailerEnv     = "Opsctl-Env"
	TrailerFrom    = "Opsctl-From"
	TrailerTo      = "Opsctl-To"
	TrailerReason  = "Opsctl-Reason"
)

// maxReasonLen bounds the reason so a trailer stays one readable line.
const maxReasonLen = 300

// Change is one edit of a service's values file: move the Release from From to To.
type Change struct {
	Env     string
	Service string
	// Action names the operation in the Opsctl-Action trailer ("canary-step"...).
	Action string
	// Reason is required: why the change is made (one line).
	Reason string
	// Subject is the commit subject; empty means "opsctl <action> <service>/<env>".
	Subject string
	// From is the state the change was planned against and To the state to write. Apply only
	// writes To while the file still holds From.
	From Release
	To   Release
	// BaseCommit is the commit From was read at (Snapshot.Commit). A conflict lists the
	// commits after it. Empty means the remote head at the time of Apply.
	BaseCommit string
	// Trailers are written after the Opsctl-* trailers, in order (for example the canary's
	// Canary-Gates-Skipped). Keys are trailer tokens; values are one line.
	Trailers []Trailer
	// Reapply, when set, makes the change win races instead of conflicting: whenever the file
	// no longer holds From (at the first attempt or after a push lost to someone else's), Apply
	// derives the state to write from what the file holds now and commits that on top, retrying
	// until it lands or ctx ends. Returning an error wrapping ErrNoChange means the file already
	// says what the change wants (another rollback got there first): Apply then pushes nothing
	// and returns a Result with AlreadyApplied. A canary rollback sets it; nothing else should.
	Reapply func(found Release) (Release, error)
}

// reapplyAttempts bounds the pushes of a Reapply change that keeps losing races; ctx normally
// ends it first.
const reapplyAttempts = 100

// Trailer is one "Key: value" line at the end of a commit message.
type Trailer struct {
	Key   string
	Value string
}

var trailerKey = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,63}$`)

var actionName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)

// Validate checks the change without touching the repository.
func (c Change) Validate() error {
	if err := ValidateTarget(c.Env, c.Service); err != nil {
		return err
	}
	if !actionName.MatchString(c.Action) {
		return fmt.Errorf("%w: action %q must be lower-case letters, digits and dashes", ErrInvalidChange, c.Action)
	}
	if err := ValidateReason(c.Reason); err != nil {
		return err
	}
	if strings.ContainsAny(c.Subject, "\r\n") {
		return fmt.Errorf("%w: the subject must be one line", ErrInvalidChange)
	}
	for _, t := range c.Trailers {
		if !trailerKey.MatchString(t.Key) {
			return fmt.Errorf("%w: trailer key %q must be letters, digits and dashes", ErrInvalidChange, t.Key)
		}
		if strings.TrimSpace(t.Value) == "" || strings.IndexFunc(t.Value, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			return fmt.Errorf("%w: trailer %s must be one line of printable text", ErrInvalidChange, t.Key)
		}
	}
	if c.From == c.To {
		return fmt.Errorf("%w: %s/%s already has %s", ErrNoChange, c.Env, c.Service, c.To)
	}
	return nil
}

// ValidateReason checks a change reason: required, one line, printable, at most 300 characters.
func ValidateReason(reason string) error {
	switch {
	case strings.TrimSpace(reason) == "":
		return fmt.Errorf("%w: a reason is required (it is recorded in the commit)", ErrInvalidChange)
	case len(reason) > maxReasonLen:
		return fmt.Errorf("%w: the reason is %d characters; keep it under %d", ErrInvalidChange, len(reason), maxReasonLen)
	case strings.IndexFunc(reason, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return fmt.Errorf("%w: the reason must be one line of printable text", ErrInvalidChange)
	}
	return nil
}

// CommitMessage returns the commit message Apply writes for c: the subject, a blank line, the
// reason, a blank line and the Opsctl-* trailers.
func CommitMessage(c Change) string {
	subject := c.Subject
	if subject == "" {
		subject = fmt.Sprintf("opsctl %s %s/%s", c.Action, c.Service, c.Env)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n%s\n\n", subject, strings.TrimSpace(c.Reason))
	fmt.Fprintf(&b, "%s: %s\n", TrailerAction, c.Action)
	fmt.Fprintf(&b, "%s: %s\n", TrailerService, c.Service)
	fmt.Fprintf(&b, "%s: %s\n", TrailerEnv, c.Env)
	fmt.Fprintf(&b, "%s: %s\n", TrailerFrom, c.From)
	fmt.Fprintf(&b, "%s: %s\n", TrailerTo, c.To)
	fmt.Fprintf(&b, "%s: %s\n", TrailerReason, strings.TrimSpace(c.Reason))
	for _, t := range c.Trailers {
		fmt.Fprintf(&b, "%s: %s\n", t.Key, strings.TrimSpace(t.Value))
	}
	return b.String()
}

// Result describes a change that landed on the remote.
type Result struct {
	// Commit is the pushed commit.
	Commit string
	// Path is the edited file.
	Path string
	// Remote and Branch are where it was pushed.
	Remote string
	Branch string
	// Attempts counts pushes (more than one when the re-apply path was taken).
	Attempts int
	// AlreadyApplied is set when a Reapply change found its state already at the remote head
	// (Commit): nothing was pushed. From and To are then equal.
	AlreadyApplied bool
	// From and To are the states the pushed commit moved between; they differ from the
	// Change's when Reapply re-derived them on top of someone else's commit.
	From, To Release
}

// Apply commits the change on top of the remote branch and pushes it.
//
// Preconditions (each refused with nothing changed): a valid change, a clean working copy, no
// unpushed local commits, a well-formed values file that still holds c.From at the remote head.
// If the push is rejected because the remote moved on, Apply fetches, re-reads the file at the
// new head and, if it still holds c.From, applies the same edit there and pushes again, up to
// the configured number of attempts. If the file changed, it returns a *ConflictError naming the
// commits. A push refused by the remote for any other reason returns a *PushRejectedError. On
// every failure the local commit is removed again, so the working copy is left as it was (at
// most fast-forwarded to the remote branch). It never rebases, merges or force-pushes.
func (r *Repo) Apply(ctx context.Context, c Change) (Result, error) {
	if err := c.Validate(); err != nil {
		return Result{}, fmt.Errorf("%w; nothing was changed", err)
	}
	p, err := ValuesPath(r.root, c.Env, c.Service)
	if err != nil {
		return Result{}, err
	}
	if err := r.ensureClean(ctx); err != nil {
		return Result{}, err
	}
	base, err := r.remoteHead(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("%w; nothing was changed", err)
	}
	if err := r.ensureNotAhead(ctx, base); err != nil {
		return Result{}, err
	}
	baseline := c.BaseCommit
	if baseline == "" {
		baseline = base
	}

	maxAttempts := r.maxAttempts
	if c.Reapply != nil {
		maxAttempts = max(maxAttempts, reapplyAttempts)
	}
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return Result{}, fmt.Errorf("%s/%s: %w after %d attempt(s); nothing was pushed", c.Env, c.Service, err, attempt-1)
		}
		snap, err := r.readAt(ctx, base, c.Env, c.Service, p)
		if err != nil {
			return Result{}, fmt.Errorf("%w; nothing was changed", err)
		}
		cur := c
		if snap.Release != c.From {
			if c.Reapply == nil {
				return Result{}, r.conflict(ctx, c, p, baseline, base, snap.Release)
			}
			to, err := c.Reapply(snap.Release)
			if errors.Is(err, ErrNoChange) {
				r.logger.Info("already applied at the remote head", "commit", base, "path", p)
				return Result{Commit: base, Path: p, Remote: r.remote, Branch: r.branch, Attempts: attempt - 1,
					AlreadyApplied: true, From: snap.Release, To: snap.Release}, nil
			}
			if err != nil {
				return Result{}, fmt.Errorf("%s/%s: re-apply on top of %s: %w; nothing was pushed", c.Env, c.Service, ShortHash(base), err)
			}
			cur.From, cur.To = snap.Release, to
		}
		data, err := EditRelease(snap.Data, cur.To)
		if err != nil {
			return Result{}, fmt.Errorf("edit %s: %w; nothing was changed", p, err)
		}
		if err := r.fastForward(ctx, base); err != nil {
			return Result{}, err
		}
		commit, err := r.commit(ctx, p, data, CommitMessage(cur))
		if err != nil {
			return Result{}, err
		}
		if r.beforePush != nil {
			if err := r.beforePush(ctx, attempt); err != nil {
				return Result{}, errors.Join(err, r.undoCommit(ctx, commit, base))
			}
		}
		rejected, err := r.push(ctx)
		var unknown *PushUnknownError
		if errors.As(err, &unknown) {
			unknown.Commit = commit
		}
		if err == nil && !rejected {
			r.logger.Info("pushed", "commit", commit, "path", p, "attempt", attempt)
			return Result{Commit: commit, Path: p, Remote: r.remote, Branch: r.branch, Attempts: attempt, From: cur.From, To: cur.To}, nil
		}
		// Undo our commit before anything else, whatever happened to the push.
		if uerr := r.undoCommit(ctx, commit, base); uerr != nil {
			return Result{}, errors.Join(err, uerr)
		}
		if unknown != nil {
			unknown.Undone = true
		}
		if err != nil {
			return Result{}, err
		}
		// Lost a race: look at the new head and try again if our file is untouched.
		r.logger.Info("push lost a race; re-reading the remote head", "attempt", attempt)
		next, err := r.remoteHead(ctx)
		if err != nil {
			return Result{}, fmt.Errorf("%w; nothing was pushed", err)
		}
		if next == base {
			// Refused as out of date, yet the branch did not move: retrying cannot help.
			return Result{}, fmt.Errorf("push to %s %s was refused as out of date, but the remote branch is still at %s; nothing was pushed",
				r.remote, r.branch, ShortHash(base))
		}
		if ok, err := r.isAncestor(ctx, base, next); err != nil {
			return Result{}, err
		} else if !ok {
			return Result{}, fmt.Errorf("%w: remote branch %s/%s was rewritten (force-push?); nothing was pushed", ErrDiverged, r.remote, r.branch)
		}
		base = next
	}
	return Result{}, fmt.Errorf("%w: %d attempts to push %s to %s/%s were overtaken by other commits; nothing was pushed, try again",
		ErrTooManyAttempts, maxAttempts, p, r.remote, r.branch)
}

// ensureClean refuses tracked changes and in-progress merges or rebases. Untracked files are
// ignored: Apply commits exactly one path.
func (r *Repo) ensureClean(ctx context.Context) error {
	out, err := r.git.run(ctx, nil, "status", "--porcelain=v1", "--untracked-files=no")
	if err != nil {
		return fmt.Errorf("check working copy %s: %w", r.top, err)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		lines := strings.Split(s, "\n")
		if len(lines) > 5 {
			lines = append(lines[:5], fmt.Sprintf("... and %d more", len(lines)-5))
		}
		return fmt.Errorf("%w in %s:\n%s\ncommit or stash them first; nothing was changed", ErrDirty, r.top, strings.Join(lines, "\n"))
	}
	for _, marker := range []string{"MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "rebase-merge", "rebase-apply"} {
		gp, err := r.git.line(ctx, "rev-parse", "--git-path", marker)
		if err != nil {
			return fmt.Errorf("check working copy %s: %w", r.top, err)
		}
		if !filepath.IsAbs(gp) {
			gp = filepath.Join(r.top, gp)
		}
		if _, err := os.Stat(gp); err == nil {
			return fmt.Errorf("%w in %s: a merge, rebase, cherry-pick or revert is in progress; finish it first; nothing was changed", ErrDirty, r.top)
		}
	}
	return nil
}

// ensureNotAhead refuses a local branch with commits the remote does not have: pushing would
// publish them too.
func (r *Repo) ensureNotAhead(ctx context.Context, remoteHead string) error {
	n, err := r.git.line(ctx, "rev-list", "--count", remoteHead+"..HEAD")
	if err != nil {
		return fmt.Errorf("compare with %s/%s: %w", r.remote, r.branch, err)
	}
	if n != "0" {
		return fmt.Errorf("%w: %s has %s commit(s) that are not on %s/%s; push or drop them first; nothing was changed",
			ErrDiverged, r.top, n, r.remote, r.branch)
	}
	return nil
}

func (r *Repo) isAncestor(ctx context.Context, a, b string) (bool, error) {
	_, err := r.git.run(ctx, nil, "merge-base", "--is-ancestor", a, b)
	if err == nil {
		return true, nil
	}
	var ge *GitError
	if errors.As(err, &ge) && ge.ExitCode == 1 {
		return false, nil
	}
	return false, err
}

// fastForward moves the checked-out branch to commit (a descendant of HEAD).
func (r *Repo) fastForward(ctx context.Context, commit string) error {
	head, err := r.git.line(ctx, "rev-parse", "HEAD")
	if err != nil {
		return fmt.Errorf("read HEAD: %w", err)
	}
	if head == commit {
		return nil
	}
	if _, err := r.git.run(ctx, nil, "merge", "--quiet", "--ff-only", commit); err != nil {
		return fmt.Errorf("fast-forward %s to %s/%s: %w; nothing was changed", r.top, r.remote, r.branch, err)
	}
	return nil
}

// commit writes data to p and commits exactly that path with the user's git (hooks and
// signing apply). On failure the file is restored.
func (r *Repo) commit(ctx context.Context, p string, data []byte, msg string) (string, error) {
	file := filepath.Join(r.top, filepath.FromSlash(p))
	mode := os.FileMode(0o644)
	if st, err := os.Stat(file); err == nil {
		mode = st.Mode().Perm()
	}
	if err := os.WriteFile(file, data, mode); err != nil {
		return "", fmt.Errorf("write %s: %w; nothing was committed", p, err)
	}
	// restore puts p back as HEAD has it and says so in the error; when that fails too, the
	// error says the file still holds the uncommitted change.
	restore := func(err error) error {
		if _, rerr := r.git.run(context.WithoutCancel(ctx), nil, "checkout", "--quiet", "HEAD", "--", p); rerr != nil {
			return fmt.Errorf("%w; nothing was committed, but %s could not be restored (%v): it still holds the change, run `git checkout HEAD -- %s` in %s", err, p, rerr, p, r.top)
		}
		return fmt.Errorf("%w; nothing was committed", err)
	}
	if _, err := r.git.run(ctx, nil, "add", "--", p); err != nil {
		return "", restore(fmt.Errorf("stage %s: %w", p, err))
	}
	if _, err := r.git.run(ctx, []byte(msg), "commit", "--quiet", "--cleanup=verbatim", "--file=-", "--", p); err != nil {
		return "", restore(fmt.Errorf("commit %s: %w", p, err))
	}
	commit, err := r.git.line(ctx, "rev-parse", "HEAD")
	if err != nil {
		return "", fmt.Errorf("read new commit: %w", err)
	}
	return commit, nil
}

// undoCommit removes our unpushed commit, keeping any local edits the user made meanwhile.
func (r *Repo) undoCommit(ctx context.Context, commit, parent string) error {
	ctx = context.WithoutCancel(ctx)
	head, err := r.git.line(ctx, "rev-parse", "HEAD")
	if err != nil {
		return fmt.Errorf("undo local commit %s: %w", ShortHash(commit), err)
	}
	if head != commit {
		return fmt.Errorf("undo local commit %s: HEAD moved to %s meanwhile; left as is", ShortHash(commit), ShortHash(head))
	}
	if _, err := r.git.run(ctx, nil, "reset", "--quiet", "--keep", parent); err != nil {
		return fmt.Errorf("undo local commit %s (run `git reset --keep %s` in %s): %w", ShortHash(commit), ShortHash(parent), r.top, err)
	}
	return nil
}

// push pushes HEAD to the remote branch. It returns rejected=true when the remote refused a
// non-fast-forward (someone pushed first), a *PushRejectedError when the remote refused for
// another reason (hooks, protection), and other errors for transport failures.
func (r *Repo) push(ctx context.Context) (rejected bool, err error) {
	dst := "refs/heads/" + r.branch
	stdout, stderr, runErr := r.git.runBoth(ctx, nil, "push", "--porcelain", r.remote, "HEAD:"+dst)
	status, found := parsePushStatus(string(stdout), dst)
	switch {
	case found && (status.flag == ' ' || status.flag == '*' || status.flag == '+') && runErr == nil:
		return false, nil
	case found && status.flag == '!' && strings.HasPrefix(status.summary, "[rejected]"):
		return true, nil
	case found && status.flag == '!' && lostRefRace(status.reason(), string(stderr)):
		// Two pushes passed the fast-forward check together and the other one moved the branch
		// first: the same lost race as a non-fast-forward, decided on the server instead.
		return true, nil
	case found && status.flag == '!':
		return false, &PushRejectedError{
			Remote:  r.remote,
			Branch:  r.branch,
			Reason:  status.reason(),
			Message: remoteLines(string(stderr)),
		}
	case runErr != nil && (errors.Is(runErr, ErrTimeout) || ctx.Err() != nil):
		// Killed before the remote answered: it may have taken the commit all the same.
		pe := &PushUnknownError{Remote: r.remote, Branch: r.branch, Err: runErr}
		var ge *GitError
		if errors.As(runErr, &ge) {
			pe.Timeout = ge.Timeout
		}
		return false, pe
	case runErr != nil:
		return false, fmt.Errorf("push to %s %s: %w; nothing was pushed", r.remote, r.branch, runErr)
	default:
		return false, fmt.Errorf("push to %s %s: unexpected output %q; nothing was pushed", r.remote, r.branch, strings.TrimSpace(string(stdout)))
	}
}

// refRaceReasons are how receive-pack (and hosted remotes built on it) report a branch update
// that lost to another push after both had passed the fast-forward check: "[remote rejected]
// (failed to update ref)" with "cannot lock ref 'refs/heads/main': is at X but expected Y".
var refRaceReasons = []string{"failed to update ref", "failed to lock", "cannot lock ref", "incorrect old value"}

// lostRefRace reports whether a remote rejection says the branch moved under the push.
func lostRefRace(reason, stderr string) bool {
	for _, r := range refRaceReasons {
		if strings.Contains(reason, r) || strings.Contains(stderr, r) {
			return true
		}
	}
	return false
}

type pushStatus struct {
	flag    byte
	summary string
}

// reason returns the parenthesised part of a summary ("[remote rejected] (pre-receive hook
// declined)" -> "pre-receive hook declined").
func (s pushStatus) reason() string {
	if i := strings.Index(s.summary, "("); i >= 0 {
		return strings.TrimSuffix(s.summary[i+1:], ")")
	}
	return s.summary
}

// parsePushStatus finds the porcelain line for dst: "<flag>\t<from>:<to>\t<summary>".
func parsePushStatus(out, dst string) (pushStatus, bool) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "\t", 3)
		if len(parts) != 3 || len(parts[0]) != 1 {
			continue
		}
		_, to, _ := strings.Cut(parts[1], ":")
		if to == dst {
			return pushStatus{flag: parts[0][0], summary: parts[2]}, true
		}
	}
	return pushStatus{}, false
}

// remoteLines collects what the server printed ("remote: ...") during a push.
func remoteLines(stderr string) string {
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if rest, ok := strings.CutPrefix(l, "remote: "); ok {
			if rest = strings.TrimSpace(rest); rest != "" {
				lines = append(lines, rest)
			}
		}
	}
	if len(lines) > 20 {
		lines = append(lines[:20], "... "+strconv.Itoa(len(lines)-20)+" more line(s)")
	}
	return strings.Join(lines, "; ")
}

// conflict builds the ConflictError for a file that no longer holds c.From at head.
func (r *Repo) conflict(ctx context.Context, c Change, p, baseline, head string, found Release) error {
	var changes []Entry
	rangeSpec := head
	if baseline != head {
		if ok, _ := r.isAncestor(ctx, baseline, head); ok {
			rangeSpec = baseline + ".." + head
		}
	}
	changes, err := r.log(ctx, []string{rangeSpec, "-n", "20"}, p)
	if err != nil {
		r.logger.Warn("could not read the history for a conflict", "err", err)
	}
	if rangeSpec == head && len(changes) > 1 {
		changes = changes[:1] // no baseline to bound the range: only the last change is relevant
	}
	return &ConflictError{Env: c.Env, Service: c.Service, Path: p, Expected: c.From, Found: found, Head: head, Changes: changes}
}
