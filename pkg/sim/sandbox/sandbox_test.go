package sandbox_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
	"github.com/come2us/opsctl/pkg/pgtest"
	"github.com/come2us/opsctl/pkg/sim/sandbox"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run"),
		// argo-cd's packages start cache janitors in their package initialisation.
		goleak.IgnoreTopFunction("github.com/patrickmn/go-cache.(*janitor).Run"),
	)
}

func TestStartServeAndClose(t *testing.T) {
	gitopstest.Isolate(t)
	start := time.Now()
	sb, err := sandbox.Start(context.Background(), sandbox.Config{Rate: 8, DeclineRatio: 0.3, FaultWindows: true, ScrapeInterval: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = sb.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := sb.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("ready after %s", time.Since(start).Round(time.Millisecond))

	// Spring and Connect dead letters were seeded.
	cl, err := kgo.NewClient(kgo.SeedBrokers(sb.Brokers...), kgo.ConsumeTopics(sandbox.SpringDLT, sandbox.ConnectDLT),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	formats := map[dlt.Format]int{}
	for formats[dlt.FormatSpring] < 4 || formats[dlt.FormatConnect] < 3 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("foreign dead letters: %v", formats)
		}
		fs.EachRecord(func(r *kgo.Record) { formats[dlt.Decode(r).Format]++ })
	}
	cl.Close()

	// The mesh's and the services' series reach Prometheus.
	pc, _ := promapi.NewClient(promapi.Config{Address: sb.PrometheusURL})
	api := promv1.NewAPI(pc)
	for _, q := range []string{
		`sum(istio_requests_total{reporter="destination",destination_workload="order-service-v1",destination_workload_namespace="come2us-prod"})`,
		`sum(saga_http_requests_total{namespace="come2us-dev",service="payment-service",version="v1"})`,
	} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			v, _, _, err := api.Query(ctx, q, time.Now())
			if err == nil && len(v.(model.Vector)) == 1 && v.(model.Vector)[0].Value > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v %v", q, v, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	c := sb.Context()
	if !c.Simulated || len(c.Kafka.Brokers) != 3 || c.Prometheus.URL == "" || c.GitOps.Dir == "" || c.Kube.Kubeconfig == "" {
		t.Fatalf("context %+v", c)
	}
	// The sandbox's own business-error query reads the same window as the production one.
	window := regexp.MustCompile(`\[\d+[smh]\]`)
	prod := window.FindAllString(canary.GateDefaultQueries[canary.GateQueryBusinessErrors], -1)
	if got := window.FindAllString(c.Prometheus.Queries[canary.GateQueryBusinessErrors], -1); len(got) == 0 || !slices.Equal(got, prod) {
		t.Errorf("the sandbox's business-error query reads %v, the production query %v", got, prod)
	}

	addrs := append([]string{}, sb.Brokers...)
	for _, u := range []string{sb.PrometheusURL, sb.MeshURL, sb.KubeURL} {
		addrs = append(addrs, u[strings.Index(u, "//")+2:])
	}
	state := sb.StateDir
	if err := sb.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	closed = true
	for _, a := range addrs {
		if ln, err := net.Listen("tcp", a); err != nil {
			t.Errorf("%s is still taken after Close: %v", a, err)
		} else {
			ln.Close()
		}
	}
	if _, err := os.Stat(state); err == nil {
		t.Errorf("temporary state %s survived Close", state)
	}
}

// TestStateIsKept: with a state directory, a second start finds the first one's dead letters,
// catalogue and GitOps history, and seeds nothing again.
func TestStateIsKept(t *testing.T) {
	gitopstest.Isolate(t)
	state := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	first, err := sandbox.Start(ctx, sandbox.Config{StateDir: state, Rate: 8, DeclineRatio: 0.5, FaultWindows: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.WaitReady(ctx); err != nil {
		_ = first.Close()
		t.Fatal(err)
	}
	if first.SeededOptions == 0 || first.SeededDeadLetters == 0 {
		_ = first.Close()
		t.Fatalf("first start seeded %d options and %d foreign dead letters", first.SeededOptions, first.SeededDeadLetters)
	}
	before := dltCount(t, first.Brokers)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(state, "gitops.git", "HEAD")); err != nil {
		t.Fatalf("the GitOps repository is gone after Close: %v", err)
	}

	second, err := sandbox.Start(ctx, sandbox.Config{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if second.SeededOptions != 0 || second.SeededDeadLetters != 0 {
		t.Fatalf("second start seeded again: %d options, %d dead letters", second.SeededOptions, second.SeededDeadLetters)
	}
	if after := dltCount(t, second.Brokers); after < before || before == 0 {
		t.Fatalf("dead letters: %d before the restart, %d after", before, after)
	}
}

// dltCount counts the records of the SAGA dead-letter topics.
func dltCount(t *testing.T, brokers []string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), "payments-paid.DLT", "payments-failed.DLT", "orders-failed.DLT")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// TestPostgres runs the services on PostgreSQL: each in its own schema of the given database,
// created on first start.
func TestPostgres(t *testing.T) {
	base := pgtest.New(t)
	gitopstest.Isolate(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sb, err := sandbox.Start(ctx, sandbox.Config{Postgres: base, Rate: 8, DeclineRatio: 0.5, FaultWindows: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if err := sb.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	conn := pgtest.Connect(t, ctx, pgtest.Plain(base))
	defer conn.Close(context.Background())
	var orders int
	if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM opsctl_sandbox_order.orders`).Scan(&orders); err != nil {
		t.Fatalf("order-service's schema: %v", err)
	}
	if orders == 0 {
		t.Fatal("no orders in PostgreSQL although the sandbox is ready")
	}
}

func TestPostgresURLRejected(t *testing.T) {
	gitopstest.Isolate(t)
	_, err := sandbox.Start(context.Background(), sandbox.Config{Postgres: "mysql://localhost/shop"})
	if err == nil || !strings.Contains(err.Error(), "not a postgres:// URL") {
		t.Fatalf("err = %v", err)
	}
}
