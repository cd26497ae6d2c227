package dlt_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// TestTopicsOriginLag: product-service has read 1 of the 4 records on orders-failed, so
// orders-failed.DLT shows a lag of 3 on its original topic, in the table and in JSON; a DLT
// whose original topic no group reads shows "-" and null.
func TestTopicsOriginLag(t *testing.T) {
	h := newHarness(t)
	h.seed(t)
	var recs []*kgo.Record
	for range 4 {
		recs = append(recs, &kgo.Record{Topic: event.TopicOrdersFailed, Partition: 0, Value: []byte("{}")})
	}
	replaytest.Produce(t, h.c, recs...)
	o := kadm.Offsets{}
	o.AddOffset(event.TopicOrdersFailed, 0, 1, -1)
	if err := kadm.NewClient(replaytest.Client(t, h.c)).CommitAllOffsets(context.Background(), event.GroupProductService, o); err != nil {
		t.Fatal(err)
	}

	out := h.ok(t, "dlt", "topics")
	lines := strings.Split(out, "\n")
	if !strings.HasSuffix(lines[0], "ORIGIN LAG") {
		t.Fatalf("no ORIGIN LAG column:\n%s", out)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		switch {
		case len(f) == 0:
		case f[0] == "orders-failed.DLT" && f[len(f)-1] != "3":
			t.Errorf("orders-failed.DLT: %q, want lag 3", l)
		case f[0] == "payments-paid.DLT" && f[len(f)-1] != "-":
			t.Errorf("payments-paid.DLT: %q, want an unknown lag", l)
		}
	}

	var rows []struct {
		Topic     string `json:"topic"`
		OriginLag *struct {
			Topic  string `json:"topic"`
			Lag    int64  `json:"lag"`
			Groups []struct {
				Group string `json:"group"`
				Lag   int64  `json:"lag"`
			} `json:"groups"`
		} `json:"originLag"`
	}
	if err := json.Unmarshal([]byte(h.ok(t, "dlt", "topics", "-o", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		switch r.Topic {
		case "orders-failed.DLT":
			if l := r.OriginLag; l == nil || l.Topic != event.TopicOrdersFailed || l.Lag != 3 || len(l.Groups) != 1 || l.Groups[0].Group != event.GroupProductService {
				t.Errorf("orders-failed.DLT originLag %+v", l)
			}
		case "connect-orders-dlt":
			if r.OriginLag != nil {
				t.Errorf("connect-orders-dlt has no original topic here, yet originLag %+v", r.OriginLag)
			}
		}
	}
}
