package replay

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// tenantDeadLetter is Spring dead letter i on partition i%3, told apart by its tenant header.
func tenantDeadLetter(i int) *kgo.Record {
	r := replaytest.Spring(int32(i%3), int64(i), replaytest.Base)
	r.Headers = append(r.Headers, kgoHeader("tenant", strconv.Itoa(i)))
	return r
}

// replayedTenants returns the tenant of every record replayed to payments.failed, in the order
// read.
func replayedTenants(t *testing.T, got []*kgo.Record) []int {
	t.Helper()
	var out []int
	for _, r := range got {
		v, _ := header(r, "tenant")
		i, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("replayed record without a tenant: %v", r.Headers)
		}
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}

// TestReplaySkipsAbortedDeadLetters: a DLT written inside transactions (as a transactional
// Spring listener writes it) holds records of aborted transactions, which a read_committed
// consumer never sees, and transaction markers. A replay must replay exactly the committed
// records and those written outside any transaction, whatever the batches' order and
// compression.
func TestReplaySkipsAbortedDeadLetters(t *testing.T) {
	codecs := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "snappy": kgo.SnappyCompression(), "gzip": kgo.GzipCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			c := replaytest.NewCluster(t)
			ctx := context.Background()
			txn := replaytest.Client(t, c, kgo.TransactionalID("payments-listener"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.ProducerBatchCompression(codec))
			plain := replaytest.Client(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(codec))
			var want []int
			i := 0
			write := func(how string, n int) {
				recs := make([]*kgo.Record, 0, n)
				for range n {
					recs = append(recs, tenantDeadLetter(i))
					if how != "abort" {
						want = append(want, i)
					}
					i++
				}
				if how == "plain" {
					if err := plain.ProduceSync(ctx, recs...).FirstErr(); err != nil {
						t.Fatal(err)
					}
					return
				}
				if err := txn.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				if err := txn.ProduceSync(ctx, recs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
				end := kgo.TryCommit
				if how == "abort" {
					end = kgo.TryAbort
				}
				if err := txn.EndTransaction(ctx, end); err != nil {
					t.Fatal(err)
				}
			}
			for _, step := range []struct {
				how string
				n   int
			}{{"commit", 30}, {"abort", 30}, {"plain", 9}, {"abort", 12}, {"abort", 3}, {"commit", 60}, {"plain", 1}, {"abort", 45}, {"commit", 6}} {
				write(step.how, step.n)
			}
			e := newEngine(t, c, func(cfg *Config) { cfg.BatchSize = 25 })
			sum := mustReplay(t, e, Request{Topic: springDLT})
			if sum.Replayed != len(want) || int(sum.Scanned) != len(want) {
				t.Fatalf("replayed %d, scanned %d, want %d of each: %+v", sum.Replayed, sum.Scanned, len(want), sum)
			}
			if got := replayedTenants(t, replaytest.ReadCommitted(t, c, event.TopicPaymentsFailed)); !slices.Equal(got, want) {
				t.Fatalf("replayed tenants %v,\nwant %v", got, want)
			}
			if again := mustReplay(t, e, Request{Topic: springDLT}); again.Skipped != len(want) || again.Replayed != 0 {
				t.Fatalf("rerun %s", countsString(again.Counts))
			}
		})
	}
}

// TestReplayStartsAndEndsInsideBatches: a replay of a selection whose offsets begin and end
// inside compressed batches replays exactly the records between.
func TestReplayStartsAndEndsInsideBatches(t *testing.T) {
	c := replaytest.NewCluster(t)
	recs := make([]*kgo.Record, 0, 300)
	for i := range 300 {
		r := tenantDeadLetter(i)
		r.Partition = 0
		recs = append(recs, r)
	}
	replaytest.Produce(t, c, recs...) // one batch, or a few: far larger than the selection
	e := newEngine(t, c)
	sum := mustReplay(t, e, Request{Topic: springDLT, Selection: Selection{Partitions: []int32{0}, Offsets: OffsetRange{From: 117, To: 250, Set: true}}})
	if sum.Replayed != 251-117 {
		t.Fatalf("replayed %d, want %d: %+v", sum.Replayed, 251-117, sum)
	}
	got := replayedTenants(t, replaytest.ReadCommitted(t, c, event.TopicPaymentsFailed))
	if got[0] != 117 || got[len(got)-1] != 250 {
		t.Fatalf("replayed tenants %d to %d, want 117 to 250", got[0], got[len(got)-1])
	}
}

// TestReplayReadsLegacyBatches: a DLT written in the message format before v2 (Kafka before
// 0.11, or a topic kept on an old message.format.version) is read by franz-go's consumer from
// where the scan met the old batch, nothing skipped and nothing read twice. kfake stores only
// v2 batches, so the broker's first answer to the scan is replaced by one whose partition 1
// starts with a v1 message.
func TestReplayReadsLegacyBatches(t *testing.T) {
	c := replaytest.NewCluster(t)
	var want []int
	recs := make([]*kgo.Record, 0, 60)
	for i := range 60 {
		recs = append(recs, tenantDeadLetter(i))
		want = append(want, i)
	}
	replaytest.Produce(t, c, recs...)
	var replaced atomic.Bool
	c.ControlKey(int16(kmsg.Fetch), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.FetchRequest)
		if req.SessionEpoch != -1 || replaced.Swap(true) { // only the scan's first fetch
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		for _, rt := range req.Topics {
			t := kmsg.NewFetchResponseTopic()
			t.Topic, t.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				p := kmsg.NewFetchResponseTopicPartition()
				p.Partition, p.HighWatermark, p.LastStableOffset = rp.Partition, 20, 20
				if rp.Partition == 1 {
					// A v1 message at the offset asked for: offset, size, crc, magic 1, ...
					msg := binary.BigEndian.AppendUint64(nil, uint64(rp.FetchOffset))
					msg = binary.BigEndian.AppendUint32(msg, 22)
					msg = append(msg, make([]byte, 4)...)
					msg = append(msg, 1)
					msg = append(msg, make([]byte, 17)...)
					p.RecordBatches = msg
				}
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return resp, nil, true
	})
	e := newEngine(t, c, func(cfg *Config) { cfg.BatchSize = 7 })
	sum := mustReplay(t, e, Request{Topic: springDLT})
	if !replaced.Load() {
		t.Fatal("the scan's fetch was never answered with a v1 message")
	}
	if sum.Replayed != len(want) || int(sum.Scanned) != len(want) {
		t.Fatalf("replayed %d, scanned %d, want %d: %+v", sum.Replayed, sum.Scanned, len(want), sum)
	}
	if got := replayedTenants(t, replaytest.ReadCommitted(t, c, event.TopicPaymentsFailed)); !slices.Equal(got, want) {
		t.Fatalf("replayed tenants %v, want %v", got, want)
	}
}

// encodeBatch encodes a record batch of format v2 at base with n records of the given
// attributes (0x10 transactional, 0x20 control) and producer, uncompressed. Record i has key and
// tenant header base+i, or an abort marker's key in a control batch.
func encodeBatch(base int64, attrs int16, pid int64, n int) []byte {
	recs := make([]kmsg.Record, n)
	for i := range recs {
		recs[i] = kmsg.Record{OffsetDelta: int32(i), Key: []byte(strconv.Itoa(int(base) + i)), Value: []byte("v"),
			Headers: []kmsg.Header{{Key: "tenant", Value: []byte(strconv.Itoa(int(base) + i))}}}
		if attrs&0x20 != 0 {
			recs[i].Key = []byte{0, 0, 0, 0} // version 0, type 0: abort
		}
	}
	return encodeRecords(base, attrs, pid, recs)
}

// encodeRecords encodes recs as a record batch of format v2 at base, uncompressed.
func encodeRecords(base int64, attrs int16, pid int64, recs []kmsg.Record) []byte {
	var records []byte
	for _, r := range recs {
		r.Length = int32(len(r.AppendTo(nil)) - 1) // what follows the length, a one-byte 0 here
		records = r.AppendTo(records)
	}
	b := kmsg.RecordBatch{FirstOffset: base, Magic: 2, Attributes: attrs, LastOffsetDelta: int32(len(recs) - 1),
		ProducerID: pid, NumRecords: int32(len(recs)), Records: records}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoli))
	return raw
}

// TestDeliverHeaderKeys: header keys are interned and remembered by position, so records whose
// headers differ in number, order and name must each come out with exactly their own.
func TestDeliverHeaderKeys(t *testing.T) {
	sets := [][]string{{"a", "b", "c"}, {"a", "b", "c"}, {"b", "a"}, {}, {"a", "b", "c", "d"}, {"a", "x", "c"}, {"a"}, {"a", "b", "c"}}
	recs := make([]kmsg.Record, len(sets))
	for i, keys := range sets {
		recs[i].OffsetDelta = int32(i)
		for j, k := range keys {
			recs[i].Headers = append(recs[i].Headers, kmsg.Header{Key: k, Value: []byte(fmt.Sprintf("%d/%d", i, j))})
		}
	}
	sc := testRawScan(0, 100)
	var got [][]string
	_, err := sc.deliver(rawPart{p: 0, batches: encodeRecords(0, 0, -1, recs)}, func(r *kgo.Record) (bool, error) {
		var keys []string
		for j, h := range r.Headers {
			if string(h.Value) != fmt.Sprintf("%d/%d", r.Offset, j) {
				t.Errorf("record %d header %d value %q", r.Offset, j, h.Value)
			}
			keys = append(keys, h.Key)
		}
		got = append(got, keys)
		return true, nil
	})
	if err != nil || len(got) != len(sets) {
		t.Fatalf("delivered %d records: %v", len(got), err)
	}
	for i := range sets {
		if !slices.Equal(got[i], sets[i]) && len(got[i])+len(sets[i]) > 0 {
			t.Errorf("record %d: header keys %q, want %q", i, got[i], sets[i])
		}
	}
}

// testRawScan is a scan of partition 0 from start to end with nothing fetched: deliver is fed
// by hand.
func testRawScan(start, end int64) *rawScan {
	sc := &rawScan{topic: "t.DLT", next: map[int32]int64{0: start}, ends: map[int32]int64{0: end}, keys: map[string]string{}}
	sc.dec = kgo.DefaultDecompressor(rawBuffer{sc})
	return sc
}

// TestDeliverAbortedTransactions feeds the decoder batches of two producers, one of whose
// transactions was aborted, with their markers, as a fetch answer lists them.
func TestDeliverAbortedTransactions(t *testing.T) {
	var raw []byte
	raw = append(raw, encodeBatch(0, 0x10, 7, 3)...)     // producer 7, aborted below
	raw = append(raw, encodeBatch(3, 0x10, 8, 2)...)     // producer 8, committed
	raw = append(raw, encodeBatch(5, 0x30, 7, 1)...)     // abort marker of producer 7
	raw = append(raw, encodeBatch(6, 0x30, 8, 1)...)     // producer 8's marker (read as abort, but 8 has no aborted transaction)
	raw = append(raw, encodeBatch(7, 0x10, 7, 2)...)     // producer 7 again, committed
	raw = append(raw, encodeBatch(9, 0, -1, 2)...)       // outside transactions
	raw = append(raw, encodeBatch(11, 0, -1, 5)[:30]...) // cut short by the fetch size
	sc := testRawScan(1, 100)
	var got []int64
	more, err := sc.deliver(rawPart{p: 0, batches: raw, aborted: []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 7, FirstOffset: 0}}},
		func(r *kgo.Record) (bool, error) {
			if v, _ := header(r, "tenant"); v != strconv.FormatInt(r.Offset, 10) || string(r.Key) != v {
				t.Errorf("record at %d: key %q, tenant %q", r.Offset, r.Key, v)
			}
			got = append(got, r.Offset)
			return true, nil
		})
	if err != nil || !more {
		t.Fatalf("deliver: %v, %v", more, err)
	}
	if want := []int64{3, 4, 7, 8, 9, 10}; !slices.Equal(got, want) {
		t.Fatalf("delivered offsets %v, want %v", got, want)
	}
	if sc.next[0] != 11 {
		t.Fatalf("next offset %d, want 11 (the batch cut short is fetched again)", sc.next[0])
	}
}

// TestDeliverRefusesCorruptBatches: a batch whose checksum does not match, or whose length
// cannot be, is an error that names the partition and offset; nothing of it is delivered.
func TestDeliverRefusesCorruptBatches(t *testing.T) {
	good := encodeBatch(0, 0, -1, 3)
	flipped := slices.Clone(good)
	flipped[len(flipped)-2] ^= 0xff
	negative := slices.Clone(good)
	binary.BigEndian.PutUint32(negative[8:], 0xffffff00)
	short := slices.Clone(good)
	binary.BigEndian.PutUint32(short[8:], 20)
	for name, raw := range map[string][]byte{"checksum": flipped, "negative length": negative, "length too short": short} {
		sc := testRawScan(0, 10)
		n := 0
		_, err := sc.deliver(rawPart{p: 0, batches: raw}, func(*kgo.Record) (bool, error) { n++; return true, nil })
		if err == nil || n != 0 {
			t.Errorf("%s: delivered %d records, err %v", name, n, err)
		}
	}
}

// FuzzDeliver: whatever a broker answers, the decoder neither panics nor delivers a record
// outside the range, or out of order.
func FuzzDeliver(f *testing.F) {
	f.Add(encodeBatch(0, 0, -1, 3), uint8(0), uint8(10))
	f.Add(append(encodeBatch(0, 0x10, 7, 2), encodeBatch(2, 0x30, 7, 1)...), uint8(1), uint8(5))
	f.Add(encodeBatch(5, 0, -1, 4)[:40], uint8(0), uint8(20))
	f.Fuzz(func(t *testing.T, raw []byte, start, span uint8) {
		sc := testRawScan(int64(start), int64(start)+int64(span))
		last := int64(-1)
		_, _ = sc.deliver(rawPart{p: 0, batches: raw, aborted: []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 7, FirstOffset: 0}}},
			func(r *kgo.Record) (bool, error) {
				if r.Offset < int64(start) || r.Offset >= int64(start)+int64(span) || r.Offset <= last {
					t.Fatalf("record at offset %d, after %d, range [%d, %d)", r.Offset, last, start, int(start)+int(span))
				}
				last = r.Offset
				return true, nil
			})
	})
}

// FuzzDeliverRecords fuzzes what a batch holds: the records (compressed or not, as the
// attributes say) inside a batch whose length and checksum are right, so the fuzzer gets past
// the checksum to the record decoder and the codecs.
func FuzzDeliverRecords(f *testing.F) {
	seed := encodeBatch(0, 0, -1, 4)
	f.Add(seed[61:], int16(0), int32(4))
	f.Add(seed[61:], int16(2), int32(4)) // not snappy at all
	f.Add([]byte{}, int16(0x10), int32(1))
	f.Fuzz(func(t *testing.T, records []byte, attrs int16, count int32) {
		b := kmsg.RecordBatch{FirstOffset: 10, Magic: 2, Attributes: attrs, LastOffsetDelta: 3, ProducerID: 7, NumRecords: count, Records: records}
		raw := b.AppendTo(nil)
		binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
		binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoli))
		sc := testRawScan(11, 13)
		last := int64(-1)
		_, _ = sc.deliver(rawPart{p: 0, batches: raw}, func(r *kgo.Record) (bool, error) {
			if r.Offset < 11 || r.Offset >= 13 || r.Offset <= last {
				t.Fatalf("record at offset %d after %d, range [11, 13)", r.Offset, last)
			}
			last = r.Offset
			return true, nil
		})
	})
}

// TestReplayFollowsMovingLeaders: on a cluster of three brokers, each partition of the DLT led
// by its own, the scan fetches from every leader; when leadership moves in the middle of the
// replay, it finds the new leaders and goes on, every dead letter replayed exactly once.
func TestReplayFollowsMovingLeaders(t *testing.T) {
	c := replaytest.NewCluster(t, kfake.NumBrokers(3))
	const n = 3000
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		recs = append(recs, tenantDeadLetter(i))
	}
	for chunk := range slices.Chunk(recs, 100) { // many batches: many fetches
		replaytest.Produce(t, c, chunk...)
	}
	for p := range int32(3) {
		if err := c.MoveTopicPartition(springDLT, p, p); err != nil {
			t.Fatal(err)
		}
	}
	e := newEngine(t, c, func(cfg *Config) { cfg.BatchSize = 100 })
	e.replayFetch = 16 << 10 // many fetches, a few batches each
	var moves atomic.Int32
	e.beforeCommit = func(string) {
		if moves.Add(1)%5 == 0 { // every fifth batch, move every partition's leader on
			for p := range int32(3) {
				if err := c.MoveTopicPartition(springDLT, p, (c.LeaderFor(springDLT, p)+1)%3); err != nil {
					t.Error(err)
				}
			}
		}
	}
	sum := mustReplay(t, e, Request{Topic: springDLT})
	if sum.Replayed != n {
		t.Fatalf("replayed %d of %d: %+v", sum.Replayed, n, sum)
	}
	if lookups := e.leaderLookups.Load(); lookups < 2 {
		t.Fatalf("the scan looked the leaders up %d times: it never met a moved leader, the test proves nothing", lookups)
	}
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	if got := replayedTenants(t, replaytest.ReadCommitted(t, c, event.TopicPaymentsFailed)); !slices.Equal(got, want) {
		t.Fatalf("replayed %d records, not each dead letter once", len(got))
	}
	t.Logf("%d batches, leaders looked up %d times", moves.Load(), e.leaderLookups.Load())
}

// TestRawScanStopsWithItsContext: a scan's background fetches end when the context it was
// opened with ends, before anyone closes it, so a cancelled read leaves no fetches behind.
func TestRawScanStopsWithItsContext(t *testing.T) {
	c := replaytest.NewCluster(t)
	recs := make([]*kgo.Record, 0, 30)
	for i := range 30 {
		recs = append(recs, tenantDeadLetter(i))
	}
	replaytest.Produce(t, c, recs...)
	e := newEngine(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	// Ends past the records: the fetches would wait for more forever.
	sc := e.openRawScan(ctx, springDLT, "", []partRange{{p: 0, start: 0, end: 1000}}, fetchBulk)
	defer sc.close()
	cancel()
	<-sc.done // go test's -timeout fails the test if the fetches keep going
}

// TestRawScanSkipsDeletedRecords: records deleted while a scan is on its way (retention, or
// kafka-delete-records) are not there to read; the scan goes on from the log's new start.
func TestRawScanSkipsDeletedRecords(t *testing.T) {
	c := replaytest.NewCluster(t)
	recs := make([]*kgo.Record, 0, 90)
	for i := range 90 {
		recs = append(recs, tenantDeadLetter(i)) // 30 per partition
	}
	replaytest.Produce(t, c, recs...)
	e := newEngine(t, c)
	adm := kadm.NewClient(replaytest.Client(t, c))
	o := kadm.Offsets{}
	o.Add(kadm.Offset{Topic: springDLT, Partition: 1, At: 12})
	if _, err := adm.DeleteRecords(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	// The ranges as they were before the deletion.
	sc := e.openRawScan(context.Background(), springDLT, "", []partRange{{p: 0, start: 0, end: 30}, {p: 1, start: 0, end: 30}, {p: 2, start: 5, end: 30}}, fetchBulk)
	defer sc.close()
	got := map[int32][]int64{}
	if _, err := sc.run(context.Background(), func(r *kgo.Record) (bool, error) {
		got[r.Partition] = append(got[r.Partition], r.Offset)
		return true, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	for p, from := range map[int32]int64{0: 0, 1: 12, 2: 5} {
		if len(got[p]) != int(30-from) || got[p][0] != from || got[p][len(got[p])-1] != 29 {
			t.Errorf("partition %d: read offsets %v, want %d to 29", p, got[p], from)
		}
	}
}

// TestDecompressedSize: a snappy block's buffer is made to its stated size; anything else, or a
// claim past the bound, gets four times the compressed size.
func TestDecompressedSize(t *testing.T) {
	plain := bytes.Repeat([]byte(`{"orderId":1,"reasonCode":"CARD_DECLINED"}`), 500)
	block := s2.EncodeSnappy(nil, plain)
	huge := binary.AppendUvarint(nil, 1<<40)
	for _, tc := range []struct {
		name  string
		in    []byte
		codec kgo.CompressionCodecType
		want  int
	}{
		{"snappy block", block, kgo.CodecSnappy, len(plain)},
		{"xerial framing", append(slices.Clone(xerialMagic), block...), kgo.CodecSnappy, 4 * (len(block) + 8)},
		{"not snappy", []byte{0xff, 0xff, 0xff}, kgo.CodecSnappy, 12},
		{"a claim past the bound", huge, kgo.CodecSnappy, 4 * len(huge)},
		{"lz4", block, kgo.CodecLz4, 4 * len(block)},
	} {
		if got := decompressedSize(tc.in, tc.codec); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestNextOffsetStopsAtLegacyMessages: a fetch answer is handed to the run when it reaches a
// message older than format v2, even one whose offset says nothing new (a compressed v1 set
// written with the wrapper offset 0), or the scan would fetch the same answer until it stalls.
func TestNextOffsetStopsAtLegacyMessages(t *testing.T) {
	v1 := func(off int64) []byte { return appendMessage(nil, 1, 0, off, 0, nil, []byte("v")) }
	cases := []struct {
		name       string
		batches    []byte
		from, want int64
		legacy     bool
	}{
		{"v2 batches", append(encodeBatch(10, 0, -1, 3), encodeBatch(13, 0, -1, 2)...), 10, 15, false},
		{"v2 batch cut short", append(encodeBatch(10, 0, -1, 3), encodeBatch(13, 0, -1, 2)[:30]...), 10, 13, false},
		{"nothing complete", encodeBatch(10, 0, -1, 3)[:40], 10, 10, false},
		{"v1 after v2", append(encodeBatch(10, 0, -1, 3), v1(13)...), 10, 14, true},
		{"v1 first", append(v1(12), encodeBatch(13, 0, -1, 2)...), 12, 13, true},
		{"v1 wrapper at offset 0", append(appendMessage(nil, 1, int8(kgo.CodecGzip), 0, 0, nil, []byte("x")), v1(13)...), 12, 12, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next, legacy := nextOffset(tc.batches, tc.from)
			if next != tc.want || legacy != tc.legacy {
				t.Fatalf("nextOffset = %d, %v; want %d, %v", next, legacy, tc.want, tc.legacy)
			}
		})
	}
}
