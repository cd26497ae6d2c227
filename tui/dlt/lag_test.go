package dlt_test

import (
	"context"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
	"github.com/come2us/opsctl/tui/app"
	"github.com/come2us/opsctl/tui/dlt"
	"github.com/come2us/opsctl/tui/history"
	"github.com/come2us/opsctl/tui/tuitest"
	"github.com/come2us/opsctl/tui/view"
)

// originLag is the lag withOriginLag leaves on orders-failed, as the topics list draws it.
const originLag = "1,001"

// withOriginLag writes 1,001 events to orders-failed, the original topic of orders-failed.DLT,
// and has product-service commit none of them: its lag there is 1,001.
func withOriginLag(t *testing.T, c *kfake.Cluster) {
	t.Helper()
	recs := make([]*kgo.Record, 1001)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: event.TopicOrdersFailed, Partition: 0, Value: []byte("{}")}
	}
	replaytest.Produce(t, c, recs...)
	o := kadm.Offsets{}
	o.AddOffset(event.TopicOrdersFailed, 0, 0, -1)
	if err := kadm.NewClient(replaytest.Client(t, c)).CommitAllOffsets(context.Background(), event.GroupProductService, o); err != nil {
		t.Fatal(err)
	}
}

// TestDLTTopicsOriginLag: the topics list shows the consumer lag on each DLT's original topic,
// "-" where no group reads it, and shift+L sorts by it.
func TestDLTTopicsOriginLag(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	withOriginLag(t, w.c)
	p := tuitest.Start(t, w.root(t.Context(), false), 120, 40)
	p.WaitFor(ordersDLT, "ORIGIN LAG", originLag)
	p.Type("L")
	p.WaitFor("ORIGIN LAG↓")
	screen := p.Screen()
	lines := strings.Split(screen, "\n")
	if len(lines) < 4 || !strings.Contains(lines[3], ordersDLT) || !strings.HasSuffix(lines[3], originLag) {
		t.Errorf("sorted by lag, orders-failed.DLT (lag 1,001) is not the first row:\n%s", screen)
	}
	for _, l := range lines[4:8] {
		if !strings.HasSuffix(l, " -") {
			t.Errorf("a DLT whose original topic no group reads shows a lag: %q", l)
		}
	}
}

// TestDLTTopicsHistoryKey: h on a topic opens that DLT's replay history.
func TestDLTTopicsHistoryKey(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ho := history.Options{Ctx: t.Context(), Backend: w.e, Now: func() time.Time { return now }, Tick: -1}
	m := app.New(app.Options{
		Header: app.Header{Context: "prod"},
		Routes: []app.Route{{Name: "dlt", Open: func([]string) (view.View, error) {
			o := w.options(t.Context(), false)
			o.History = func(topic string) view.View { return history.New(ho, topic) }
			return dlt.New(o), nil
		}}},
		Start: "dlt",
	})
	p := tuitest.Start(t, m, 120, 40)
	p.WaitFor(ordersDLT, "h replay history")
	p.Type("jh")
	p.WaitFor("history › "+ordersDLT, "no replay of "+ordersDLT+" in the ledger yet")
	p.Key(tea.KeyEsc)
	p.WaitFor("ORIGIN LAG")
	p.Quit()
}

// TestDLTTopicsOriginLagRefused: the cluster refuses to describe the consumer groups; the
// topics stand, the lag column says it does not know, and the status line says why.
func TestDLTTopicsOriginLagRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	withOriginLag(t, w.c)
	w.c.ControlKey(int16(kmsg.DescribeGroups), func(req kmsg.Request) (kmsg.Response, error, bool) {
		w.c.KeepControl()
		resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for _, g := range req.(*kmsg.DescribeGroupsRequest).Groups {
			rg := kmsg.NewDescribeGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp, nil, true
	})
	p := tuitest.Start(t, w.root(t.Context(), false), 120, 40)
	p.WaitFor(ordersDLT, "30", "consumer lag of the original topics")
	screen := p.Screen()
	lines := strings.Split(screen, "\n")
	for _, l := range lines[3:8] {
		if !strings.HasSuffix(l, " -") {
			t.Errorf("a lag that could not be read is not shown as unknown: %q", l)
		}
	}
}
