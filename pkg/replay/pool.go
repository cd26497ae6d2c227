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
// that shared its memory: walk recycles each record once it has decided it, and a record to
// replay is built from copies (newItem).
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
	p.mu.Lock()
	for i := len(p.bytes) - 1; i >= 0; i-- {
		if b := p.bytes[i]; cap(b) >= want {
			p.bytes[i] = p.bytes[len(p.bytes)-1]
			p.bytes[len(p.bytes)-1] = nil
			p.bytes = p.bytes[:len(p.bytes)-1]
			p.reused++
			p.mu.Unlock()
			return b[:0]
		}
	}
	p.mu.Unlock()
	return make([]byte, 0, max(want, minDecompressBuffer))
}

func (p *fetchPool) PutDecompressBytes(b []byte) {
	p.mu.Lock()
	if len(p.bytes) < poolKeep {
		p.bytes = append(p.bytes, b)
	}
	p.mu.Unlock()
}

func (p *fetchPool) GetRecords(n int) []kgo.Record {
	p.mu.Lock()
	for i := len(p.recs) - 1; i >= 0; i-- {
		if rs := p.recs[i]; cap(rs) >= n {
			p.recs[i] = p.recs[len(p.recs)-1]
			p.recs[len(p.recs)-1] = nil
			p.recs = p.recs[:len(p.recs)-1]
			p.reused++
			p.mu.Unlock()
			return rs[:n]
		}
	}
	p.mu.Unlock()
	return make([]kgo.Record, n)
}

func (p *fetchPool) PutRecords(rs []kgo.Record) {
	p.mu.Lock()
	if len(p.recs) < poolKeep {
		p.recs = append(p.recs, rs)
	}
	p.mu.Unlock()
}
