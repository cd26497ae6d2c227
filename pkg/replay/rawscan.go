package replay

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawScan reads ranges of a topic with fetch requests of its own and decodes the record
// batches itself, into one kgo.Record it hands to fn again and again. Every read of records
// goes through it (see openReplayScan).
//
// franz-go's consumer decodes every record into memory of its own: a header slice and a
// string per header key, about 600 bytes for a Spring dead letter, more than half of what a
// replay allocated. A replay's walk copies what it keeps of a record before the next one is
// read (see newItem), so the scan needs none of that: header keys are interned, the header
// slice and the decompression buffer are reused, and a replay allocates next to nothing per
// record it reads. In a process that starts for one replay, fresh memory is what costs: each
// page is faulted in and zeroed once.
//
// It reads like a read_committed consumer: records of aborted transactions and control
// records are skipped, by the same rules as franz-go's and the Java client's (the fetch
// response lists the aborted transactions; an abort marker ends one). It reads record batches
// of format v2, which every Kafka since 0.11 writes; a batch of an older format makes run
// return errLegacyBatch, and rangeScan reads the rest with franz-go's consumer.
//
// The fetches run one round ahead in their own goroutine: a round sends one fetch request to
// the leader of each partition still open, in parallel, and the run decodes one round while
// the next is on its way.
type rawScan struct {
	e     *Engine
	topic string
	// id, when not "", is the topic ID the scan must read: another means the topic was
	// deleted and created again since.
	id    string
	fetch int32
	// next is, per partition still open, the first offset fn has not been given nor skipped;
	// ends the end of its range. Only run touches them.
	next, ends map[int32]int64

	rounds chan rawRound
	stop   context.CancelFunc
	done   chan struct{}
	closed sync.Once

	rec  kgo.Record         // the record fn is given, each time
	hdrs []kgo.RecordHeader // its headers' memory
	keys map[string]string  // header keys seen, interned
	// lastKeys is the previous record's header keys, by position: the records of a DLT mostly
	// carry the same headers in the same order, and a comparison costs less than a lookup.
	lastKeys []string
	buf      []byte // what compressed batches decompress into
	dec      kgo.Decompressor
	// reused counts batches decompressed into buffer memory already there (tests read it).
	reused int
	// whole, when set, is offered each data batch that lies wholly within the range before its
	// records are decoded; when it returns true the batch is done with (counted from its
	// header, say) and fn sees none of its records.
	whole func(p int32, b *batch) bool
}

// rawRound is one round of fetches: each partition's answer, or the error that ended the scan.
type rawRound struct {
	parts []rawPart
	err   error
}

type rawPart struct {
	p       int32
	batches []byte
	aborted []kmsg.FetchResponseTopicPartitionAbortedTransaction
	// skipTo, when above 0, is where the partition's log starts now: retention deleted the
	// records before it.
	skipTo int64
}

// errLegacyBatch means a partition holds a record batch older than format v2.
var errLegacyBatch = errors.New("record batch of a format older than v2")

// maxInternedKeys bounds the header keys a scan interns: a DLT has a few dozen; a topic whose
// every record has keys of its own gets strings made for the rest.
const maxInternedKeys = 4096

// openRawScan starts fetching ranges of topic; the fetches stop when ctx ends or the scan is
// closed. The caller must close the scan, and run it with ctx or a context derived from it.
func (e *Engine) openRawScan(ctx context.Context, topic, id string, ranges []partRange, fetch int32) *rawScan {
	sc := &rawScan{e: e, topic: topic, id: id, fetch: fetch, next: map[int32]int64{}, ends: map[int32]int64{},
		rounds: make(chan rawRound, 1), done: make(chan struct{}), keys: map[string]string{}}
	sc.dec = kgo.DefaultDecompressor(rawBuffer{sc})
	offsets := map[int32]int64{}
	for _, r := range ranges {
		if r.start < r.end {
			sc.next[r.p], sc.ends[r.p] = r.start, r.end
			offsets[r.p] = r.start
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	sc.stop = cancel
	go sc.fetchRounds(ctx, offsets)
	return sc
}

// close stops the fetches; it may be called more than once.
func (sc *rawScan) close() {
	sc.closed.Do(func() {
		sc.stop()
		<-sc.done
		sc.e.scanBuffersReused.Add(int64(sc.reused))
	})
}

// remaining returns the ranges run has not finished.
func (sc *rawScan) remaining() []partRange {
	var out []partRange
	for p, off := range sc.next {
		out = append(out, partRange{p: p, start: off, end: sc.ends[p]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].p < out[j].p })
	return out
}

// fetchRounds fetches until every partition has reached its end, sending each round to run.
func (sc *rawScan) fetchRounds(ctx context.Context, offsets map[int32]int64) {
	defer close(sc.done)
	send := func(r rawRound) bool {
		select {
		case sc.rounds <- r:
			return true
		case <-ctx.Done():
			return false
		}
	}
	// A scan of a topic another scan looked up a moment ago starts from the leaders it found
	// (a replay reads the ledger twice, a moment apart); a leader that moved since answers
	// NOT_LEADER, and they are looked up again.
	lead := sc.e.recentLeaders(sc.topic, sc.id)
	backoff := 50 * time.Millisecond
	round := 0
	for len(offsets) > 0 {
		if lead == nil {
			l, err := sc.e.leaders(ctx, sc.topic)
			if err == nil && sc.id != "" && idString(l.id) != sc.id {
				err = fmt.Errorf("read %s: %w since the read began (topic id %s, now %s)", sc.topic, ErrTopicRecreated, sc.id, idString(l.id))
			}
			if err != nil {
				if ctx.Err() == nil {
					send(rawRound{err: err})
				}
				return
			}
			lead = l
			sc.e.rememberLeaders(sc.topic, l)
		}
		round++
		parts, retry, err := sc.fetchRound(ctx, lead, offsets, round)
		if err != nil {
			if ctx.Err() == nil {
				send(rawRound{err: err})
			}
			return
		}
		if retry {
			// A leader moved or is not ready: look the leaders up again, after a pause that
			// grows while it stays so.
			lead = nil
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, time.Second)
		} else {
			backoff = 50 * time.Millisecond
		}
		if len(parts) > 0 && !send(rawRound{parts: parts}) {
			return
		}
	}
}

// leaders is where a topic's partitions are led, and the topic's id (fetch v13+ names it so).
type leaders struct {
	id     [16]byte
	leader map[int32]int32
	// partial means the answer left partitions out (each with an error of its own).
	partial bool
}

// leadersFresh is how long the leaders a scan looked up serve the next scans of the topic.
const leadersFresh = 5 * time.Second

// seenLeaders is what a scan found of a topic's leaders, and when.
type seenLeaders struct {
	l  *leaders
	at time.Time
}

// recentLeaders returns the leaders of topic a scan looked up less than leadersFresh ago, nil
// if none did, or if the topic's ID is not id (when id is not "").
func (e *Engine) recentLeaders(topic, id string) *leaders {
	e.leadersMu.Lock()
	defer e.leadersMu.Unlock()
	seen, ok := e.leadersSeen[topic]
	if !ok || time.Since(seen.at) > leadersFresh || (id != "" && idString(seen.l.id) != id) {
		return nil
	}
	return seen.l
}

// rememberLeaders keeps the leaders of topic a scan looked up, for the next scans.
func (e *Engine) rememberLeaders(topic string, l *leaders) {
	e.leadersMu.Lock()
	defer e.leadersMu.Unlock()
	if e.leadersSeen == nil {
		e.leadersSeen = map[string]seenLeaders{}
	}
	e.leadersSeen[topic] = seenLeaders{l: l, at: time.Now()}
}

// highWatermarks returns the high watermark of each partition of topic: its partitions and
// leaders are looked up (and kept for the scan that follows, see recentLeaders), then each
// leader is asked for its partitions' ends, all at once. It costs two round trips where
// kadm's listing costs more (its metadata, then the offsets, then the scan's own lookup).
func (e *Engine) highWatermarks(ctx context.Context, topic string) (map[int32]int64, error) {
	ends, err := e.leadersHighWatermarks(ctx, topic)
	if err == nil {
		return ends, nil
	}
	// A leader that moved, or one not ready, or a lookup that failed: kadm's listing retries
	// such answers.
	listed, err := e.adm.ListEndOffsets(fresh(ctx), topic)
	if err == nil {
		err = topicErr(topic, listed)
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	ends = map[int32]int64{}
	for p, o := range listed[topic] {
		ends[p] = o.Offset
	}
	return ends, nil
}

// leadersHighWatermarks is highWatermarks, asking the leaders directly; any error means some
// partition's end is not known.
func (e *Engine) leadersHighWatermarks(ctx context.Context, topic string) (map[int32]int64, error) {
	lead, err := e.leaders(ctx, topic)
	if err != nil {
		return nil, err
	}
	e.rememberLeaders(topic, lead)
	byLeader := map[int32][]int32{}
	for p, l := range lead.leader {
		byLeader[l] = append(byLeader[l], p)
	}
	ends := map[int32]int64{}
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for l, ps := range byLeader {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := kmsg.NewPtrListOffsetsRequest()
			req.ReplicaID = -1
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = topic
			for _, p := range ps {
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = p, -1, -1 // -1: the end
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
			var err error
			if l < 0 {
				err = fmt.Errorf("partitions %v have no leader", ps)
			}
			var resp *kmsg.ListOffsetsResponse
			if err == nil {
				resp, err = req.RequestWith(ctx, e.cl.Broker(int(l)))
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				firstErr = cmp.Or(firstErr, err)
				return
			}
			for _, t := range resp.Topics {
				if t.Topic != topic {
					continue
				}
				for _, rp := range t.Partitions {
					if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
						firstErr = cmp.Or(firstErr, fmt.Errorf("partition %d: %w", rp.Partition, err))
						continue
					}
					ends[rp.Partition] = rp.Offset
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && (lead.partial || len(ends) != len(lead.leader)) {
		firstErr = errors.New("a leader left partitions out of its answer")
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return ends, nil
}

// leaders asks a broker where topic's partitions are led now. (kadm's Metadata may answer from
// the client's cache, which a moved leader makes stale: the scan's own fetches do not refresh it.)
func (e *Engine) leaders(ctx context.Context, topic string) (*leaders, error) {
	e.leaderLookups.Add(1)
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, e.cl)
	if err != nil {
		return nil, fmt.Errorf("read %s: look up partition leaders: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return nil, fmt.Errorf("read %s: look up partition leaders: %w", topic, err)
		}
		l := &leaders{id: t.TopicID, leader: map[int32]int32{}}
		for _, p := range t.Partitions {
			if kerr.ErrorForCode(p.ErrorCode) == nil {
				l.leader[p.Partition] = p.Leader
			} else {
				l.partial = true
			}
		}
		return l, nil
	}
	return nil, fmt.Errorf("read %s: look up partition leaders: %w", topic, ErrUnknownTopic)
}

// fetchRound sends one fetch to the leader of each partition in offsets, in parallel, and
// advances offsets past the complete batches each answer holds. retry reports that some
// partition's leader must be looked up again. A leader returns a batch larger than the fetch
// size only for the first partition of a request, so the order of partitions turns with each
// round.
func (sc *rawScan) fetchRound(ctx context.Context, lead *leaders, offsets map[int32]int64, round int) (parts []rawPart, retry bool, err error) {
	byLeader := map[int32][]int32{}
	for p := range offsets {
		l, ok := lead.leader[p]
		if !ok || l < 0 {
			retry = true
			continue
		}
		byLeader[l] = append(byLeader[l], p)
	}
	type answer struct {
		resp *kmsg.FetchResponse
		err  error
	}
	results := make(chan answer, len(byLeader)) // room for all: an early return leaves no sender blocked
	for l, ps := range byLeader {
		slices.Sort(ps)
		k := round % len(ps)
		ps = append(ps[k:], ps[:k]...)
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 500
		req.MinBytes = 1
		// The partitions' limits bound the answer (a first batch larger than its partition's
		// limit still comes whole). A request limit that binds first makes kfake, the
		// sandbox's broker, leave the aborted transactions of the partition it cut off out
		// of the answer, and their records would then read as committed.
		req.MaxBytes = math.MaxInt32
		req.IsolationLevel = 1 // read_committed
		req.SessionEpoch = -1  // no fetch session: every request is complete in itself
		t := kmsg.NewFetchRequestTopic()
		t.Topic, t.TopicID = sc.topic, lead.id
		for _, p := range ps {
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = p, offsets[p], sc.fetch
			fp.CurrentLeaderEpoch, fp.LogStartOffset = -1, -1
			t.Partitions = append(t.Partitions, fp)
		}
		req.Topics = append(req.Topics, t)
		b := sc.e.cl.Broker(int(l))
		go func() {
			resp, err := b.RetriableRequest(ctx, req)
			if err != nil {
				results <- answer{err: err}
				return
			}
			results <- answer{resp: resp.(*kmsg.FetchResponse)}
		}()
	}
	for range byLeader {
		a := <-results
		if a.err != nil {
			if ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			if kerr.IsRetriable(a.err) {
				retry = true
				continue
			}
			return nil, false, fmt.Errorf("read %s: %w", sc.topic, a.err)
		}
		if err := kerr.ErrorForCode(a.resp.ErrorCode); err != nil {
			if kerr.IsRetriable(err) {
				retry = true
				continue
			}
			return nil, false, fmt.Errorf("read %s: %w", sc.topic, err)
		}
		for _, t := range a.resp.Topics {
			for i := range t.Partitions {
				rp := &t.Partitions[i]
				off, open := offsets[rp.Partition]
				if !open {
					continue
				}
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					switch {
					case errors.Is(err, kerr.OffsetOutOfRange) && rp.LogStartOffset > off:
						// Retention (or delete-records) removed the records up to the log's
						// new start, past off: the scan goes on from there.
						parts = append(parts, rawPart{p: rp.Partition, skipTo: rp.LogStartOffset})
						if rp.LogStartOffset >= sc.ends[rp.Partition] {
							delete(offsets, rp.Partition)
						} else {
							offsets[rp.Partition] = rp.LogStartOffset
						}
					case kerr.IsRetriable(err):
						retry = true
					default:
						return nil, false, fmt.Errorf("read %s[%d] at offset %d: %w", sc.topic, rp.Partition, off, err)
					}
					continue
				}
				next, legacy := nextOffset(rp.RecordBatches, off)
				if next == off && !legacy {
					continue // nothing complete yet
				}
				parts = append(parts, rawPart{p: rp.Partition, batches: rp.RecordBatches, aborted: rp.AbortedTransactions})
				if next >= sc.ends[rp.Partition] {
					delete(offsets, rp.Partition)
				} else {
					offsets[rp.Partition] = next
				}
			}
		}
	}
	return parts, retry, nil
}

// nextOffset returns the offset after the last complete batch of batches, or from when there
// is none. legacy reports that batches reach a complete batch older than format v2, where it
// stops: a run must meet it (see errLegacyBatch) even when its offset says nothing new — a
// compressed v1 message set some clients wrote with the wrapper offset 0 holds the records
// after from all the same.
func nextOffset(batches []byte, from int64) (next int64, legacy bool) {
	next = from
	for len(batches) >= 12 {
		base := int64(binary.BigEndian.Uint64(batches))
		length := int64(int32(binary.BigEndian.Uint32(batches[8:])))
		if length < 0 || int64(len(batches)-12) < length {
			break
		}
		if length >= 49 && batches[16] == 2 {
			last := base + int64(int32(binary.BigEndian.Uint32(batches[23:])))
			next = max(next, last+1)
		} else {
			// An older format: its offsets are read when it is decoded (by franz-go's
			// consumer, see errLegacyBatch); stop here so the run meets it.
			return max(next, base+1), true
		}
		batches = batches[12+length:]
	}
	return next, false
}

// run calls fn for every data record of the scan's ranges, in offset order per partition,
// and afterPoll after each round. It reports false when fn stopped it. fn must not keep the
// record nor anything it shares: the next record reuses its memory.
func (sc *rawScan) run(ctx context.Context, fn func(*kgo.Record) (bool, error), afterPoll func() error) (bool, error) {
	stall := sc.e.cfg.StallTimeout
	timer := time.NewTimer(stall)
	defer timer.Stop()
	for len(sc.next) > 0 {
		var round rawRound
		select {
		case round = <-sc.rounds:
		case <-ctx.Done():
			return false, ctx.Err()
		case <-timer.C:
			return false, fmt.Errorf("read %s: no progress for %s before the end offsets %v (an open transaction that does not end, or an unreachable broker); nothing was changed",
				sc.topic, stall, sc.ends)
		}
		if round.err != nil {
			return false, round.err
		}
		for _, part := range round.parts {
			more, err := sc.deliver(part, fn)
			if err != nil || !more {
				return more, err
			}
		}
		if afterPoll != nil {
			if err := afterPoll(); err != nil {
				return false, err
			}
		}
		timer.Reset(stall)
	}
	return true, nil
}

// deliver decodes one partition's answer and calls fn for each record in range.
func (sc *rawScan) deliver(part rawPart, fn func(*kgo.Record) (bool, error)) (bool, error) {
	p := part.p
	next, open := sc.next[p]
	if !open {
		return true, nil
	}
	end := sc.ends[p]
	next = max(next, part.skipTo)
	var ab aborter
	if len(part.aborted) > 0 {
		ab = newAborter(part.aborted)
	}
	raw := part.batches
	for len(raw) >= 12 && next < end {
		b, rest, err := splitBatch(raw)
		if err != nil {
			return false, fmt.Errorf("read %s[%d] at offset %d: %w", sc.topic, p, next, err)
		}
		if b == nil {
			break // the answer's last batch, cut short: fetched again in full
		}
		raw = rest
		if b.magic != 2 {
			sc.next[p] = next
			return false, fmt.Errorf("read %s[%d] at offset %d: %w", sc.topic, p, next, errLegacyBatch)
		}
		// An abort marker ends its transaction for the batches after it, wherever it lies.
		if b.control() && b.transactional() && ab != nil && isAbortMarker(b.records) {
			ab.ended(b.producerID)
		}
		last := b.base + int64(b.lastDelta)
		if last < next {
			continue // before the range, or read already
		}
		switch {
		case b.control():
			// A transaction marker: no record for a reader.
		case b.transactional() && ab.aborts(b.producerID, b.base):
			// A transaction that was aborted: none of it was ever written, for a reader.
		case sc.whole != nil && b.base >= next && last < end && sc.whole(p, b):
			// Taken whole, from its header.
		default:
			more, err := sc.records(p, b, next, end, fn)
			if err != nil || !more {
				return more, err
			}
		}
		next = max(next, last+1)
		sc.next[p] = next
	}
	if next >= end {
		delete(sc.next, p)
	} else {
		sc.next[p] = next
	}
	return true, nil
}

// records calls fn for each record of b from offset from on, before end.
func (sc *rawScan) records(p int32, b *batch, from, end int64, fn func(*kgo.Record) (bool, error)) (bool, error) {
	data := b.records
	if codec := kgo.CompressionCodecType(b.attrs & 0x07); codec != kgo.CodecNone {
		had := sc.buf
		out, err := sc.dec.Decompress(data, codec)
		if err != nil {
			return false, fmt.Errorf("read %s[%d] at offset %d: decompress batch: %w", sc.topic, p, b.base, err)
		}
		if cap(had) > 0 && len(out) > 0 && &out[0] == &had[:1][0] {
			sc.reused++ // the batch went into the memory an earlier one used
		}
		if cap(out) > cap(sc.buf) {
			sc.buf = out[:0]
		}
		data = out
	}
	r := &sc.rec
	prev, last := int64(-1), b.base+int64(b.lastDelta)
	for n := int32(0); n < b.count && len(data) > 0; n++ {
		length, used := kbin.Varint(data)
		if used <= 0 || length < 0 || len(data)-used < int(length) {
			return false, fmt.Errorf("read %s[%d] in the batch at offset %d: record %d is corrupt", sc.topic, p, b.base, n)
		}
		rd := kbin.Reader{Src: data[used : used+int(length)]}
		data = data[used+int(length):]
		rd.Int8() // attributes: unused
		tsDelta := rd.Varlong()
		offDelta := rd.Varint()
		key := rd.VarintBytes()
		value := rd.VarintBytes()
		hs := sc.hdrs[:0]
		if nh := int(rd.VarintArrayLen()); nh > 0 {
			for i := range nh {
				k := rd.VarintBytes()
				v := rd.VarintBytes()
				var key string
				if i < len(sc.lastKeys) && string(k) == sc.lastKeys[i] {
					key = sc.lastKeys[i]
				} else {
					key = sc.intern(k)
					if i < len(sc.lastKeys) {
						sc.lastKeys[i] = key
					} else if i == len(sc.lastKeys) && i < maxInternedKeys {
						sc.lastKeys = append(sc.lastKeys, key)
					}
				}
				hs = append(hs, kgo.RecordHeader{Key: key, Value: v})
			}
		}
		sc.hdrs = hs
		if !rd.Ok() {
			return false, fmt.Errorf("read %s[%d] in the batch at offset %d: record %d is corrupt", sc.topic, p, b.base, n)
		}
		off := b.base + int64(offDelta)
		if off <= prev || off > last {
			// A broker validates offsets as it appends a batch: this one was damaged since.
			return false, fmt.Errorf("read %s[%d] in the batch at offset %d: record %d has offset %d, out of order; the batch is corrupt", sc.topic, p, b.base, n, off)
		}
		prev = off
		if off < from {
			continue
		}
		if off >= end {
			return true, nil
		}
		ts := b.firstTS + tsDelta
		if b.attrs&0x08 != 0 { // log append time: the broker's, for the whole batch
			ts = b.maxTS
		}
		*r = kgo.Record{Key: key, Value: value, Headers: hs, Topic: sc.topic, Partition: p, Offset: off,
			Timestamp: time.UnixMilli(ts), ProducerID: b.producerID, ProducerEpoch: b.producerEpoch, LeaderEpoch: b.leaderEpoch}
		more, err := fn(r)
		if err != nil || !more {
			return more, err
		}
	}
	return true, nil
}

// intern returns k as a string, the same string for the same key.
func (sc *rawScan) intern(k []byte) string {
	if s, ok := sc.keys[string(k)]; ok {
		return s
	}
	s := string(k)
	if len(sc.keys) < maxInternedKeys {
		sc.keys[s] = s
	}
	return s
}

// batch is a record batch of format v2, its header decoded.
type batch struct {
	base          int64
	leaderEpoch   int32
	magic         int8
	attrs         int16
	lastDelta     int32
	firstTS       int64
	maxTS         int64
	producerID    int64
	producerEpoch int16
	count         int32
	records       []byte
}

func (b *batch) control() bool       { return b.attrs&0x20 != 0 }
func (b *batch) transactional() bool { return b.attrs&0x10 != 0 }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// splitBatch decodes the batch raw starts with and returns it and what follows. A batch cut
// short (the end of a fetch answer) is nil, without error; a batch that cannot be one, or
// whose checksum is wrong, is an error.
func splitBatch(raw []byte) (*batch, []byte, error) {
	if len(raw) < 12 {
		return nil, raw, nil
	}
	length := int32(binary.BigEndian.Uint32(raw[8:]))
	if length < 0 {
		return nil, nil, fmt.Errorf("corrupt record batch: length %d", length)
	}
	if len(raw)-12 < int(length) {
		return nil, raw, nil
	}
	whole, rest := raw[:12+int(length)], raw[12+int(length):]
	b := &batch{base: int64(binary.BigEndian.Uint64(raw))}
	if length < 5 {
		return nil, nil, fmt.Errorf("corrupt record batch: length %d", length)
	}
	b.leaderEpoch = int32(binary.BigEndian.Uint32(whole[12:]))
	b.magic = int8(whole[16])
	if b.magic != 2 {
		return b, rest, nil
	}
	if length < 49 {
		return nil, nil, fmt.Errorf("corrupt record batch: length %d", length)
	}
	if crc := binary.BigEndian.Uint32(whole[17:]); crc32.Checksum(whole[21:], castagnoli) != crc {
		return nil, nil, errors.New("corrupt record batch: checksum mismatch")
	}
	b.attrs = int16(binary.BigEndian.Uint16(whole[21:]))
	b.lastDelta = int32(binary.BigEndian.Uint32(whole[23:]))
	b.firstTS = int64(binary.BigEndian.Uint64(whole[27:]))
	b.maxTS = int64(binary.BigEndian.Uint64(whole[35:]))
	b.producerID = int64(binary.BigEndian.Uint64(whole[43:]))
	b.producerEpoch = int16(binary.BigEndian.Uint16(whole[51:]))
	b.count = int32(binary.BigEndian.Uint32(whole[57:]))
	b.records = whole[61:]
	if b.lastDelta < 0 || b.count < 0 {
		return nil, nil, fmt.Errorf("corrupt record batch: %d records, last offset delta %d", b.count, b.lastDelta)
	}
	return b, rest, nil
}

// isAbortMarker reports whether a control batch's records are an abort marker: a record
// whose key is a version (int16) and a type (int16), 0 for abort, 1 for commit.
func isAbortMarker(records []byte) bool {
	length, used := kbin.Varint(records)
	if used <= 0 || length < 0 || len(records)-used < int(length) {
		return false
	}
	rd := kbin.Reader{Src: records[used : used+int(length)]}
	rd.Int8()
	rd.Varlong()
	rd.Varint()
	key := rd.VarintBytes()
	return rd.Ok() && len(key) >= 4 && binary.BigEndian.Uint16(key[2:]) == 0
}

// aborter tracks a fetch answer's aborted transactions, as franz-go's consumer does: per
// producer, the first offsets of its aborted transactions, ascending. A transactional batch of
// a producer is aborted from the first offset of its next aborted transaction on; the abort
// marker ends that transaction.
type aborter map[int64][]int64

func newAborter(txns []kmsg.FetchResponseTopicPartitionAbortedTransaction) aborter {
	a := aborter{}
	for _, t := range txns {
		a[t.ProducerID] = append(a[t.ProducerID], t.FirstOffset)
	}
	for pid := range a {
		slices.Sort(a[pid]) // a broker need not list them in order
	}
	return a
}

func (a aborter) aborts(pid, base int64) bool {
	firsts := a[pid]
	return len(firsts) > 0 && base >= firsts[0]
}

func (a aborter) ended(pid int64) {
	if firsts := a[pid]; len(firsts) > 1 {
		a[pid] = firsts[1:]
	} else {
		delete(a, pid)
	}
}

// rawBuffer lends the decompressor the scan's one buffer: the records of a batch are done
// with before the next batch is decompressed.
type rawBuffer struct{ sc *rawScan }

func (r rawBuffer) GetDecompressBytes(compressed []byte, codec kgo.CompressionCodecType) []byte {
	if want := decompressedSize(compressed, codec); cap(r.sc.buf) < want {
		r.sc.buf = make([]byte, 0, max(want, minDecompressBuffer))
	}
	return r.sc.buf[:0]
}

func (r rawBuffer) PutDecompressBytes([]byte) {}
