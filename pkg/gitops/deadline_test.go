package gitops

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/come2us/opsctl/pkg/hangtest"
)

// A push to a remote that never answers is killed at the deadline; the error says a commit was
// made, that the remote may or may not have it, that the local commit was undone and how to
// check. The fetch goes to the real remote, so only the push hangs.
func TestApplyPushToHungRemoteEndsAtTheDeadline(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	r, dir := f.clone("Alice", WithTimeout(2*time.Second))
	gitT(t, dir, "remote", "set-url", "--push", "origin", "git://"+hangtest.Listen(t)+"/gitops.git")
	before := f.remoteHead()
	c := change(t, r, "prod", "order", "canary-start", startCanary("1.1.0", 10))

	_, err := r.Apply(ctx, c)
	var pe *PushUnknownError
	if !errors.As(err, &pe) {
		t.Fatalf("Apply = %v, want a *PushUnknownError", err)
	}
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error does not match ErrTimeout and DeadlineExceeded: %v", err)
	}
	if pe.Timeout != 2*time.Second || pe.Commit == "" || !pe.Undone {
		t.Errorf("error = %+v", pe)
	}
	msg := err.Error()
	for _, want := range []string{
		"committed " + ShortHash(pe.Commit) + " locally",
		"push to origin main did not finish in 2s",
		"the remote may or may not have it",
		"the local commit was undone, so a rerun is safe",
		"git log origin/main",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "nothing was pushed") {
		t.Errorf("message claims nothing was pushed after an interrupted push:\n%s", msg)
	}
	assertClean(t, dir, before)
	if f.remoteHead() != before {
		t.Errorf("remote moved")
	}
}

// Cloning from a remote that never answers ends at the deadline, with nothing left behind in
// the cache.
func TestCloneFromHungRemoteEndsAtTheDeadline(t *testing.T) {
	cache := t.TempDir()
	url := "git://" + hangtest.Listen(t) + "/gitops.git"
	_, err := Clone(context.Background(), url, WithCacheDir(cache), WithTimeout(time.Second))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Clone = %v, want ErrTimeout", err)
	}
	if !strings.Contains(err.Error(), "did not finish in 1s") {
		t.Errorf("message: %v", err)
	}
	dir, _ := CacheDir(cache, url)
	if _, err := Open(context.Background(), dir); err == nil {
		t.Errorf("a half clone was left at %s", dir)
	}
}
