package replay

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// slabs is the memory a run builds its records to replay in: items, their kgo.Records, header
// slices and bytes are carved from slabs, a few allocations for hundreds of records. A slab the
// scan has moved on from is retired with the sequence number of the last item that may use it;
// once every item up to that number has committed and been reported (release), the slab goes
// to a free list and the scan carves from it again. A replay of any size therefore cycles
// through the memory of the batches in flight, instead of allocating fresh memory for every
// record, which the collector must then reclaim and the kernel fault in.
//
// The scan goroutine carves (newItem) and retires; the committer releases. Items are settled
// in the order they were made (batches commit and are reported in order, and a batch's items
// are in record order), so a slab retired with sequence s is free once item s is settled.
type slabs struct {
	// The slabs being carved: the scan goroutine's alone. items and recs are carved together,
	// next is the first not handed out.
	items []item
	recs  []kgo.Record
	next  int
	bytes []byte
	hdrs  []kgo.RecordHeader
	// carvedHeaders says whether the last carveHeaders came from the slab.
	carvedHeaders bool
	// seq is the sequence number of the item being built, which the slabs retired now may
	// hold.
	seq uint32

	mu      sync.Mutex
	retired []retiredSlab // oldest first
	free    struct {
		items [][]item
		recs  [][]kgo.Record
		bytes [][]byte
		hdrs  [][]kgo.RecordHeader
	}
	reused int // slabs carved from again (tests read it)
}

// retiredSlab is a slab the scan has moved on from; one of its slices is set.
type retiredSlab struct {
	last  uint32 // the last item that may hold memory of it
	items []item
	recs  []kgo.Record
	bytes []byte
	hdrs  []kgo.RecordHeader
}

// itemSlab is how many items (and kgo.Records) a slab holds; bytes and headers are carved from
// slabs of byteSlab bytes and headerSlab headers. Larger pieces (more than an eighth of a slab)
// are allocated on their own.
const (
	itemSlab   = 512
	byteSlab   = 64 << 10
	headerSlab = 4096
)

// begin starts the item with sequence number seq: what is retired from now on may hold it.
func (s *slabs) begin(seq uint32) { s.seq = seq }

// item returns a zero item and a zero kgo.Record for it.
func (s *slabs) item() (*item, *kgo.Record) {
	if s.next == len(s.items) {
		s.takeItems()
	}
	it, rec := &s.items[s.next], &s.recs[s.next]
	s.next++
	return it, rec
}

// carveBytes returns an empty slice with capacity n.
func (s *slabs) carveBytes(n int) []byte {
	if n > byteSlab/8 {
		return make([]byte, 0, n)
	}
	if cap(s.bytes)-len(s.bytes) < n {
		s.bytes = takeSlab(s, s.bytes, retiredSlab{bytes: s.bytes}, &s.free.bytes, byteSlab)
	}
	b := s.bytes[len(s.bytes) : len(s.bytes) : len(s.bytes)+n]
	s.bytes = s.bytes[:len(s.bytes)+n]
	return b
}

// carveHeaders returns an empty header slice with capacity n.
func (s *slabs) carveHeaders(n int) []kgo.RecordHeader {
	s.carvedHeaders = n <= headerSlab/8
	if !s.carvedHeaders {
		return make([]kgo.RecordHeader, 0, n)
	}
	if cap(s.hdrs)-len(s.hdrs) < n {
		s.hdrs = takeSlab(s, s.hdrs, retiredSlab{hdrs: s.hdrs}, &s.free.hdrs, headerSlab)
	}
	h := s.hdrs[len(s.hdrs) : len(s.hdrs) : len(s.hdrs)+n]
	s.hdrs = s.hdrs[:len(s.hdrs)+n]
	return h
}

// uncarveHeaders gives the last n headers of the slice carveHeaders returned last back to the
// slab; the caller must not use them.
func (s *slabs) uncarveHeaders(n int) {
	if s.carvedHeaders {
		s.hdrs = s.hdrs[:len(s.hdrs)-n]
	}
}

// takeItems retires the item slabs in use and carves from fresh or free ones.
func (s *slabs) takeItems() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.items != nil {
		s.retired = append(s.retired, retiredSlab{last: s.seq, items: s.items, recs: s.recs})
	}
	s.next = 0
	if items, ok := pop(&s.free.items); ok {
		recs, _ := pop(&s.free.recs)
		s.items, s.recs = items, recs
		s.reused++
		return
	}
	s.items, s.recs = make([]item, itemSlab), make([]kgo.Record, itemSlab)
}

// takeSlab retires cur, the slab in use (described by r), unless there is none yet, and
// returns an empty slab from free, or a new one with room for n.
func takeSlab[T any](s *slabs, cur []T, r retiredSlab, free *[][]T, n int) []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur != nil {
		r.last = s.seq
		s.retired = append(s.retired, r)
	}
	if b, ok := pop(free); ok {
		s.reused++
		return b[:0]
	}
	return make([]T, 0, n)
}

// release frees the slabs retired up to item seq, now that every item up to it is settled:
// nothing reads them any more (the producer is done with a committed batch's records, and its
// results are reported).
func (s *slabs) release(seq uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for ; n < len(s.retired) && s.retired[n].last <= seq; n++ {
		rs := s.retired[n]
		switch {
		case rs.items != nil:
			clear(rs.items) // newItem fills in only what differs from zero
			clear(rs.recs)
			s.free.items = append(s.free.items, rs.items)
			s.free.recs = append(s.free.recs, rs.recs)
		case rs.bytes != nil:
			s.free.bytes = append(s.free.bytes, rs.bytes)
		case rs.hdrs != nil:
			clear(rs.hdrs[:cap(rs.hdrs)]) // no stale pointers kept alive
			s.free.hdrs = append(s.free.hdrs, rs.hdrs)
		}
	}
	s.retired = append(s.retired[:0], s.retired[n:]...)
}

// reusedCount returns how many slabs were carved from again.
func (s *slabs) reusedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reused
}

// pop removes and returns the last slice of free.
func pop[T any](free *[][]T) ([]T, bool) {
	n := len(*free)
	if n == 0 {
		return nil, false
	}
	s := (*free)[n-1]
	(*free)[n-1] = nil
	*free = (*free)[:n-1]
	return s, true
}
