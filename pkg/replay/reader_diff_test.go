package replay

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// The differential test of the one reader every read goes through (rangeScan: its own fetch
// decoder, franz-go's consumer for batches older than format v2): on a DLT written to be hard
// to read — every codec, transactions committed and aborted interleaved with plain writes and
// with each other, tombstones, empty and missing keys and headers, records deleted with
// DeleteRecords, a compacted topic, leaders moved between writes, broker-stamped timestamps —
// it must return, for every start offset and every end offset of every partition, exactly
// the records franz-go's read_committed consumer returns over the same range.

const diffDLT = "diff.DLT"

// diffRecord is what a reader returns of a record, as compared.
type diffRecord struct {
	Partition int32
	Offset    int64
	Key       []byte
	KeyNil    bool
	Value     []byte
	ValueNil  bool
	Headers   []kgo.RecordHeader
	Timestamp int64
}

func (d diffRecord) String() string {
	return fmt.Sprintf("[%d]@%d key=%q(nil %v) value=%q(nil %v) headers=%v ts=%d",
		d.Partition, d.Offset, d.Key, d.KeyNil, d.Value, d.ValueNil, d.Headers, d.Timestamp)
}

func diffOf(r *kgo.Record) diffRecord {
	d := diffRecord{Partition: r.Partition, Offset: r.Offset, Key: bytes.Clone(r.Key), KeyNil: r.Key == nil,
		Value: bytes.Clone(r.Value), ValueNil: r.Value == nil, Timestamp: r.Timestamp.UnixMilli()}
	for _, h := range r.Headers {
		d.Headers = append(d.Headers, kgo.RecordHeader{Key: h.Key, Value: bytes.Clone(h.Value)})
	}
	return d
}

func equalDiff(a, b diffRecord) bool {
	if a.Partition != b.Partition || a.Offset != b.Offset || a.KeyNil != b.KeyNil || a.ValueNil != b.ValueNil ||
		!bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Value, b.Value) || a.Timestamp != b.Timestamp || len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !bytes.Equal(a.Headers[i].Value, b.Headers[i].Value) ||
			(a.Headers[i].Value == nil) != (b.Headers[i].Value == nil) {
			return false
		}
	}
	return true
}

// hostileScenario says how a hostile DLT is written.
type hostileScenario struct {
	seed    uint64
	steps   int
	compact bool // cleanup.policy=compact, compacted after the writes
	logTime bool // message.timestamp.type=LogAppendTime
	brokers int
}

func scenarioFrom(seed uint64) hostileScenario {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return hostileScenario{seed: seed, steps: 6 + rng.IntN(20), compact: rng.IntN(3) == 0, logTime: rng.IntN(4) == 0, brokers: 1 + rng.IntN(3)}
}

var diffCodecs = []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}

// writeHostileDLT writes diffDLT (2 partitions) as sc says, on a cluster of its own.
func writeHostileDLT(t testing.TB, sc hostileScenario) *kfake.Cluster {
	t.Helper()
	c := replaytest.NewCluster(t, kfake.NumBrokers(sc.brokers))
	cfg := map[string]string{}
	if sc.compact {
		cfg["cleanup.policy"] = "compact"
	}
	if sc.logTime {
		cfg["message.timestamp.type"] = "LogAppendTime"
	}
	if err := c.CreateTopic(diffDLT, 2, cfg); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(sc.seed, sc.seed^0x9e3779b97f4a7c15))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	producer := func(extra ...kgo.Opt) *kgo.Client {
		codec := diffCodecs[rng.IntN(len(diffCodecs))]
		return replaytest.Client(t, c, append([]kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(0)}, extra...)...)
	}
	plains := []*kgo.Client{producer(), producer(), producer()}
	txns := []*kgo.Client{
		producer(kgo.TransactionalID("diff-listener-a")),
		producer(kgo.TransactionalID("diff-listener-b")),
	}
	n := 0
	record := func() *kgo.Record {
		n++
		r := &kgo.Record{Topic: diffDLT, Partition: int32(rng.IntN(2)), Timestamp: replaytest.Base.Add(time.Duration(n) * time.Second)}
		switch rng.IntN(5) {
		case 0: // no key
		case 1:
			r.Key = []byte{}
		default:
			r.Key = []byte("k" + strconv.Itoa(rng.IntN(8))) // few keys: compaction has work
		}
		switch rng.IntN(6) {
		case 0: // a tombstone
		case 1:
			r.Value = []byte{}
		default:
			r.Value = fmt.Appendf(nil, `{"orderId":%d,"pad":%q}`, n, bytes.Repeat([]byte("x"), rng.IntN(300)))
		}
		for i := range rng.IntN(4) {
			h := kgo.RecordHeader{Key: []string{"kafka_dlt-exception-message", "errorCode", "tenant", ""}[rng.IntN(4)]}
			if rng.IntN(4) > 0 {
				h.Value = []byte(strconv.Itoa(n*10 + i))
			}
			r.Headers = append(r.Headers, h)
		}
		return r
	}
	some := func() []*kgo.Record {
		recs := make([]*kgo.Record, 1+rng.IntN(12))
		for i := range recs {
			recs[i] = record()
		}
		return recs
	}
	produce := func(cl *kgo.Client, recs []*kgo.Record) {
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(replaytest.Client(t, c))
	open := map[int]bool{}
	for range sc.steps {
		switch op := rng.IntN(10); {
		case op < 3:
			produce(plains[rng.IntN(len(plains))], some())
		case op < 7: // a transaction: begun (if not open), written to, maybe ended
			k := rng.IntN(len(txns))
			cl := txns[k]
			if !open[k] {
				if err := cl.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				open[k] = true
			}
			produce(cl, some())
			if rng.IntN(3) > 0 {
				end := kgo.TryCommit
				if rng.IntN(2) == 0 {
					end = kgo.TryAbort
				}
				if err := cl.EndTransaction(ctx, end); err != nil {
					t.Fatal(err)
				}
				open[k] = false
			}
		case op < 8 && sc.brokers > 1: // the leader of a partition moves
			p := int32(rng.IntN(2))
			if err := c.MoveTopicPartition(diffDLT, p, (c.LeaderFor(diffDLT, p)+1)%int32(sc.brokers)); err != nil {
				t.Fatal(err)
			}
		case op < 9: // records deleted from the start of a partition
			p := int32(rng.IntN(2))
			ends, err := adm.ListEndOffsets(ctx, diffDLT)
			if err != nil {
				t.Fatal(err)
			}
			if eo, ok := ends.Lookup(diffDLT, p); ok && eo.Offset > 0 {
				o := kadm.Offsets{}
				o.Add(kadm.Offset{Topic: diffDLT, Partition: p, At: rng.Int64N(eo.Offset + 1)})
				if _, err := adm.DeleteRecords(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
		default:
			produce(plains[0], some())
		}
	}
	for k, cl := range txns { // every transaction ends, one way or the other
		if open[k] {
			end := kgo.TryCommit
			if rng.IntN(2) == 0 {
				end = kgo.TryAbort
			}
			if err := cl.EndTransaction(ctx, end); err != nil {
				t.Fatal(err)
			}
		}
	}
	if sc.compact {
		c.Compact()
	}
	return c
}

// consumerRead reads [start, end) of partition p as franz-go's read_committed consumer does.
func consumerRead(t testing.TB, c *kfake.Cluster, p int32, start, end int64) []diffRecord {
	t.Helper()
	if start >= end {
		return nil
	}
	cl := replaytest.Client(t, c, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{diffDLT: {p: kgo.NewOffset().At(start)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []diffRecord
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumer [%d] from %d to %d: %v", p, start, end, err)
		}
		if err := fs.Err(); err != nil {
			t.Fatalf("consumer [%d] from %d: %v", p, start, err)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end-1 {
				done = true
			}
			if r.Offset < end && !r.Attrs.IsControl() {
				out = append(out, diffOf(r))
			}
		})
		if done {
			return out
		}
	}
}

// readerRead reads [start, end) of partition p through the engine's reader, fetch bytes at a time.
func readerRead(t testing.TB, e *Engine, p int32, start, end int64, fetch int32) []diffRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []diffRecord
	err := e.scanWith(ctx, diffDLT, []partRange{{p: p, start: start, end: end}}, fetch, false, func(r *kgo.Record) (bool, error) {
		out = append(out, diffOf(r))
		return true, nil
	}, nil)
	if err != nil {
		t.Fatalf("reader [%d] from %d to %d: %v", p, start, end, err)
	}
	return out
}

// checkReaderMatchesConsumer compares the two readers on every range of diffDLT that starts
// or ends at any offset of a partition (the other end at the log's start or its last stable
// offset). every=false compares the starts and ends of a sample of offsets instead.
func checkReaderMatchesConsumer(t testing.TB, sc hostileScenario, every bool) {
	c := writeHostileDLT(t, sc)
	e := newEngine(t, c)
	ctx := context.Background()
	ranges, err := e.topicRanges(ctx, diffDLT, nil, toStable)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(sc.seed, 7))
	fetches := []int32{1, 700, 4 << 10, fetchBulk} // 1 byte: one batch per answer
	compared := 0
	for _, r := range ranges {
		if r.start >= r.end {
			continue
		}
		whole := consumerRead(t, c, r.p, r.start, r.end)
		check := func(start, end int64, want []diffRecord) {
			t.Helper()
			fetch := fetches[rng.IntN(len(fetches))]
			got := readerRead(t, e, r.p, start, end, fetch)
			compared++
			if !slices.EqualFunc(got, want, equalDiff) {
				t.Fatalf("scenario %+v, [%d] offsets %d to %d (fetch %d): %s\nthe log: %s",
					sc, r.p, start, end, fetch, diffReport(got, want), dumpLog(t, e, r.p, r.start))
			}
		}
		for off := r.start; off <= r.end; off++ {
			if !every && off != r.start && off != r.end && rng.IntN(8) > 0 {
				continue
			}
			// From off to the end: franz-go's consumer itself starts at off.
			check(off, r.end, consumerRead(t, c, r.p, off, r.end))
			// From the start to off: the whole read, cut at off.
			var head []diffRecord
			for _, d := range whole {
				if d.Offset < off {
					head = append(head, d)
				}
			}
			check(r.start, off, head)
		}
	}
	if compared == 0 {
		t.Logf("scenario %+v left no records", sc)
	}
}

// TestReaderMatchesConsumer is the property: for many hostile DLTs, the reader returns what
// franz-go's read_committed consumer returns, for every range.
func TestReaderMatchesConsumer(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 5
	}
	for seed := range uint64(seeds) {
		sc := scenarioFrom(seed)
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			t.Parallel()
			checkReaderMatchesConsumer(t, sc, true)
		})
	}
}

// FuzzReaderMatchesConsumer explores hostile DLTs beyond the property's seeds
// (go test -fuzz FuzzReaderMatchesConsumer ./pkg/replay).
func FuzzReaderMatchesConsumer(f *testing.F) {
	for _, s := range []uint64{100, 101, 102} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		checkReaderMatchesConsumer(t, scenarioFrom(seed), false)
	})
}

// diffReport says where two reads part.
func diffReport(got, want []diffRecord) string {
	offs := func(rs []diffRecord) []int64 {
		var out []int64
		for _, r := range rs {
			out = append(out, r.Offset)
		}
		return out
	}
	for i := range min(len(got), len(want)) {
		if !equalDiff(got[i], want[i]) {
			return fmt.Sprintf("record %d differs:\nreader   %v\nconsumer %v\nreader offsets   %v\nconsumer offsets %v", i, got[i], want[i], offs(got), offs(want))
		}
	}
	return fmt.Sprintf("reader read %d records, the consumer %d\nreader offsets   %v\nconsumer offsets %v", len(got), len(want), offs(got), offs(want))
}

// dumpLog describes the batches of partition p from offset from, and the aborted
// transactions a fetch from there lists.
func dumpLog(t testing.TB, e *Engine, p int32, from int64) string {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes, req.IsolationLevel, req.SessionEpoch = -1, 1<<20, 1, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = diffDLT
	if l, err := e.leaders(context.Background(), diffDLT); err == nil {
		rt.TopicID = l.id
	}
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch, fp.LogStartOffset = p, from, 1<<20, -1, -1
	rt.Partitions = append(rt.Partitions, fp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), e.cl)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, t := range resp.Topics {
		for _, rp := range t.Partitions {
			fmt.Fprintf(&b, "aborted %v; ", rp.AbortedTransactions)
			raw := rp.RecordBatches
			for len(raw) > 0 {
				bt, rest, err := splitBatch(raw)
				if bt == nil || err != nil {
					break
				}
				raw = rest
				fmt.Fprintf(&b, "[%d..%d pid %d attrs %#x n %d] ", bt.base, bt.base+int64(bt.lastDelta), bt.producerID, bt.attrs, bt.count)
			}
		}
	}
	return b.String()
}
