package replay

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

const (
	ordersDLT  = "orders-failed.DLT"
	springDLT  = "payments-failed-dlt"
	connectDLT = "connect-orders-dlt"
)

func newEngine(t testing.TB, c *kfake.Cluster, edit ...func(*Config)) *Engine {
	t.Helper()
	cfg := Config{
		NewClient: replaytest.NewClientFunc(c),
		Actor:     "oncall@laptop",
		Now:       func() time.Time { return replaytest.Base.Add(30 * time.Minute) },
		BatchSize: 7, // small, so a few dozen records span several transactions
	}
	for _, f := range edit {
		f(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Batches stay at BatchSize, so tests can count transactions and know where each batch
	// ends. TestBatchesGrowWhileTheOtherLaneCommits and TestGrownBatchFailsWholeThenRerun cover
	// growing batches.
	e.fixedBatches = true
	t.Cleanup(e.Close)
	return e
}

// seedSaga writes n SAGA dead letters to orders-failed.DLT, spread over the three partitions,
// alternating two error codes; order ids start at 1.
func seedSaga(t testing.TB, c *kfake.Cluster, n int) {
	t.Helper()
	var recs []*kgo.Record
	for i := 1; i <= n; i++ {
		code := "DB_LOCK_TIMEOUT"
		if i%2 == 0 {
			code = "STOCK_ROW_MISSING"
		}
		recs = append(recs, replaytest.Saga(int32(i%3), int64(i), code, 1+i%4, replaytest.Base.Add(time.Duration(i)*time.Second)))
	}
	replaytest.Produce(t, c, recs...)
}

// replayedFrom counts the committed records on topic per x-opsctl-replayed-from value.
func replayedFrom(t testing.TB, c *kfake.Cluster, topic string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range replaytest.ReadCommitted(t, c, topic) {
		for _, h := range r.Headers {
			if h.Key == dlt.HeaderReplayedFrom {
				out[string(h.Value)]++
			}
		}
	}
	return out
}

// assertExactlyOnce checks every record of dltTopic's partitions named in want reached target
// exactly once.
func assertExactlyOnce(t testing.TB, c *kfake.Cluster, target, dltTopic string, n int) {
	t.Helper()
	got := replayedFrom(t, c, target)
	dlts := replaytest.ReadCommitted(t, c, dltTopic)
	if len(dlts) != n {
		t.Fatalf("%s holds %d records, want %d", dltTopic, len(dlts), n)
	}
	for _, r := range dlts {
		k := Coord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}.String()
		if got[k] != 1 {
			t.Errorf("%s reached %s %d times, want exactly once", k, target, got[k])
		}
		delete(got, k)
	}
	for k, n := range got {
		t.Errorf("%s has %d records replayed from %s, which is not a selected dead letter", target, n, k)
	}
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func mustReplay(t testing.TB, e *Engine, req Request) *Summary {
	t.Helper()
	if req.Reason == "" {
		req.Reason = "DB lock fixed, reprocessing"
	}
	sum, err := e.Replay(context.Background(), req)
	if err != nil {
		t.Fatalf("replay: %v (summary %+v)", err, sum)
	}
	return sum
}

func countsString(c Counts) string {
	return fmt.Sprintf("selected=%d replayed=%d skipped=%d refused=%d failed=%d", c.Selected, c.Replayed, c.Skipped, c.Refused, c.Failed)
}

var _ = regexp.MustCompile
var _ = strconv.Itoa

func kgoHeader(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }
