package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/come2us/opsctl/pkg/cmd/root"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
	"github.com/come2us/opsctl/pkg/iostreams"
	"github.com/come2us/opsctl/pkg/services/product"
	"github.com/come2us/opsctl/pkg/services/product/productapi"
	"github.com/come2us/opsctl/pkg/sim/sandbox"
	"github.com/come2us/opsctl/pkg/sim/traffic"
)

// cli runs opsctl commands against the sandbox context of one config file, as a user in another
// shell would.
type cli struct {
	t       *testing.T
	cfgPath string
}

func (c cli) run(args ...string) (string, error) {
	c.t.Helper()
	ios, _, out, errOut := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios, Now: time.Now, Output: cmdutil.OutputTable}
	cmd := root.NewCmdRoot(f)
	cmd.SetArgs(append([]string{"--config", c.cfgPath, "--context", sandbox.ContextName}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	if err != nil {
		return out.String(), fmt.Errorf("opsctl %s: %w\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out.String(), nil
}

func (c cli) must(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

var gvrVirtualServices = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}

// TestEndToEnd runs the sandbox headless in-process and drives it through the CLI: apps are
// Synced and Healthy; a canary started and stepped with --wait shows its weights in the live
// VirtualService, and the mesh sends traffic to it; a dead letter made by a product-service
// fault is replayed and the saga converges (the order line's stock is restored).
func TestEndToEnd(t *testing.T) {
	gitopstest.Isolate(t)
	started := time.Now()
	sb, err := sandbox.Start(context.Background(), sandbox.Config{Rate: 8, DeclineRatio: 0.5, ScrapeInterval: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sb.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	// The product-service fault stays open until its dead letters exist, so no timing decides
	// whether there is something to replay.
	_ = sb.Faults.Set(traffic.FaultProductRestore, true)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Contexts[sandbox.ContextName] = sb.Context()
	if err := cfg.Save(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := sb.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("sandbox ready after %s", time.Since(started).Round(time.Millisecond))
	c := cli{t: t, cfgPath: cfgPath}

	t.Run("apps are Synced and Healthy", func(t *testing.T) {
		var apps []struct{ Name, Sync, Health string }
		if err := json.Unmarshal([]byte(c.must("apps", "list", "-o", "json")), &apps); err != nil {
			t.Fatal(err)
		}
		if len(apps) != 6 {
			t.Fatalf("%d apps, want 6 (3 services × dev, prod): %+v", len(apps), apps)
		}
		for _, a := range apps {
			if a.Sync != "Synced" || a.Health != "Healthy" {
				t.Fatalf("%s is %s/%s", a.Name, a.Sync, a.Health)
			}
		}
	})

	t.Run("canary start and step reach the live VirtualService", func(t *testing.T) {
		c.must("canary", "start", "order", "--env", "prod", "--image-tag", "1.1.0", "--reason", "e2e: try 1.1.0", "--skip-gates", "--yes", "--wait", "--timeout", "90s")
		liveWeights(t, sb, 90, 10)
		c.must("canary", "step", "order", "--env", "prod", "--reason", "e2e: phase 1", "--skip-gates", "--yes", "--wait", "--timeout", "90s")
		liveWeights(t, sb, 70, 30)
		var st []struct {
			Canary struct {
				Enabled bool
				Tag     string
				Weight  int
			}
			Live *struct {
				Verdict string
				LiveV2  *int32
			}
		}
		if err := json.Unmarshal([]byte(c.must("canary", "status", "order", "--env", "prod", "-o", "json")), &st); err != nil {
			t.Fatal(err)
		}
		if len(st) != 1 || !st[0].Canary.Enabled || st[0].Canary.Tag != "1.1.0" || st[0].Canary.Weight != 30 ||
			st[0].Live == nil || st[0].Live.LiveV2 == nil || *st[0].Live.LiveV2 != 30 {
			t.Fatalf("canary status %+v", st)
		}
		// The simulated Envoy follows: v2 of order-service in prod gets requests, and the
		// simulated Prometheus has them.
		pc, _ := promapi.NewClient(promapi.Config{Address: sb.PrometheusURL})
		api := promv1.NewAPI(pc)
		q := `sum(istio_requests_total{reporter="destination",destination_workload_namespace="come2us-prod",destination_workload="order-service-v2"})`
		eventually(t, "v2 traffic in Prometheus", func() bool {
			v, _, _, err := api.Query(context.Background(), q, time.Now())
			vec, ok := v.(model.Vector)
			return err == nil && ok && len(vec) == 1 && vec[0].Value > 0
		})
		c.must("canary", "rollback", "order", "--env", "prod", "--reason", "e2e: done", "--yes", "--wait", "--timeout", "90s")
		liveWeights(t, sb, 100, 0)
	})

	t.Run("replay a dead letter and the saga converges", func(t *testing.T) {
		dls := deadLetters(t, sb, event.DLT(event.TopicOrdersFailed))
		_ = sb.Faults.Set(traffic.FaultProductRestore, false)
		orderLines := map[int64]int64{} // orderDetailId → orderId
		for _, r := range dls {
			ev, err := event.Decode[event.OrderFailed](r.Value)
			if err != nil {
				t.Fatal(err)
			}
			orderLines[ev.OrderDetailID] = ev.OrderID
		}
		for detail, orderID := range orderLines {
			if st := reservationState(t, sb, orderID, detail); st != product.StateReserved {
				t.Fatalf("line %d of order %d is %s before the replay; its stock should still be out", detail, orderID, st)
			}
		}
		var topics []map[string]any
		if err := json.Unmarshal([]byte(c.must("dlt", "topics", "-o", "json")), &topics); err != nil {
			t.Fatal(err)
		}
		records := map[string]float64{}
		for _, tp := range topics {
			name, _ := tp["topic"].(string)
			records[name], _ = tp["records"].(float64)
		}
		if records[event.DLT(event.TopicOrdersFailed)] < float64(len(dls)) {
			t.Fatalf("dlt topics does not show %s with its %d records: %v", event.DLT(event.TopicOrdersFailed), len(dls), topics)
		}
		// The Spring Kafka and Kafka Connect dead letters are there too.
		if records[sandbox.SpringDLT] == 0 || records[sandbox.ConnectDLT] == 0 {
			t.Fatalf("dlt topics misses the seeded Spring or Connect dead letters: %v", records)
		}
		out := c.must("dlt", "replay", event.DLT(event.TopicOrdersFailed), "--group", event.GroupProductService,
			"--reason", "e2e: lock fixed", "--yes", "-o", "json")
		var summary struct {
			Type     string
			Replayed int
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &summary); err != nil || summary.Type != "summary" || summary.Replayed < len(dls) {
			t.Fatalf("replay summary %+v (%v), want at least the %d dead letters replayed:\n%s", summary, err, len(dls), out)
		}
		for detail, orderID := range orderLines {
			eventually(t, fmt.Sprintf("stock of line %d restored", detail), func() bool {
				return reservationState(t, sb, orderID, detail) == product.StateReleased
			})
		}
	})
}

// liveWeights waits until prod's order-service VirtualService carries v1/v2 weights.
func liveWeights(t *testing.T, sb *sandbox.Sandbox, v1, v2 int64) {
	t.Helper()
	eventually(t, fmt.Sprintf("live weights %d/%d", v1, v2), func() bool {
		vs, err := sb.Kube.Get(gvrVirtualServices, "come2us-prod", "order-service")
		if err != nil {
			return false
		}
		routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
		if len(routes) == 0 {
			return false
		}
		got := map[string]int64{}
		dests, _, _ := unstructured.NestedSlice(routes[len(routes)-1].(map[string]any), "route")
		for _, d := range dests {
			m := d.(map[string]any)
			subset, _, _ := unstructured.NestedString(m, "destination", "subset")
			w, _, _ := unstructured.NestedInt64(m, "weight")
			got[subset] = w
		}
		return got["v1"] == v1 && got["v2"] == v2
	})
}

// deadLetters waits for the dead letters the open fault makes and returns those on topic.
func deadLetters(t *testing.T, sb *sandbox.Sandbox, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(sb.Brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) == 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no dead letter on %s", topic)
		}
		out = append(out, fs.Records()...)
	}
	// Take what arrived by now; more may come until the fault closes, and are not needed.
	return out
}

func reservationState(t *testing.T, sb *sandbox.Sandbox, orderID, detail int64) string {
	t.Helper()
	rs, err := productapi.NewClient(sb.System.Product.URL(), nil).Reservations(context.Background(), orderID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.OrderDetailID == detail {
			return r.State
		}
	}
	return "missing"
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
