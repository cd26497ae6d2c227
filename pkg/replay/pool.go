package replay

import (
	"bytes"
	"sync"

	"github.com/klauspost/compress/s2"
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
// Every read goes through a rawScan, which needs no pool; franz-go's consumer, pooled, reads
// what a rawScan leaves to it (batches older than format v2). Recycle does nothing to the
// records of other scans. A record that is never recycled is left to the garbage collector.
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

func (p *fetchPool) GetDecompressBytes(compressed []byte, codec kgo.CompressionCodecType) []byte {
	want := decompressedSize(compressed, codec)
	if b, ok := take(p, &p.bytes, want); ok {
		return b[:0]
	}
	return make([]byte, 0, max(want, minDecompressBuffer))
}

// decompressedSize is the room a batch needs to decompress into. A buffer too small is no
// error, but the codec then allocates one of its own, which the pool never sees: a snappy
// block (what franz-go and librdkafka send) says its decompressed length in its first bytes,
// so its buffer is made to measure; other codecs get four times the compressed size.
func decompressedSize(compressed []byte, codec kgo.CompressionCodecType) int {
	if codec == kgo.CodecSnappy && !bytes.HasPrefix(compressed, xerialMagic) {
		// The claim is checked again, against franz-go's limit, before decoding.
		if n, err := s2.DecodedLen(compressed); err == nil && n <= maxDecompressBuffer {
			return n
		}
	}
	return 4 * len(compressed)
}

// xerialMagic starts a snappy batch in the framing of the Java client (xerial), made of
// blocks decoded one after another; maxDecompressBuffer bounds what a batch's own claim may
// make the pool allocate (a batch is at most a partition's fetch size, 1 MiB by default).
var xerialMagic = []byte{130, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const maxDecompressBuffer = 64 << 20

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
