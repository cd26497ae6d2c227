package replay

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// committedCount is what a read_committed consumer sees of a topic: its records (aborted
// transactions and transaction markers are not records), those stamped since a moment, and
// the timestamps of its first and newest records.
type committedCount struct {
	records, since int64
	// first is the earliest timestamp among each partition's first record; newest the latest
	// timestamp of any record; both Unix milliseconds, -1 when there is no record.
	first, newest int64
}

// countCommitted counts the records of ranges of topic as a read_committed consumer would see
// them, and those stamped at or after since. Offsets cannot give that count: an aborted
// transaction's records and every transaction marker take offsets too (a DLT written by a
// transactional Spring listener holds many). A batch is counted from its header whenever it
// lies wholly in a range and its newest record is older than since; only other batches are
// decoded, so the count reads the topic but decompresses little of it.
func (e *Engine) countCommitted(ctx context.Context, topic string, ranges []partRange, since time.Time) (committedCount, error) {
	cc := committedCount{first: -1, newest: -1}
	sinceMs := since.UnixMilli()
	seen := map[int32]bool{} // partitions whose first record was seen
	firstOf := func(p int32, ts int64) {
		if !seen[p] {
			seen[p] = true
			if cc.first < 0 || ts < cc.first {
				cc.first = ts
			}
		}
	}
	sc := e.openReplayScan(ctx, topic, "", ranges, fetchBrowse)
	defer sc.close()
	if sc.raw != nil {
		sc.raw.whole = func(p int32, b *batch) bool {
			if b.maxTS >= sinceMs {
				return false // some record may be recent: decoded to count which
			}
			first := b.firstTS
			if b.attrs&0x08 != 0 { // log append time: the broker's, for every record
				first = b.maxTS
			}
			firstOf(p, first)
			cc.records += int64(b.count)
			cc.newest = max(cc.newest, b.maxTS)
			return true
		}
	}
	_, err := sc.run(ctx, func(r *kgo.Record) (bool, error) {
		ts := r.Timestamp.UnixMilli()
		firstOf(r.Partition, ts)
		cc.records++
		cc.newest = max(cc.newest, ts)
		if ts >= sinceMs {
			cc.since++
		}
		return true, nil
	}, nil)
	return cc, err
}
