package replay

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
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
	// legacy serves a stretch of plain records of partition 0, written between the other
	// steps, as messages of formats v0 and v1 (Kafka before 0.11), plain and compressed, to
	// fetches that start among them: the reader hands the rest to franz-go's consumer there.
	legacy bool
	// deadLetters makes most records dead letters of payments.failed (the rest name no topic, or
	// one that does not exist), so that a replay has something to do.
	deadLetters bool
}

func scenarioFrom(seed uint64) hostileScenario {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	sc := hostileScenario{seed: seed, steps: 6 + rng.IntN(20), compact: rng.IntN(3) == 0, logTime: rng.IntN(4) == 0, brokers: 1 + rng.IntN(3)}
	sc.legacy = !sc.logTime && rng.IntN(3) == 0 // a v1 message keeps its own timestamp
	return sc
}

var diffCodecs = []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}

// legacyServed is where partition 0 of a legacy scenario holds messages older than format v2,
// and how many fetches were answered with them (see serveLegacy).
type legacyServed struct {
	first, last int64
	fetches     atomic.Int64
}

// writeHostileDLT writes diffDLT (2 partitions) as sc says, on a cluster of its own. served
// is not nil when partition 0 holds messages older than format v2.
func writeHostileDLT(t testing.TB, sc hostileScenario) (_ *kfake.Cluster, served *legacyServed) {
	t.Helper()
	c := replaytest.NewCluster(t, kfake.NumBrokers(sc.brokers))
	cfg := map[string]string{}
	if sc.compact {
		cfg["cleanup.policy"] = "compact"
		// Records are stamped from replaytest.Base, weeks before the clock kfake's retention
		// reads: without this, Compact's retention pass would delete all but the markers.
		cfg["retention.ms"] = "-1"
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
		if sc.deadLetters {
			switch rng.IntN(8) {
			case 0: // no original topic: refused
			case 1:
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: dlt.HeaderOriginalTopic, Value: []byte("no.such.topic")})
			default:
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: dlt.HeaderOriginalTopic, Value: []byte(event.TopicPaymentsFailed)})
			}
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
	// writeFailed stops the scenario on an error writing it. kfake sometimes answers a producer
	// OUT_OF_ORDER_SEQUENCE_NUMBER after a partition's leader moved (it does not carry the
	// producer's sequence to the new leader): the scenario cannot be written, which says nothing
	// about the reader, so it is skipped rather than failed.
	writeFailed := func(err error) {
		t.Helper()
		if sc.brokers > 1 && errors.Is(err, kerr.OutOfOrderSequenceNumber) {
			t.Skipf("kfake refused the scenario's writes after a leader move: %v", err)
		}
		t.Fatal(err)
	}
	produce := func(cl *kgo.Client, recs []*kgo.Record) {
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			writeFailed(err)
		}
	}
	adm := kadm.NewClient(replaytest.Client(t, c))
	// The legacy stretch is written at a step of its own, so that v2 batches of every kind lie
	// before and after it; its own rng leaves the other scenarios as they were.
	lrng := rand.New(rand.NewPCG(sc.seed, 0x1e9ac7))
	legacyAt := -1
	if sc.legacy {
		legacyAt = lrng.IntN(sc.steps + 1)
	}
	var legacy []*kgo.Record
	writeLegacy := func() {
		plain := replaytest.Client(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
		total := 16 + lrng.IntN(12)
		for i := range total {
			n++
			r := &kgo.Record{Topic: diffDLT, Partition: 0, Value: fmt.Appendf(nil, "legacy-%d", i), Timestamp: replaytest.Base.Add(time.Duration(n) * time.Second)}
			if lrng.IntN(3) > 0 {
				r.Key = fmt.Appendf(nil, "lk%d", lrng.IntN(4))
			}
			if i < 4 { // v2 before the messages served as v0 and v1
				r.Headers = []kgo.RecordHeader{{Key: "tenant", Value: []byte(strconv.Itoa(i))}}
			}
			if lrng.IntN(8) == 0 {
				r.Value = nil
			}
			if sc.compact { // kept by compaction, which in kfake moves the log's start past what it removes
				r.Key, r.Value = fmt.Appendf(nil, "legacy-%d", i), fmt.Appendf(nil, "legacy-%d", i)
			}
			produce(plain, []*kgo.Record{r})
			if i >= 4 && i < total-2 { // and v2 after them
				legacy = append(legacy, r)
			}
		}
	}
	open := map[int]bool{}
	for step := range sc.steps + 1 {
		if step == legacyAt {
			writeLegacy()
		}
		if step == sc.steps {
			break
		}
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
					writeFailed(err)
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
				at := rng.Int64N(eo.Offset + 1)
				if p == 0 && len(legacy) > 0 { // the last v1 message stays, so that a read starts among them
					at = min(at, legacy[len(legacy)-1].Offset)
				}
				o := kadm.Offsets{}
				o.Add(kadm.Offset{Topic: diffDLT, Partition: p, At: at})
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
				writeFailed(err)
			}
		}
	}
	if sc.compact {
		c.Compact()
	}
	if len(legacy) > 0 {
		served = &legacyServed{first: legacy[0].Offset, last: legacy[len(legacy)-1].Offset}
		// A replay fetches both partitions at once, which serveLegacy leaves to kfake: its
		// plan must read the same records from v1 messages.
		serveLegacy(t, c, legacySets(lrng, legacy, sc.deadLetters), &served.fetches)
	}
	return c, served
}

// legacySet is one entry of a message set older than format v2: a message of its own, or a
// compressed wrapper message whose value holds the inner messages.
type legacySet struct {
	magic int8                     // 0 or 1
	codec kgo.CompressionCodecType // CodecNone: one message, uncompressed
	recs  []*kgo.Record            // what the set holds, at consecutive offsets
	// gone are inner messages (never the last) the log cleaner removed from a wrapper: their
	// offsets are gaps.
	gone map[int]bool
	// zeroWrapper gives a v1 wrapper the offset 0 and its inner messages absolute offsets, as
	// some producers wrote them; readers use the inner offsets as they are.
	zeroWrapper bool
}

// last is the offset of the set's last message, the offset a broker indexes it by.
func (s legacySet) last() int64 { return s.recs[len(s.recs)-1].Offset }

// legacySets cuts recs into messages of format v0 and v1, plain and compressed (gzip, snappy
// in the Java client's xerial framing, and lz4 for v1: Kafka's v0 lz4 framing had a broken
// header checksum), as a log written by Kafka clients before 0.11 holds them. same keeps to
// what reads as recs do: v1 messages (v0 has no timestamp) without gaps, for a test whose
// fetches of several partitions at once kfake answers with the v2 records.
func legacySets(rng *rand.Rand, recs []*kgo.Record, same bool) []legacySet {
	var sets []legacySet
	for len(recs) > 0 {
		s := legacySet{magic: int8(rng.IntN(2))}
		if same {
			s.magic = 1
		}
		if rng.IntN(3) > 0 {
			codecs := []kgo.CompressionCodecType{kgo.CodecGzip, kgo.CodecSnappy, kgo.CodecLz4}
			if s.magic == 0 {
				codecs = codecs[:2]
			}
			s.codec = codecs[rng.IntN(len(codecs))]
		}
		k := 1
		if s.codec != kgo.CodecNone {
			k = min(len(recs), 1+rng.IntN(5))
			for i := range k - 1 {
				if rng.IntN(4) == 0 && !same {
					if s.gone == nil {
						s.gone = map[int]bool{}
					}
					s.gone[i] = true
				}
			}
			s.zeroWrapper = s.magic == 1 && rng.IntN(6) == 0
		}
		s.recs, recs = recs[:k], recs[k:]
		sets = append(sets, s)
	}
	return sets
}

// serveLegacy answers a fetch of partition 0 alone that starts among the offsets of sets
// with the sets from the one holding that offset on, in their old formats; the records carry
// the key, value and (v1) timestamp they were written with. A wrapper is served whole, as a
// broker does: a reader drops the messages before its fetch offset. It counts the fetches it
// answers in served.
//
// A fetch of partition 0 alone that starts before the sets is answered by kfake with one
// batch: every reader then fetches again at the sets' first offset, and reads them as v0 and v1
// whatever size its fetches are (a v0 message has no timestamp, and a wrapper may have gaps,
// so the v2 records at those offsets would read differently).
func serveLegacy(t testing.TB, c *kfake.Cluster, sets []legacySet, served *atomic.Int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A client of its own: one whose metadata predates a moved leader lists offsets there.
	adm := kadm.NewClient(replaytest.Client(t, c))
	tds, err := adm.ListTopics(ctx, diffDLT)
	if err != nil {
		t.Fatal(err)
	}
	id := tds[diffDLT].ID
	listed := func(list func(context.Context, ...string) (kadm.ListedOffsets, error)) int64 {
		offs, err := list(ctx, diffDLT)
		if err != nil {
			t.Fatal(err)
		}
		o, ok := offs.Lookup(diffDLT, 0)
		if !ok || o.Err != nil {
			t.Fatalf("list offsets of %s[0]: %v", diffDLT, o.Err)
		}
		return o.Offset
	}
	start, high, stable := listed(adm.ListStartOffsets), listed(adm.ListEndOffsets), listed(adm.ListCommittedOffsets)
	first, last := sets[0].recs[0].Offset, sets[len(sets)-1].last()
	if start > last {
		t.Fatalf("the log of %s[0] starts at %d, after the messages served as v0 and v1 (%d to %d)", diffDLT, start, first, last)
	}
	payloads := make([][]byte, len(sets))
	for i, s := range sets {
		payloads[i] = appendLegacySet(t, nil, s)
	}
	c.ControlKey(int16(kmsg.Fetch), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.FetchRequest)
		if len(req.Topics) != 1 || len(req.Topics[0].Partitions) != 1 {
			return nil, nil, false
		}
		rt, rp := req.Topics[0], &req.Topics[0].Partitions[0]
		from := rp.FetchOffset
		if (rt.Topic != diffDLT && rt.TopicID != id) || rp.Partition != 0 || from > last {
			return nil, nil, false
		}
		if from < start || from < first {
			// kfake answers; a batch is never cut, and the one before the sets ends before them.
			rp.PartitionMaxBytes = 1
			return nil, nil, false
		}
		var msgs []byte
		for i, s := range sets {
			if s.last() >= from {
				msgs = append(msgs, payloads[i]...)
			}
		}
		served.Add(1)
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		t := kmsg.NewFetchResponseTopic()
		t.Topic, t.TopicID = rt.Topic, rt.TopicID
		p := kmsg.NewFetchResponseTopicPartition()
		p.Partition, p.HighWatermark, p.LastStableOffset, p.LogStartOffset, p.RecordBatches = 0, high, stable, start, msgs
		t.Partitions = append(t.Partitions, p)
		resp.Topics = append(resp.Topics, t)
		return resp, nil, true
	})
}

// appendLegacySet appends s as Kafka before 0.11 stores it: a message, or a wrapper message
// (offset: its last inner message's; v1 timestamp: the latest) whose value is the inner
// messages compressed, at offsets relative to the set's first (v1) or absolute (v0, and a v1
// zero wrapper).
func appendLegacySet(t testing.TB, b []byte, s legacySet) []byte {
	if s.codec == kgo.CodecNone {
		r := s.recs[0]
		return appendMessage(b, s.magic, 0, r.Offset, r.Timestamp.UnixMilli(), r.Key, r.Value)
	}
	var inner []byte
	var ts int64
	for i, r := range s.recs {
		ts = max(ts, r.Timestamp.UnixMilli())
		if s.gone[i] {
			continue
		}
		off := r.Offset
		if s.magic == 1 && !s.zeroWrapper {
			off -= s.recs[0].Offset
		}
		inner = appendMessage(inner, s.magic, 0, off, r.Timestamp.UnixMilli(), r.Key, r.Value)
	}
	codecs := map[kgo.CompressionCodecType]kgo.CompressionCodec{
		kgo.CodecGzip: kgo.GzipCompression(), kgo.CodecSnappy: kgo.SnappyCompression(), kgo.CodecLz4: kgo.Lz4Compression(),
	}
	comp, err := kgo.DefaultCompressor(codecs[s.codec])
	if err != nil {
		t.Fatal(err)
	}
	value, codec := comp.Compress(new(bytes.Buffer), inner)
	if codec != s.codec {
		t.Fatalf("compressed with codec %d, not %d", codec, s.codec)
	}
	if s.codec == kgo.CodecSnappy { // the Java client's framing: a header, then sized blocks
		framed := append([]byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1}, binary.BigEndian.AppendUint32(nil, uint32(len(value)))...)
		value = append(framed, value...)
	}
	wrapper := s.last()
	if s.zeroWrapper {
		wrapper = 0
	}
	return appendMessage(b, s.magic, int8(s.codec), wrapper, ts, nil, value)
}

// appendMessage appends a message of format v0 or v1: offset, size, CRC-32, magic, attributes,
// timestamp (v1 only), key and value.
func appendMessage(b []byte, magic, attrs int8, offset, ts int64, key, value []byte) []byte {
	m := []byte{byte(magic), byte(attrs)}
	if magic == 1 {
		m = binary.BigEndian.AppendUint64(m, uint64(ts))
	}
	for _, f := range [][]byte{key, value} {
		if f == nil {
			m = binary.BigEndian.AppendUint32(m, 0xffffffff)
		} else {
			m = binary.BigEndian.AppendUint32(m, uint32(len(f)))
			m = append(m, f...)
		}
	}
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(4+len(m)))
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(m))
	return append(b, m...)
}

// consumerRead reads [start, end) of partition p as franz-go's read_committed consumer does.
func consumerRead(t testing.TB, c *kfake.Cluster, p int32, start, end int64) []diffRecord {
	t.Helper()
	if start >= end {
		return nil
	}
	cl := replaytest.Client(t, c, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{diffDLT: {p: kgo.NewOffset().At(start)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(), kgo.DisableFetchSessions())
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
	c, served := writeHostileDLT(t, sc)
	e := newEngine(t, c)
	ctx := context.Background()
	if served != nil {
		defer func() {
			if served.fetches.Load() == 0 && !t.Failed() {
				t.Fatalf("scenario %+v: no fetch was answered with the v0 and v1 messages at offsets %d to %d", sc, served.first, served.last)
			}
		}()
	}
	ranges, err := e.topicRanges(ctx, diffDLT, nil)
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
		// A sample always holds a start among the messages older than v2, which are read
		// from there by franz-go's consumer.
		legacyStart := int64(-1)
		if served != nil && r.p == 0 && !every {
			legacyStart = max(r.start, served.first+rng.Int64N(served.last-served.first+1))
		}
		for off := r.start; off <= r.end; off++ {
			if !every && off != r.start && off != r.end && off != legacyStart && rng.IntN(8) > 0 {
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
	for _, s := range []uint64{100, 101, 102, 2, 3} { // 2 and 3 serve messages older than v2
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

// TestPlanMatchesRunOnHostileDLT: on hostile DLTs, a dry run's plan (with and without a limit)
// says exactly what the run bound to it then does: the same counts, the same records per
// target and partition, the same refusals, the same samples; and what it replays is exactly
// what franz-go's read_committed consumer reads of the dead letters.
func TestPlanMatchesRunOnHostileDLT(t *testing.T) {
	seeds := 10
	if testing.Short() {
		seeds = 3
	}
	for seed := range uint64(seeds) {
		sc := scenarioFrom(1000 + seed)
		sc.deadLetters = true
		t.Run(fmt.Sprintf("seed%d", 1000+seed), func(t *testing.T) {
			t.Parallel()
			c, _ := writeHostileDLT(t, sc)
			e := newEngine(t, c)
			ctx := context.Background()
			want := map[Coord]bool{} // what the consumer reads that names payments.failed
			ranges, err := e.topicRanges(ctx, diffDLT, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range ranges {
				for _, d := range consumerRead(t, c, r.p, r.start, r.end) {
					for _, h := range d.Headers {
						if h.Key == dlt.HeaderOriginalTopic && string(h.Value) == event.TopicPaymentsFailed {
							want[Coord{Topic: diffDLT, Partition: d.Partition, Offset: d.Offset}] = true
						}
					}
				}
			}
			replayed := map[Coord]bool{}
			for _, limit := range []int{3, 0, 0} { // a limited run, the rest, and a rerun
				req := Request{Topic: diffDLT, Reason: "hostile", Limit: limit}
				plan, err := e.Plan(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				req.Bound = plan.EndOffsets
				var results []Result
				req.OnResult = func(r Result) { results = append(results, r) }
				sum, err := e.Replay(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if sum.Replayed != int(plan.Replay) || sum.Skipped != int(plan.Skipped) || sum.Refused != int(plan.Refused) ||
					sum.Scanned != plan.Scanned || sum.Failed != 0 {
					t.Fatalf("limit %d: plan replay %d skip %d refuse %d scan %d; run %s scanned %d",
						limit, plan.Replay, plan.Skipped, plan.Refused, plan.Scanned, countsString(sum.Counts), sum.Scanned)
				}
				if got := planOf(results); !reflect.DeepEqual(got.Targets, plan.Targets) || !reflect.DeepEqual(got.Refusals, plan.Refusals) ||
					!reflect.DeepEqual(got.SkippedSamples, plan.SkippedSamples) {
					t.Fatalf("limit %d: the run did\n%+v\n%+v\n%v\nthe plan said\n%+v\n%+v\n%v", limit,
						got.Targets, got.Refusals, got.SkippedSamples, plan.Targets, plan.Refusals, plan.SkippedSamples)
				}
				for _, r := range results {
					if r.Action == ActionReplayed {
						if replayed[r.From] {
							t.Fatalf("%v replayed twice", r.From)
						}
						replayed[r.From] = true
					}
				}
			}
			if !maps.Equal(replayed, want) {
				t.Fatalf("replayed %d dead letters, the consumer reads %d that name payments.failed", len(replayed), len(want))
			}
		})
	}
}

// planOf is what a plan would say of a run's results.
func planOf(results []Result) *Plan {
	slices.SortFunc(results, func(a, b Result) int {
		return cmp.Or(cmp.Compare(a.From.Partition, b.From.Partition), cmp.Compare(a.From.Offset, b.From.Offset))
	})
	p := &Plan{Targets: []TargetPlan{}, Refusals: []RefusalPlan{}, SkippedSamples: []Coord{}}
	targets := map[string]*TargetPlan{}
	spans := map[string]map[int32]*PartitionSpan{}
	refusals := map[string]*RefusalPlan{}
	for _, r := range results {
		c := r.From
		switch r.Action {
		case ActionSkipped:
			if len(p.SkippedSamples) < maxSamples {
				p.SkippedSamples = append(p.SkippedSamples, c)
			}
		case ActionRefused:
			var target string
			if r.Target != nil {
				target = r.Target.Topic
			}
			rp := refusals[r.Code+"\x00"+target]
			if rp == nil {
				rp = &RefusalPlan{Code: r.Code, Target: target, Reason: r.Reason}
				refusals[r.Code+"\x00"+target] = rp
			}
			rp.Count++
			if len(rp.Samples) < maxSamples {
				rp.Samples = append(rp.Samples, c)
			}
		case ActionReplayed:
			tp := targets[r.Target.Topic]
			if tp == nil {
				tp = &TargetPlan{Topic: r.Target.Topic}
				targets[r.Target.Topic] = tp
				spans[r.Target.Topic] = map[int32]*PartitionSpan{}
			}
			tp.Count++
			if len(tp.Samples) < maxSamples {
				tp.Samples = append(tp.Samples, c)
			}
			sp := spans[tp.Topic][c.Partition]
			if sp == nil {
				sp = &PartitionSpan{Partition: c.Partition, First: c.Offset, Last: c.Offset}
				spans[tp.Topic][c.Partition] = sp
			}
			sp.Count++
			sp.First, sp.Last = min(sp.First, c.Offset), max(sp.Last, c.Offset)
		}
	}
	for t, tp := range targets {
		for _, sp := range spans[t] {
			tp.Partitions = append(tp.Partitions, *sp)
		}
		slices.SortFunc(tp.Partitions, func(a, b PartitionSpan) int { return cmp.Compare(a.Partition, b.Partition) })
		p.Targets = append(p.Targets, *tp)
	}
	slices.SortFunc(p.Targets, func(a, b TargetPlan) int { return cmp.Compare(a.Topic, b.Topic) })
	for _, rp := range refusals {
		p.Refusals = append(p.Refusals, *rp)
	}
	slices.SortFunc(p.Refusals, func(a, b RefusalPlan) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Code+a.Target, b.Code+b.Target))
	})
	return p
}
