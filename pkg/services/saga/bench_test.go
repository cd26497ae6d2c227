package saga_test

import (
	"context"
	"flag"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/come2us/opsctl/pkg/dbtest"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/kafkatest"
	"github.com/come2us/opsctl/pkg/pgtest"
	"github.com/come2us/opsctl/pkg/services/consumer"
	"github.com/come2us/opsctl/pkg/services/outbox"
	"github.com/come2us/opsctl/pkg/services/saga"
	"github.com/come2us/opsctl/pkg/services/store"
)

// BenchmarkSaga pushes b.N orders through the whole SAGA on PostgreSQL (2 or 16 concurrent
// shoppers, every third payment declined, every second order with a coupon) with the services'
// default tuning, and reports:
//
//   - orders/s: orders placed, paid or declined, and settled (declined ones compensated down to
//     the stock) per second of wall time;
//   - p50-ms / p99-ms: per declined order, from payments-failed being published (its record
//     timestamp) to the last of its lines' stock being restored in product-service.
//
// Run it with a fixed count so one system serves the whole run:
//
//	go test -run '^$' -bench Saga -benchtime 600x ./pkg/services/saga
//
// benchPool is each service's PostgreSQL pool size in BenchmarkSaga: the services' own default,
// as deployed. (The tests' pgtest.MaxConns of 3 keeps `go test ./...` within the server's
// connection limit; a benchmark runs alone, and three pools of 20 fit in PostgreSQL's default
// 100.) On a two-core machine the pool size cuts both ways: with other work running, 20 settled
// about 1.7 times as many orders a second as 3 did; on a quiet machine, 3 settled about a fifth
// more (fewer backends competing for the same two cores). -saga.pool compares them.
var benchPool = flag.Int("saga.pool", store.DefaultMaxConns, "BenchmarkSaga: each service's PostgreSQL pool size (pool_max_conns)")

func BenchmarkSaga(b *testing.B) {
	for _, shoppers := range []int{2, 16} {
		b.Run("shoppers="+strconv.Itoa(shoppers), func(b *testing.B) { benchSaga(b, shoppers) })
	}
}

func benchSaga(b *testing.B, shoppers int) {
	urls := dbtest.URLs(b, dbtest.Postgres)
	pooled := func() string { return pgtest.WithPool(urls(), *benchPool) }
	e := startSaga(b, pooled, func(cfg *saga.Config) {
		cfg.Consumer, cfg.Relay, cfg.DeliveryTimeout = consumer.Config{}, outbox.Config{}, 0
	})
	ctx := context.Background()
	odb, pdb := e.sys.Order.Runtime().DB.SQL, e.sys.Product.Runtime().DB.SQL

	b.ResetTimer()
	start := time.Now()
	e.shop(b.N, shoppers)
	var failedLines int64
	for _, co := range e.checkout {
		if co.Declined {
			failedLines += int64(len(co.Order.Lines))
		}
	}
	waitFor(b, "every order settled", func() bool {
		return count(b, odb, `SELECT COUNT(*) FROM orders WHERE status = 'PENDING'`) == 0 &&
			count(b, pdb, `SELECT COUNT(*) FROM reservations WHERE state = 'RELEASED'`) == failedLines
	})
	elapsed := time.Since(start)
	b.StopTimer()

	published := map[int64]time.Time{}
	for _, r := range kafkatest.Records(b, e.cluster, event.TopicPaymentsFailed) {
		id, _ := strconv.ParseInt(string(r.Key), 10, 64)
		published[id] = r.Timestamp
	}
	rows, err := pdb.QueryContext(ctx, `SELECT order_id, MAX(released_at) FROM reservations WHERE state = 'RELEASED' GROUP BY order_id`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var lat []time.Duration
	for rows.Next() {
		var id, us int64
		if err := rows.Scan(&id, &us); err != nil {
			b.Fatal(err)
		}
		if p, ok := published[id]; ok {
			lat = append(lat, time.UnixMicro(us).Sub(p))
		}
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if len(lat) == 0 {
		b.Fatal("no declined order was measured")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "orders/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.Logf("%d orders in %s; %d declined orders measured, payments-failed → stock restored p50 %.1fms p99 %.1fms",
		b.N, elapsed.Round(time.Millisecond), len(lat), pct(0.50), pct(0.99))
	if b.N >= 3 { // the probe run with b.N = 1 has no paid order to check against
		e.check()
	}
}
