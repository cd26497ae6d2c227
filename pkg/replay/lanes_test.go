package replay

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// TestLanesScaleWithTransactionTime: a run fences every lane, and commits its batches on
// nearLanes of them by default or when a transaction takes less than wideAfter, on all of them
// otherwise.
// The results still arrive in batch order, and every record reaches its topic once.
func TestLanesScaleWithTransactionTime(t *testing.T) {
	const n = 56 // 8 batches of 7
	for _, tc := range []struct {
		name      string
		wideAfter time.Duration
		// commits per lane: lane 0's fence, check and end, each lane's fence, and the batches
		// the lane took, in turn.
		want [replayLanes]int
	}{
		{"default", 0, [replayLanes]int{2 + 4 + 1, 1 + 4, 1, 1}},
		{"near", time.Hour, [replayLanes]int{2 + 4 + 1, 1 + 4, 1, 1}},
		{"far", time.Nanosecond, [replayLanes]int{2 + 2 + 1, 1 + 2, 1 + 2, 1 + 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := replaytest.NewCluster(t)
			seedSaga(t, c, n)
			var mu sync.Mutex
			commits := map[string]int{}
			c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				if r := req.(*kmsg.EndTxnRequest); r.Commit {
					mu.Lock()
					commits[r.TransactionalID]++
					mu.Unlock()
				}
				return nil, nil, false
			})
			e := newEngine(t, c) // BatchSize 7, batches do not grow
			e.wideAfter = tc.wideAfter
			var replayIDs []string
			sum := mustReplay(t, e, Request{Topic: ordersDLT, Reason: tc.name, OnResult: func(res Result) {
				if res.Action == ActionReplayed {
					replayIDs = append(replayIDs, res.ReplayID)
				}
			}})
			if sum.Replayed != n {
				t.Fatalf("replay %s", countsString(sum.Counts))
			}
			mu.Lock()
			defer mu.Unlock()
			for k, want := range tc.want {
				if got := commits[laneTransactionalID(ordersDLT, k)]; got != want {
					t.Errorf("lane %d committed %d transactions, want %d (%v)", k, got, want, commits)
				}
			}
			if len(replayIDs) != n || !slices.IsSorted(replayIDs) {
				t.Errorf("results out of batch order: %v", replayIDs)
			}
			assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, n)
		})
	}
}

// TestConcurrentWideRunsNeverDuplicate races runs that commit on every lane, with batches
// that grow, as against a distant broker: whichever runs are fenced, every record reaches its
// topic once.
func TestConcurrentWideRunsNeverDuplicate(t *testing.T) {
	raceRuns(t, func(e *Engine) { e.wideAfter = time.Nanosecond })
}

// TestFencesOfTheLaterLanesHeldStopTheEarlierRun holds a run while it takes the fences of its
// lanes after lane 1 (taken together) and lets a second run take every lane meanwhile. The
// first run's check of lane 0 finds the second's fence: it stops before reading the ledger and
// replays nothing; the second, committing on every lane, replays everything once.
func TestFencesOfTheLaterLanesHeldStopTheEarlierRun(t *testing.T) {
	const n = 30
	c := replaytest.NewCluster(t)
	seedSaga(t, c, n)
	first, second := newEngine(t, c), newEngine(t, c)
	second.wideAfter = time.Nanosecond
	later := map[string]bool{}
	for k := 2; k < replayLanes; k++ {
		later[laneTransactionalID(ordersDLT, k)] = true
	}
	held, resume := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	seen := map[string]bool{}
	c.ControlKey(int16(kmsg.InitProducerID), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.InitProducerIDRequest)
		if r.TransactionalID == nil || !later[*r.TransactionalID] {
			return nil, nil, false
		}
		mu.Lock()
		first := !seen[*r.TransactionalID]
		seen[*r.TransactionalID] = true
		if first && len(seen) == len(later) {
			close(held) // the first run is in the fences of every later lane
		}
		mu.Unlock()
		if first {
			c.SleepControl(func() { <-resume })
		}
		return nil, nil, false
	})
	done := replayAsync(first, Request{Topic: ordersDLT, Reason: "first"})
	<-held
	sum := mustReplay(t, second, Request{Topic: ordersDLT, Reason: "second"})
	close(resume)
	got := <-done
	if !errors.Is(got.err, ErrFenced) || got.sum.Replayed != 0 || got.sum.Selected != 0 {
		t.Fatalf("first run: %v, %s; want fenced before it selected anything", got.err, countsString(got.sum.Counts))
	}
	if sum.Replayed != n {
		t.Fatalf("second run %s", countsString(sum.Counts))
	}
	assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, n)
}
