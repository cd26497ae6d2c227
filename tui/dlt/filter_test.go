package dlt_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	pdlt "github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
	"github.com/come2us/opsctl/tui/dlt"
)

// TestFilterWhereAgrees: the list matches briefly decoded records in Go and a replay of
// "everything matching" selects with the filter's --where expression on fully decoded ones;
// both must pick the same records, for every kind of dead letter opsctl reads.
func TestFilterWhereAgrees(t *testing.T) {
	t.Parallel()
	at := replaytest.Base
	var recs []*kgo.Record
	for i := int64(1); i <= 12; i++ {
		code := "DB_LOCK_TIMEOUT"
		if i%3 == 0 {
			code = "STOCK_ROW_MISSING"
		}
		recs = append(recs, replaytest.Saga(int32(i%3), i, code, int(i%4), at.Add(time.Duration(i)*time.Second)))
	}
	recs = append(recs, replaytest.Spring(0, 42, at), replaytest.Connect(1, 7, at))
	recs = append(recs, replaytest.Hostile(0, at)...)
	for i, r := range recs {
		r.Offset = int64(i)
	}
	filters := []dlt.Filter{
		{},
		{Group: true, Source: "product-service", Code: "STOCK_ROW_MISSING"},
		{Text: "1"},
		{Text: "lock"},
		{Text: "ORDERS-FAILED"},
		{Text: `quote " and \ back`},
		{Group: true, Source: "product-service", Code: "DB_LOCK_TIMEOUT", Text: "1"},
		{Text: "=quantity > 2"},
		{Group: true, Source: "product-service", Code: "DB_LOCK_TIMEOUT", Text: "=quantity >= 2"},
		{Text: "evil"},
	}
	for _, f := range filters {
		t.Run(f.Describe(), func(t *testing.T) {
			t.Parallel()
			src := f.Where()
			var where *replay.Where
			if src != "" {
				w, err := replay.CompileWhere(src)
				if err != nil {
					t.Fatalf("where %q: %v", src, err)
				}
				where = w
			}
			sel, err := f.Selection()
			if err != nil {
				t.Fatal(err)
			}
			matched := 0
			for _, r := range recs {
				brief, full := pdlt.DecodeBrief(r), pdlt.Decode(r)
				list := f.Match(&brief)
				if sel.Where != nil {
					ok, _ := sel.Where.Match(&full)
					list = list && ok
				}
				replayed := true
				if where != nil {
					replayed, _ = where.Match(&full)
				}
				if list != replayed {
					t.Errorf("offset %d (key %q, %s/%s): list %v, replay %v (where %s)", r.Offset, r.Key, full.ErrorSource, full.ErrorCode, list, replayed, src)
				}
				if list {
					matched++
				}
			}
			t.Logf("%d of %d match", matched, len(recs))
		})
	}
	if _, err := (dlt.Filter{Text: "=quantity >"}).Selection(); err == nil {
		t.Fatal("a broken --where filter was accepted")
	}
}
