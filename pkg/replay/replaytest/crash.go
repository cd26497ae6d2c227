package replaytest

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The crash-anywhere harness: a process running a replay (the replay engine's own test child,
// the redrive agent, `opsctl dlt redrive`) is killed with SIGKILL at a chosen point of a
// replay run's transactions — a real crash, with no deferred cleanup and no abort — and the
// test then checks that a rerun delivers every dead letter exactly once.

// TopicIDs are the Kafka topic IDs a crash point recognises produce requests by (a producer may
// name a topic by ID rather than by name).
type TopicIDs struct{ Target, Ledger [16]byte }

// LookupTopicIDs returns the topic IDs of the replay target and the ledger, which must exist.
func LookupTopicIDs(tb testing.TB, c *kfake.Cluster, target, ledger string) TopicIDs {
	tb.Helper()
	adm := kadm.NewClient(Client(tb, c))
	tds, err := adm.ListTopics(context.Background(), target, ledger)
	if err != nil {
		tb.Fatal(err)
	}
	return TopicIDs{Target: tds[target].ID, Ledger: tds[ledger].ID}
}

// CrashPoint is a moment of a replay run at which the process running it is killed.
type CrashPoint struct {
	Name string
	// Install sets the kill up on the cluster; kill kills the process at most once.
	Install func(c *kfake.Cluster, ids TopicIDs, kill func())
}

// ErrKilled is what a crash point answers, in place of the broker, to the request that
// triggered the kill: the request never reaches the broker.
var ErrKilled = errors.New("client killed")

// producesTo reports whether req is a produce request writing to topic (by name or ID).
func producesTo(req kmsg.Request, topic string, id [16]byte) bool {
	pr, ok := req.(*kmsg.ProduceRequest)
	if !ok {
		return false
	}
	for _, t := range pr.Topics {
		if t.Topic == topic || (t.TopicID != [16]byte{} && t.TopicID == id) {
			return true
		}
	}
	return false
}

// CrashPoints returns every point at which a replay run writing to target and to the ledger
// topic ledger is killed: between transactions, inside one (before and after its ledger
// entries), during its commit, and while the run takes its fences. fences is how many
// transactions a run commits before its first batch (one per lane, and the first lane's
// again: len(replay.TransactionalIDs(dlt))+1). Each point needs a run of at least three
// batches.
func CrashPoints(target, ledger string, fences int32) []CrashPoint {
	return []CrashPoint{
		{"between transactions: after the second batch committed", func(c *kfake.Cluster, ids TopicIDs, kill func()) {
			var ends atomic.Int32
			c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
				ends.Add(1)
				return nil, nil, false
			})
			c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				if ends.Load() >= fences+2 && producesTo(req, target, ids.Target) { // run start + two batches
					kill()
					return nil, ErrKilled, true // the third batch never reaches the broker
				}
				return nil, nil, false
			})
		}},
		{"inside a transaction: replayed records written, ledger entries not", func(c *kfake.Cluster, ids TopicIDs, kill func()) {
			var targets atomic.Int32
			c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				if producesTo(req, target, ids.Target) {
					targets.Add(1)
				}
				if targets.Load() >= 3 && producesTo(req, ledger, ids.Ledger) {
					kill()
					return nil, ErrKilled, true
				}
				return nil, nil, false
			})
		}},
		{"inside a transaction: everything written, commit never sent", func(c *kfake.Cluster, _ TopicIDs, kill func()) {
			var ends atomic.Int32
			c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
				if ends.Add(1) == fences+1 {
					kill()
					return nil, ErrKilled, true
				}
				return nil, nil, false
			})
		}},
		{"during the commit: applied, the client never heard", func(c *kfake.Cluster, _ TopicIDs, kill func()) {
			var ends atomic.Int32
			c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
				if ends.Add(1) == fences+2 {
					kill()
				}
				return nil, nil, false // the broker commits
			})
		}},
		{"while taking the fence", func(c *kfake.Cluster, _ TopicIDs, kill func()) {
			c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
				kill()
				return nil, ErrKilled, true
			})
		}},
		{"between taking one lane's fence and the next", func(c *kfake.Cluster, _ TopicIDs, kill func()) {
			var ends atomic.Int32
			c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
				if ends.Add(1) == 2 {
					kill()
					return nil, ErrKilled, true
				}
				return nil, nil, false
			})
		}},
	}
}

// KillAt starts cmd, installs the crash point pt on c and waits until pt has killed the
// process; it fails the test when the process finished without being killed, or was not
// killed by a signal. It returns the process's combined output.
func KillAt(tb testing.TB, c *kfake.Cluster, ids TopicIDs, pt CrashPoint, cmd *exec.Cmd) string {
	tb.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	var once sync.Once
	killed := make(chan struct{})
	pt.Install(c, ids, func() {
		once.Do(func() {
			close(killed) // first: Wait may return as soon as the signal lands
			_ = cmd.Process.Signal(syscall.SIGKILL)
		})
	})
	waitErr := cmd.Wait()
	select {
	case <-killed:
	default:
		tb.Fatalf("the process was never killed (it finished: %v)\n%s", waitErr, out.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		tb.Fatalf("the process was not killed by a signal: %v\n%s", cmd.ProcessState, out.String())
	}
	return out.String()
}

// FenceTransactionalIDs ends whatever transactions a killed or failed run left open under the
// transactional ids, as the next run's fences would, so that what it committed can be counted.
func FenceTransactionalIDs(tb testing.TB, c *kfake.Cluster, ids ...string) {
	tb.Helper()
	cl := Client(tb, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range ids {
		for {
			req := kmsg.NewPtrInitProducerIDRequest()
			req.TransactionalID = &id
			req.TransactionTimeoutMillis = 60_000
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				tb.Fatalf("fence %s: %v", id, err)
			}
			if err := kerr.ErrorForCode(resp.ErrorCode); err == nil {
				break
			} else if !errors.Is(err, kerr.ConcurrentTransactions) {
				tb.Fatalf("fence %s: %v", id, err)
			}
			// The broker is still ending the killed producer's transaction; ask again.
			select {
			case <-ctx.Done():
				tb.Fatalf("fence %s: %v", id, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// Freeze holds every request the cluster gets from the moment it is called until release is
// called (or the test ends), as a frozen broker would.
func Freeze(tb testing.TB, c *kfake.Cluster) (release func()) {
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	tb.Cleanup(release)
	c.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { <-ch })
		return nil, nil, false
	})
	return release
}
