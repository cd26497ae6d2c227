package dlt_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/hangtest"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// A loaded machine may add this much to a command's timeout.
const silenceMargin = 10 * time.Second

// TestEveryCommandEndsOnASilentBroker: against a listener that accepts and never answers,
// every dlt command ends within its timeout — set by the context's dlt.timeout or by
// --timeout — with one line saying what happened and that nothing was changed.
func TestEveryCommandEndsOnASilentBroker(t *testing.T) {
	addr := hangtest.Listen(t)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	body := fmt.Sprintf("current-context: silent\ncontexts:\n  silent:\n    kafka: {brokers: [%q]}\n    dlt: {timeout: 2s}\n  plain:\n    kafka: {brokers: [%q]}\n", addr, addr)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &harness{cfg: cfg}
	t.Setenv("OPSCTL_ACTOR", "oncall@laptop")
	commands := [][]string{
		{"dlt", "topics"},
		{"dlt", "list", "orders-failed.DLT"},
		{"dlt", "show", "orders-failed.DLT", "0", "0"},
		{"dlt", "stats", "orders-failed.DLT"},
		{"dlt", "history"},
		{"dlt", "outcome", "0190f1e2-0000-7000-8000-000000000000"},
		{"dlt", "replay", "orders-failed.DLT", "--dry-run"},
		{"dlt", "replay", "orders-failed.DLT", "--reason", "r", "--yes"},
	}
	// Every command waits out its 2s timeout, so they all run at once rather than as parallel
	// subtests, which -parallel (GOMAXPROCS, 2 on CI) would let through two at a time; the
	// subtests then judge the results.
	type run struct {
		args []string
		r    result
		took time.Duration
	}
	var runs []*run
	for _, how := range [][]string{{}, {"--context", "plain", "--timeout", "2s"}} {
		for _, args := range commands {
			runs = append(runs, &run{args: append(append([]string{}, args...), how...)})
		}
	}
	var wg sync.WaitGroup
	for _, rn := range runs {
		wg.Go(func() {
			start := time.Now()
			rn.r = h.run(t, false, "", rn.args...)
			rn.took = time.Since(start)
		})
	}
	wg.Wait()
	for _, rn := range runs {
		args, r, took := rn.args, rn.r, rn.took
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if r.code != cmdutil.ExitError || took > 2*time.Second+silenceMargin {
				t.Fatalf("exit %d after %s: %v", r.code, took, r.err)
			}
			msg := r.err.Error()
			if !strings.Contains(msg, "did not answer for 2s") {
				t.Fatalf("the error does not say the broker was silent: %s", msg)
			}
			if args[1] == "replay" && !strings.Contains(strings.Join(args, " "), "--dry-run") {
				if !strings.Contains(msg, "0 replayed records had gone out and been committed") || !strings.Contains(msg, "exactly once") {
					t.Fatalf("a stopped replay does not say what it committed: %s", msg)
				}
			} else if !strings.Contains(msg, "nothing was changed") {
				t.Fatalf("a stopped read does not say nothing was changed: %s", msg)
			}
		})
	}
}

// TestReplayStoppedByAFrozenBrokerSaysWhatItCommitted: the broker freezes after a replay sent
// its commit. The command ends within --timeout, its error line says the commit's outcome is
// unknown and that a rerun finishes exactly once; the rerun, once the broker is back, does.
func TestReplayStoppedByAFrozenBrokerSaysWhatItCommitted(t *testing.T) {
	h := newHarness(t)
	h.seed(t)
	hold := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release)
	// The batch's commit is the first EndTxn after records were produced to the replay's target
	// topic: the fences before it write only to the ledger, however many lanes the run fences.
	ids := replaytest.LookupTopicIDs(t, h.c, event.TopicOrdersFailed, dlt.DefaultLedgerTopic)
	var produced, held atomic.Bool
	h.c.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		h.c.KeepControl()
		switch req := req.(type) {
		case *kmsg.ProduceRequest: // by name or, in newer versions, by topic ID
			for _, tp := range req.Topics {
				produced.Store(produced.Load() || tp.Topic == event.TopicOrdersFailed || tp.TopicID == ids.Target)
			}
		case *kmsg.EndTxnRequest:
			if produced.Load() {
				held.Store(true)
			}
		}
		if held.Load() {
			h.c.SleepControl(func() { <-hold })
		}
		return nil, nil, false
	})
	start := time.Now()
	r := h.run(t, false, "", "dlt", "replay", "orders-failed.DLT", "--reason", "frozen", "--yes", "--timeout", "2s")
	took := time.Since(start)
	if r.code != cmdutil.ExitError || took > 2*time.Second+silenceMargin || r.err == nil {
		t.Fatalf("replay on a frozen broker: exit %d after %s: %v", r.code, took, r.err)
	}
	for _, want := range []string{"did not answer for 2s", "0 replayed records had gone out", "the commit of 12 more records was sent and not answered", "run the same command again", "exactly once"} {
		if !strings.Contains(r.err.Error(), want) {
			t.Errorf("error line %q does not say %q", r.err, want)
		}
	}
	release()
	r = h.run(t, false, "", "dlt", "replay", "orders-failed.DLT", "--reason", "again", "--yes")
	if r.err != nil {
		t.Fatalf("rerun: %v\n%s", r.err, r.out)
	}
	seen := map[string]int{}
	for _, rec := range replaytest.ReadCommitted(t, h.c, event.TopicOrdersFailed) {
		from, _ := headerOf(rec, "x-opsctl-replayed-from")
		seen[from]++
	}
	if len(seen) != 12 {
		t.Fatalf("%d dead letters reached %s, want 12", len(seen), event.TopicOrdersFailed)
	}
	for from, n := range seen {
		if n != 1 {
			t.Errorf("%s replayed %d times", from, n)
		}
	}
}
