package replay

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// fetchPool lends a replay's scan the memory its fetches decode into: the buffers compressed
// batches decompress into and the slices of records decoded from them. franz-go gives a
// batch's memory back once every record of the batch is recycled (kgo.Record.Recycle), so a
// replay of any size cycles through a few megabytes instead of allocating a buffer and a
// record slice per fetched batch. A recycled record must not be read again, nor anything
// that shared its memory: the scan recycles each record once walk has decided it, and a record
// to replay is built from copies (newItem).
//
// Only a replay's scan is pooled; Recycle does nothing to the records of other scans. A
// record that is never recycled is left to the garbage collector.
type fetchPool struct {
	mu     sync.Mutex
	bytes  [][]byte
	recs   [][]kgo.Record
	reused int // buffers and record slices lent again (tests read it)
}

// poolKeep is how many buffers and record slices the pool holds at most: enough for the
// batches of the fetches being decoded and read (a replay copies what it keeps of a record,
// so its records in flight hold none).
const poolKeep = 32

// minDecompressBuffer is the smallest new decompression buffer, so that a buffer made for a
// small batch can serve a larger one later.
const minDecompressBuffer = 64 << 10

func (p *fetchPool) GetDecompressBytes(compressed []byte, _ kgo.CompressionCodecType) []byte {
	want := 4 * len(compressed)
	if b, ok := take(p, &p.bytes, want); ok {
		return b[:0]
	}
	return make([]byte, 0, max(want, minDecompressBuffer))
}

func (p *fetchPool) PutDecompressBytes(b []byte) { keep(p, &p.bytes, b) }

func (p *fetchPool) GetRecords(n int) []kgo.Record {
	if rs, ok := take(p, &p.recs, n); ok {
		return rs[:n]
	}
	return make([]kgo.Record, n)
}

func (p *fetchPool) PutRecords(rs []kgo.Record) { keep(p, &p.recs, rs) }

// take removes from free, and returns, a slice with room for n elements.
func take[T any](p *fetchPool, free *[][]T, n int) ([]T, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(*free) - 1; i >= 0; i-- {
		if s := (*free)[i]; cap(s) >= n {
			last := len(*free) - 1
			(*free)[i] = (*free)[last]
			(*free)[last] = nil
			*free = (*free)[:last]
			p.reused++
			return s, true
		}
	}
	return nil, false
}

// keep adds s to free, unless the pool holds poolKeep already.
func keep[T any](p *fetchPool, free *[][]T, s []T) {
	p.mu.Lock()
	if len(*free) < poolKeep {
		*free = append(*free, s)
	}
	p.mu.Unlock()
}
