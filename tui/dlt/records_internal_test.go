package dlt

import (
	"slices"
	"strconv"
	"testing"

	"github.com/come2us/opsctl/pkg/replay"
)

// TestRanksTie: a value held twice (past the intern table's bound) shares its rank, so its
// records tie and follow partition and offset.
func TestRanksTie(t *testing.T) {
	t.Parallel()
	got := ranks(values("b", "a", "b", "c", "a"))
	if want := []int32{2, 0, 2, 4, 0}; !slices.Equal(got, want) {
		t.Errorf("ranks = %v, want %v", got, want)
	}
}

// TestSpanIndexByString: an unfiltered index sorted by a string column lists by the value, ties
// (and values the scan did not see, first) by partition and offset; reversed, all of it runs
// backwards; Pos finds each coordinate where At put it.
func TestSpanIndexByString(t *testing.T) {
	t.Parallel()
	x := spanIndex([]replay.Span{{Partition: 0, Start: 10, End: 13}, {Partition: 1, Start: 0, End: 2}})
	x.col, x.names = 4, values("PG_TIMEOUT", "DB_LOCK", "PG_TIMEOUT")
	// 0/10 PG, 0/11 DB, 0/12 (not seen), 1/0 PG (a second id for the same value), 1/1 DB
	x.val = []int32{0, 1, -1, 2, 1}
	x.byStr = true
	x.arrange()
	want := []replay.Coord{{Partition: 0, Offset: 12}, {Partition: 0, Offset: 11}, {Partition: 1, Offset: 1}, {Partition: 0, Offset: 10}, {Partition: 1, Offset: 0}}
	check := func(want []replay.Coord) {
		t.Helper()
		var got []replay.Coord
		for i := range x.Len() {
			got = append(got, x.At(i))
			if p := x.Pos(x.At(i)); p != i {
				t.Errorf("Pos(%v) = %d, want %d", x.At(i), p, i)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("order = %v, want %v", got, want)
		}
	}
	check(want)
	x.desc = true
	x.arrange()
	slices.Reverse(want)
	check(want)
	if x.Pos(replay.Coord{Partition: 0, Offset: 13}) != -1 {
		t.Error("a coordinate past the spans has a position")
	}
}

func values(vs ...string) strtab {
	var t strtab
	for _, v := range vs {
		t.add(v)
	}
	return t
}

// BenchmarkArrangeByString lays out a million records sorted by a column of four values (a
// reverse key press once the values are read):
//
//	go test ./tui/dlt -run '^$' -bench BenchmarkArrangeByString
func BenchmarkArrangeByString(b *testing.B) {
	const n = 1_000_000
	x := spanIndex([]replay.Span{{Partition: 0, Start: 0, End: n / 2}, {Partition: 1, Start: 0, End: n / 2}})
	x.col, x.names, x.byStr = 4, values("DB_LOCK_TIMEOUT", "STOCK_ROW_MISSING", "COUPON_NOT_FOUND", "PG_TIMEOUT"), true
	x.val = make([]int32, n)
	for i := range x.val {
		x.val[i] = int32(i % 4)
	}
	for b.Loop() {
		x.desc = !x.desc
		x.arrange()
	}
}

// BenchmarkArrangeByKey is the same with a value a record (keys), once the ranks are known.
func BenchmarkArrangeByKey(b *testing.B) {
	const n = 1_000_000
	x := spanIndex([]replay.Span{{Partition: 0, Start: 0, End: n / 2}, {Partition: 1, Start: 0, End: n / 2}})
	x.col, x.byStr = 2, true
	x.val = make([]int32, n)
	for i := range x.val {
		x.val[i] = x.names.add(strconv.Itoa(n - i))
	}
	x.arrange()
	for b.Loop() {
		x.desc = !x.desc
		x.arrange()
	}
}
