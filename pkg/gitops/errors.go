package gitops

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors callers branch on. Every error returned by this package that means "nothing
// was changed" says so in its message.
var (
	// ErrUnknownTarget means an environment or service name is not one the repository holds.
	ErrUnknownTarget = errors.New("unknown target")
	// ErrMalformed means a values file does not have the expected shape (image and canary
	// blocks); opsctl refuses to edit what it cannot read exactly.
	ErrMalformed = errors.New("malformed values file")
	// ErrUnsupportedLayout means a scalar opsctl would change is written in a way it does not
	// splice (block scalars, anchors, aliases, explicit tags, multi-line plain scalars).
	ErrUnsupportedLayout = errors.New("unsupported YAML layout")
	// ErrDirty means the working copy has uncommitted changes to tracked files.
	ErrDirty = errors.New("working copy has uncommitted changes")
	// ErrDiverged means the local branch has commits that are not on the remote branch.
	ErrDiverged = errors.New("local branch has unpushed commits")
	// ErrNoChange means the requested state equals the current one.
	ErrNoChange = errors.New("nothing to change")
	// ErrTooManyAttempts means every push lost a race to another writer of other files.
	ErrTooManyAttempts = errors.New("push kept losing races")
	// ErrInvalidChange means a Change is incomplete (missing reason, unknown target...).
	ErrInvalidChange = errors.New("invalid change")
	// ErrCacheBusy means another opsctl process holds the cached clone.
	ErrCacheBusy = errors.New("cached clone in use")
	// ErrTimeout means a git command did not finish within its deadline and was killed.
	ErrTimeout = errors.New("git did not finish in time")
)

// ConflictError reports that the values file no longer says what the change was planned
// against: someone else changed the canary (or stable image) since it was read. Nothing was
// committed or pushed.
type ConflictError struct {
	Env     string
	Service string
	Path    string
	// Expected is the state the change was planned from; Found is the state at the remote head.
	Expected Release
	Found    Release
	// Head is the remote commit that holds Found.
	Head string
	// Changes are the commits that touched the file since it was read, newest first (empty
	// when the history is not available, e.g. after a force-push upstream).
	Changes []Entry
}

// RolledBack reports whether the change lost to a canary rollback: the file now has the canary
// off at weight 0 and the newest change is a rollback. A rollback always wins; the change must
// not be re-applied over it.
func (e *ConflictError) RolledBack() bool {
	return !e.Found.Canary.Enabled && e.Found.Canary.Weight == 0 && len(e.Changes) > 0 && e.Changes[0].Action == "canary-rollback"
}

// Error describes who changed what, and that nothing was changed by this attempt.
func (e *ConflictError) Error() string {
	var b strings.Builder
	if e.RolledBack() {
		fmt.Fprintf(&b, "%s/%s: the canary was rolled back meanwhile, and a rollback always wins (%s)", e.Env, e.Service, DescribeDiff(e.Expected, e.Found))
	} else {
		fmt.Fprintf(&b, "%s/%s: %s changed since it was read (%s)", e.Env, e.Service, e.Path, DescribeDiff(e.Expected, e.Found))
	}
	if len(e.Changes) > 0 {
		c := e.Changes[0]
		fmt.Fprintf(&b, "; last changed by %s <%s> in %s at %s", c.Author, c.AuthorEmail, ShortHash(c.Commit), c.Time.UTC().Format(time.RFC3339))
		if c.Action != "" {
			fmt.Fprintf(&b, " (opsctl %s", c.Action)
			if c.Reason != "" {
				fmt.Fprintf(&b, ": %q", c.Reason)
			}
			b.WriteString(")")
		} else if c.Subject != "" {
			fmt.Fprintf(&b, " (%q)", c.Subject)
		}
		if len(e.Changes) > 1 {
			fmt.Fprintf(&b, " and %d earlier commit(s)", len(e.Changes)-1)
		}
	}
	b.WriteString("; nothing was committed or pushed — check the current state and plan again")
	return b.String()
}

// PushRejectedError reports that the remote refused the push for a reason other than a lost
// race (a pre-receive hook, branch protection, permissions). The local commit was removed again,
// so the working copy is as it was before the attempt.
type PushRejectedError struct {
	Remote string
	Branch string
	// Reason is git's summary, e.g. "pre-receive hook declined".
	Reason string
	// Message holds the remote's own lines ("remote: ..."), which may explain the policy. It
	// comes from the server: sanitise it before printing to a terminal.
	Message string
}

// Error names the remote, the branch and the reason, and states that nothing was pushed.
func (e *PushRejectedError) Error() string {
	msg := fmt.Sprintf("push to %s %s rejected by the remote: %s", e.Remote, e.Branch, e.Reason)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg + "; nothing was pushed and the local commit was undone"
}

// PushUnknownError reports a push that was interrupted before the remote answered (its
// deadline passed or the command was cancelled): the remote may or may not have the commit.
// Apply has already removed the local commit again, so the working copy is as it was, and a
// rerun is safe: it reads the remote first and refuses a change that is already there.
type PushUnknownError struct {
	Remote string
	Branch string
	// Commit is the commit that was being pushed.
	Commit string
	// Timeout is how long the push had (0 when it was cancelled instead).
	Timeout time.Duration
	// Undone is true once the local commit was removed again.
	Undone bool
	Err    error
}

// Error says what was done locally, that the push's outcome is unknown and what to check.
func (e *PushUnknownError) Error() string {
	how := "was interrupted"
	if e.Timeout > 0 {
		how = fmt.Sprintf("did not finish in %s", e.Timeout)
	}
	local := "the local commit was undone, so a rerun is safe (it re-reads the remote first)"
	if !e.Undone {
		local = "the local commit is still there"
	}
	return fmt.Sprintf("committed %s locally, but the push to %s %s %s: the remote may or may not have it; %s; check with `git fetch %s && git log %s/%s`",
		ShortHash(e.Commit), e.Remote, e.Branch, how, local, e.Remote, e.Remote, e.Branch)
}

// Unwrap returns the interrupted git invocation's error.
func (e *PushUnknownError) Unwrap() error { return e.Err }

// GitError is a failed git invocation, with what git printed on stderr.
type GitError struct {
	Args     []string
	ExitCode int
	Stderr   string
	Err      error
	// Timeout is set when git was killed because it ran longer than this; the error then
	// matches ErrTimeout and context.DeadlineExceeded.
	Timeout time.Duration
}

// Error shows the command and git's own message, or how long it ran before it was killed.
func (e *GitError) Error() string {
	if e.Timeout > 0 {
		return fmt.Sprintf("git %s did not finish in %s and was stopped (the remote accepted the connection but did not answer, or a credential prompt was waiting)",
			strings.Join(e.Args, " "), e.Timeout)
	}
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("git %s: %s", strings.Join(e.Args, " "), msg)
}

// Unwrap returns the underlying exec error.
func (e *GitError) Unwrap() error { return e.Err }

// ShortHash abbreviates a commit hash for messages.
func ShortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
