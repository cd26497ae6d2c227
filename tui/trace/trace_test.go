package trace_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
	"github.com/come2us/opsctl/pkg/secret"
	"github.com/come2us/opsctl/pkg/services/order"
	"github.com/come2us/opsctl/pkg/services/order/orderapi"
	"github.com/come2us/opsctl/tui/app"
	tuidlt "github.com/come2us/opsctl/tui/dlt"
	"github.com/come2us/opsctl/tui/trace"
	"github.com/come2us/opsctl/tui/tuitest"
	"github.com/come2us/opsctl/tui/view"
)

func TestMain(m *testing.M) {
	lipgloss.SetColorProfile(termenv.Ascii)
	os.Exit(m.Run())
}

var now = replaytest.Base.Add(30 * time.Minute)

// seed writes order 7's life: its payment failed, two order lines were compensated, one
// compensation dead-lettered twice; the first dead letter was replayed. Order 8's records are
// noise the trace must leave out.
func seed(t *testing.T) (*kfake.Cluster, *replay.Engine) {
	t.Helper()
	c := replaytest.NewCluster(t)
	at := replaytest.Base
	ev := func(topic string, p int32, id int64, sec int, value string) *kgo.Record {
		return &kgo.Record{Topic: topic, Partition: p, Key: event.Key(id), Timestamp: at.Add(time.Duration(sec) * time.Second), Value: []byte(value)}
	}
	replaytest.Produce(t, c,
		ev(event.TopicPaymentsFailed, 1, 7, 1, `{"eventId":"e1","eventType":"PaymentFailed","occurredAt":"2026-11-25T03:00:01Z","orderId":7,"paymentKey":"tgen_7SECRET","amount":30000,"reasonCode":"CARD_DECLINED","reason":"card declined"}`),
		ev(event.TopicPaymentsFailed, 2, 8, 2, `{"eventId":"e2","eventType":"PaymentFailed","orderId":8,"amount":100}`),
		ev(event.TopicOrdersFailed, 1, 7, 3, `{"eventId":"e3","eventType":"OrderFailed","orderId":7,"orderDetailId":70,"optionValueId":3,"quantity":2}`),
		ev(event.TopicOrdersFailed, 1, 7, 4, `{"eventId":"e4","eventType":"OrderFailed","orderId":7,"orderDetailId":71,"optionValueId":4,"quantity":1}`),
		replaytest.Saga(1, 7, "STOCK_ROW_MISSING", 2, at.Add(5*time.Second)),
		replaytest.Saga(1, 7, "DB_LOCK_TIMEOUT", 1, at.Add(6*time.Second)),
		replaytest.Saga(2, 8, "DB_LOCK_TIMEOUT", 1, at.Add(7*time.Second)),
	)
	e, err := replay.New(replay.Config{NewClient: replaytest.NewClientFunc(c), Actor: "oncall@laptop", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	w, err := replay.CompileWhere("meta.partition == 1 && meta.offset == 0")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := e.Replay(context.Background(), replay.Request{Topic: event.DLT(event.TopicOrdersFailed), Selection: replay.Selection{Where: w}, Reason: "stock fixed"})
	if err != nil || sum.Replayed != 1 {
		t.Fatalf("seed replay: %+v, %v", sum, err)
	}
	return c, e
}

func orderService(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/orders/7" {
			http.Error(w, `{"code":"NOT_FOUND","message":"order does not exist"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(order.Order{ID: 7, UserID: "u1", Status: "FAILED", TotalAmount: 30000, Amount: 30000,
			FailureCode: "PAYMENT_DECLINED", FailureReason: "card declined", CreatedAt: replaytest.Base, UpdatedAt: replaytest.Base.Add(time.Minute)})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func root(ctx context.Context, e *replay.Engine, orderURL string) app.Model {
	opts := trace.Options{Ctx: ctx, Backend: e, Now: func() time.Time { return now },
		DLT: tuidlt.Options{Ctx: ctx, Backend: e, Secrets: secret.NewFields(), Now: func() time.Time { return now }}}
	if orderURL != "" {
		opts.Order = orderapi.NewClient(orderURL, nil).Order
	}
	return app.New(app.Options{
		Header: app.Header{Context: "prod", Kafka: "b-1.msk:9098"},
		Routes: []app.Route{{Name: "trace", Args: "ORDER_ID", Open: func(args []string) (view.View, error) {
			if len(args) != 1 {
				return nil, fmt.Errorf("usage: :trace ORDER_ID")
			}
			id, err := trace.ParseOrderID(args[0])
			if err != nil {
				return nil, err
			}
			return trace.New(opts, id), nil
		}}},
		Start: "trace 7",
	})
}

func TestTrace(t *testing.T) {
	t.Parallel()
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		_, e := seed(t)
		p := tuitest.Start(t, root(t.Context(), e, orderService(t)), wd, ht)
		p.WaitFor("order 7: FAILED", "2 dead letters, 1 replayed")
		screen := p.Screen()
		for _, no := range []string{"amount=100", "8@"} {
			if strings.Contains(screen, no) {
				t.Errorf("order 8 leaks into the trace (%q):\n%s", no, screen)
			}
		}
		tuitest.GoldenScreen(t, scrubRun(screen), wd, ht)
	})
}

// TestTraceWithoutOrderService: without services.order the timeline still works and says why
// the state is missing; enter opens a dead letter.
func TestTraceWithoutOrderService(t *testing.T) {
	t.Parallel()
	_, e := seed(t)
	p := tuitest.Start(t, root(t.Context(), e, ""), 120, 40)
	p.WaitFor("no services.order URL", "not replayed")
	p.Type("jjjj") // payments-failed, orders-failed ×2, the replayed dead letter, then the other
	p.Key(tea.KeyEnter)
	p.WaitFor("DB_LOCK_TIMEOUT", "VALUE (json")
	p.Quit()
}

func TestTraceBadOrderID(t *testing.T) {
	t.Parallel()
	_, e := seed(t)
	p := tuitest.Start(t, root(t.Context(), e, ""), 80, 24)
	p.WaitFor("trace 7")
	p.Type(":trace 12ab")
	p.Key(tea.KeyEnter)
	p.WaitFor(`"12ab" is not an order id`)
	p.Quit()
}

// scrubRun replaces what a replay makes up as it runs: its run id and the time it stamped the
// replayed copy with (every fixture is stamped 11-25 03:00).
func scrubRun(s string) string {
	id := regexp.MustCompile(`run [0-9a-f-]+…?`)
	stamp := regexp.MustCompile(`\b\d\d-\d\d \d\d:\d\d:\d\d\b`)
	s = id.ReplaceAllString(s, "run <id>")
	return stamp.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasPrefix(m, "11-25 03:00") {
			return m
		}
		return "<replay time> "
	})
}

// TestTraceEvent: enter on an ordinary event (order 7's PaymentFailed) says what it is; it is no
// dead letter with an unknown error and a missing original-topic header.
func TestTraceEvent(t *testing.T) {
	t.Parallel()
	_, e := seed(t)
	p := tuitest.Start(t, root(t.Context(), e, ""), 120, 40)
	p.WaitFor("no services.order URL", "not replayed")
	p.Key(tea.KeyEnter) // payments-failed, the first row
	p.WaitFor("PaymentFailed on payments-failed: an ordinary event, not a dead letter")
	screen := tuitest.Plain(p.Quit().View())
	for _, no := range []string{"UNKNOWN", "no original-topic header", "Replays"} {
		if strings.Contains(screen, no) {
			t.Errorf("the event's view says %q:\n%s", no, screen)
		}
	}
	if !strings.Contains(screen, "event 1/0") || !strings.Contains(screen, "CARD_DECLINED") {
		t.Errorf("the event's view:\n%s", screen)
	}
}
