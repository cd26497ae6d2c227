package product_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/dbtest"
	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/kafka"
	"github.com/come2us/opsctl/pkg/kafkatest"
	"github.com/come2us/opsctl/pkg/services/consumer"
	"github.com/come2us/opsctl/pkg/services/product"
	"github.com/come2us/opsctl/pkg/services/product/productapi"
	"github.com/come2us/opsctl/pkg/services/service"
	"github.com/come2us/opsctl/pkg/services/store"
)

func openStore(t *testing.T, url string) *product.Store {
	t.Helper()
	db, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s, err := product.NewStore(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func stockOf(t *testing.T, s *product.Store, id int64) int64 {
	t.Helper()
	st, err := s.Stock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st[id]
}

func orderFailed(orderID, detailID, optionID int64, qty int) event.OrderFailed {
	return event.OrderFailed{Envelope: event.NewEnvelope(event.TypeOrderFailed, time.Now()),
		OrderID: orderID, OrderDetailID: detailID, OptionValueID: optionID, Quantity: qty, PaymentKey: "pk"}
}

func TestReserveAndRestore(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		ctx := context.Background()
		s := openStore(t, newURL())
		p, err := s.CreateProduct(ctx, "T-shirt", []product.NewOption{{Name: "S", Price: 1000, Stock: 10}, {Name: "M", Price: 1500, Stock: 2}})
		if err != nil {
			t.Fatal(err)
		}
		small, medium := p.Options[0].ID, p.Options[1].ID

		lines := []product.Line{{OrderDetailID: 101, OptionValueID: small, Quantity: 3}, {OrderDetailID: 102, OptionValueID: medium, Quantity: 1}}
		got, err := s.Reserve(ctx, 1, lines)
		if err != nil {
			t.Fatal(err)
		}
		if got[0].UnitPrice != 1000 || got[1].UnitPrice != 1500 {
			t.Fatalf("prices %+v", got)
		}
		// Repeating the same reservation takes nothing more.
		if _, err := s.Reserve(ctx, 1, lines); err != nil {
			t.Fatalf("repeat: %v", err)
		}
		if stockOf(t, s, small) != 7 || stockOf(t, s, medium) != 1 {
			t.Fatalf("stock after reserve: %d, %d", stockOf(t, s, small), stockOf(t, s, medium))
		}
		// Same line, other values: refused.
		if _, err := s.Reserve(ctx, 1, []product.Line{{OrderDetailID: 101, OptionValueID: small, Quantity: 4}}); !errors.Is(err, product.ErrReservationClash) {
			t.Fatalf("clash: %v", err)
		}
		// All or nothing: the second line is short, so the first is not taken either.
		_, err = s.Reserve(ctx, 2, []product.Line{{OrderDetailID: 201, OptionValueID: small, Quantity: 1}, {OrderDetailID: 202, OptionValueID: medium, Quantity: 5}})
		var oe *product.OptionError
		if !errors.As(err, &oe) || !errors.Is(err, product.ErrStockShort) || oe.Available != 1 || oe.Requested != 5 {
			t.Fatalf("short: %v", err)
		}
		if _, err := s.Reserve(ctx, 3, []product.Line{{OrderDetailID: 301, OptionValueID: 9999, Quantity: 1}}); !errors.Is(err, product.ErrNotFound) {
			t.Fatalf("unknown option: %v", err)
		}
		if stockOf(t, s, small) != 7 || stockOf(t, s, medium) != 1 {
			t.Fatal("a refused reservation changed stock")
		}

		// Restore: once, then duplicates do nothing.
		for i, want := range []product.Outcome{product.Restored, product.Duplicate, product.Duplicate} {
			out, err := s.Restore(ctx, orderFailed(1, 101, small, 3))
			if err != nil || out != want {
				t.Fatalf("restore #%d = %s, %v; want %s", i, out, err, want)
			}
		}
		if stockOf(t, s, small) != 10 {
			t.Fatalf("stock after restore = %d, want 10", stockOf(t, s, small))
		}
		// An event that disagrees with the reservation changes nothing.
		if _, err := s.Restore(ctx, orderFailed(1, 102, medium, 2)); !errors.Is(err, product.ErrRestoreMismatch) {
			t.Fatalf("mismatch: %v", err)
		}
		if stockOf(t, s, medium) != 1 {
			t.Fatal("a mismatching restore changed stock")
		}
		// A compensation for a line never reserved voids it: a late reservation is refused.
		if out, err := s.Restore(ctx, orderFailed(4, 401, small, 2)); err != nil || out != product.NoReservation {
			t.Fatalf("void: %s, %v", out, err)
		}
		if _, err := s.Reserve(ctx, 4, []product.Line{{OrderDetailID: 401, OptionValueID: small, Quantity: 2}}); !errors.Is(err, product.ErrLineCompensated) {
			t.Fatalf("late reservation: %v", err)
		}
		if stockOf(t, s, small) != 10 {
			t.Fatalf("stock = %d, want 10", stockOf(t, s, small))
		}
	})
}

type running struct {
	svc     *product.Service
	client  *productapi.Client
	cluster *kfake.Cluster
	prod    *kgo.Client
}

func start(t *testing.T, url string) *running {
	t.Helper()
	c := kafkatest.New(t)
	svc, err := product.New(context.Background(), product.Config{
		Service: service.Options{Name: product.Name, Addr: "127.0.0.1:0", DatabaseURL: url,
			Kafka: kafka.Config{Brokers: c.ListenAddrs()}, KafkaOpts: kafkatest.ClientOpts(c),
			DeliveryTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)},
		Consumer: consumer.Config{Backoff: 5 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the service ended with %v", err)
		}
	})
	prod, err := kgo.NewClient(kafkatest.ClientOpts(c)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return &running{svc: svc, client: productapi.NewClient(svc.URL(), nil), cluster: c, prod: prod}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func post(t *testing.T, url, ctype, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBadRequests: each is refused with a 4xx JSON error saying what was wrong, and nothing is
// written — stock and reservations stay as they were.
func TestBadRequests(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		r := start(t, newURL())
		ctx := context.Background()
		p, err := r.client.CreateProduct(ctx, "Mug", []product.NewOption{{Name: "White", Price: 500, Stock: 5}, {Name: "Black", Price: 500, Stock: 5}})
		if err != nil {
			t.Fatal(err)
		}
		white, black := p.Options[0].ID, p.Options[1].ID
		base := r.svc.URL()
		for _, tc := range []struct {
			name, path, body string
			status           int
			code, msg        string
		}{
			{"malformed JSON", "/reservations", `{"orderId": 1, "lines": [`, 400, "INVALID_REQUEST", "truncated"},
			{"negative quantity", "/reservations", fmt.Sprintf(`{"orderId":1,"lines":[{"orderDetailId":1,"optionValueId":%d,"quantity":1},{"orderDetailId":2,"optionValueId":%d,"quantity":-2}]}`, white, black), 400, "INVALID_REQUEST", "lines[1].quantity"},
			{"unknown option", "/reservations", fmt.Sprintf(`{"orderId":1,"lines":[{"orderDetailId":1,"optionValueId":%d,"quantity":1},{"orderDetailId":2,"optionValueId":424242,"quantity":1}]}`, white), 422, "OPTION_NOT_FOUND", "option 424242 does not exist"},
			{"stock short", "/reservations", fmt.Sprintf(`{"orderId":1,"lines":[{"orderDetailId":1,"optionValueId":%d,"quantity":1},{"orderDetailId":2,"optionValueId":%d,"quantity":6}]}`, white, black), 409, "STOCK_SHORT", "5 in stock, 6 requested"},
			{"duplicate line", "/reservations", fmt.Sprintf(`{"orderId":1,"lines":[{"orderDetailId":1,"optionValueId":%d,"quantity":1},{"orderDetailId":1,"optionValueId":%d,"quantity":1}]}`, white, black), 400, "INVALID_REQUEST", "appears twice"},
			{"unknown field", "/reservations", `{"orderId":1,"lines":[{"orderDetailId":1,"optionValueId":1,"qty":1}]}`, 400, "INVALID_REQUEST", `unknown field \"qty\"`},
			{"huge body", "/reservations", `{"orderId":1,"lines":[` + strings.Repeat(`{"orderDetailId":1,"optionValueId":1,"quantity":1},`, 5000) + `]}`, 413, "BODY_TOO_LARGE", "larger than"},
			{"negative stock", "/products", `{"name":"x","options":[{"name":"a","price":1,"stock":-1}]}`, 400, "INVALID_REQUEST", "options[0].stock"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, body := post(t, base+tc.path, "application/json", tc.body)
				if status != tc.status || !strings.Contains(body, `"code":"`+tc.code+`"`) || !strings.Contains(body, tc.msg) {
					t.Fatalf("= %d %s, want %d %s mentioning %q", status, body, tc.status, tc.code, tc.msg)
				}
			})
		}
		after, err := r.client.Product(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if after.Options[0].Stock != 5 || after.Options[1].Stock != 5 {
			t.Fatalf("stock changed by refused requests: %+v", after.Options)
		}
		if res, err := r.client.Reservations(ctx, 1); err != nil || len(res) != 0 {
			t.Fatalf("reservations written by refused requests: %+v, %v", res, err)
		}
		var ae *service.APIError
		if _, err := r.client.Product(ctx, 999); !errors.As(err, &ae) || ae.Status != 404 {
			t.Fatalf("missing product: %v", err)
		}
	})
}

// TestOrdersFailedConsumer: orders-failed restores stock once per line, however often delivered;
// an invalid event and one contradicting the reservation are dead-lettered.
func TestOrdersFailedConsumer(t *testing.T) {
	r := start(t, dbtest.URLs(t, dbtest.SQLite)())
	ctx := context.Background()
	p, err := r.client.CreateProduct(ctx, "Cap", []product.NewOption{{Name: "One size", Price: 100, Stock: 10}})
	if err != nil {
		t.Fatal(err)
	}
	opt := p.Options[0].ID
	if _, err := r.client.Reserve(ctx, product.ReserveRequest{OrderID: 7, Lines: []product.Line{
		{OrderDetailID: 70, OptionValueID: opt, Quantity: 2}, {OrderDetailID: 71, OptionValueID: opt, Quantity: 3}}}); err != nil {
		t.Fatal(err)
	}
	produce := func(v any) {
		t.Helper()
		b, _ := jsonMarshal(v)
		if err := r.prod.ProduceSync(ctx, &kgo.Record{Topic: event.TopicOrdersFailed, Key: event.Key(7), Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ev70, ev71 := orderFailed(7, 70, opt, 2), orderFailed(7, 71, opt, 3)
	for range 2 { // every event twice
		produce(ev70)
		produce(ev71)
	}
	produce(map[string]any{"eventType": "OrderFailed", "orderId": 7}) // invalid
	produce(orderFailed(7, 70, opt, 9))                               // contradicts the reservation (and the line is released)
	waitFor(t, "stock restored", func() bool { return stockOf(t, r.svc.Store(), opt) == 10 })
	waitFor(t, "the invalid event dead-lettered", func() bool {
		return testutil.ToFloat64(r.svc.Runtime().Metrics.DeadLettered.WithLabelValues(event.TopicOrdersFailed, event.GroupProductService, consumer.CodeSchema)) == 1
	})
	waitFor(t, "all six records consumed or dead-lettered", func() bool {
		return testutil.ToFloat64(r.svc.Runtime().Metrics.Consumed.WithLabelValues(event.TopicOrdersFailed, event.GroupProductService)) == 5
	})
	if n := testutil.ToFloat64(r.svc.Runtime().Metrics.Compensations.WithLabelValues("stock_restored")); n != 2 {
		t.Fatalf("stock_restored = %v, want 2 (once per line)", n)
	}
	if stockOf(t, r.svc.Store(), opt) != 10 {
		t.Fatalf("stock = %d, want 10", stockOf(t, r.svc.Store(), opt))
	}
	dl := readOne(t, r.cluster, event.DLT(event.TopicOrdersFailed))
	d := dlt.Decode(dl)
	if d.ErrorSource != product.Name || d.ErrorCode != consumer.CodeSchema || d.Group != event.GroupProductService {
		t.Fatalf("dead letter %+v", d)
	}
}

func readOne(t *testing.T, c *kfake.Cluster, topic string) *kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append(kafkatest.ClientOpts(c), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no record on %s", topic)
		}
		if recs := f.Records(); len(recs) > 0 {
			return recs[0]
		}
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
