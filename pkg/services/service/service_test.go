package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/come2us/opsctl/pkg/kafka"
	"github.com/come2us/opsctl/pkg/kafkatest"
	"github.com/come2us/opsctl/pkg/services/service"
)

type running struct {
	rt   *service.Runtime
	stop func() error
	done chan error
}

func start(t *testing.T, setup func(*service.Runtime)) (*running, *bytes.Buffer) {
	t.Helper()
	r, logs := launch(t, setup)
	waitFor(t, "the server to answer", func() bool {
		resp, err := http.Get(r.rt.URL() + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return r, logs
}

func launch(t *testing.T, setup func(*service.Runtime)) (*running, *bytes.Buffer) {
	t.Helper()
	c := kafkatest.New(t)
	var logs syncBuffer
	rt, err := service.New(context.Background(), service.Options{
		Name:        "test-service",
		Addr:        "127.0.0.1:0",
		DatabaseURL: "sqlite:" + filepath.Join(t.TempDir(), "svc.db"),
		Kafka:       kafka.Config{Brokers: c.ListenAddrs()},
		KafkaOpts:   kafkatest.ClientOpts(c),
		Logger:      service.NewLogger(&logs, slog.LevelDebug, "test-service", "v1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(rt)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return &running{rt: rt, stop: stop, done: done}, &logs.buf
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	r, _ := start(t, func(rt *service.Runtime) {
		rt.Handle("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) error {
			if r.PathValue("id") == "boom" {
				return errors.New("database exploded")
			}
			if r.PathValue("id") == "panic" {
				panic("oops")
			}
			service.WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
			return nil
		})
	})
	base := r.rt.URL()
	for _, tc := range []struct {
		path       string
		status     int
		bodyHas    string
		bodyHasNot string
	}{
		{"/healthz", 200, `"ok"`, ""},
		{"/readyz", 200, `"kafka":"ok"`, ""},
		{"/things/7", 200, `"id":"7"`, ""},
		{"/things/boom", 500, `"code":"INTERNAL"`, "exploded"},
		{"/things/panic", 500, `"code":"INTERNAL"`, "oops"},
		{"/nope", 404, `"code":"NOT_FOUND"`, ""},
	} {
		status, body := get(t, base+tc.path)
		if status != tc.status || !strings.Contains(body, tc.bodyHas) || (tc.bodyHasNot != "" && strings.Contains(body, tc.bodyHasNot)) {
			t.Errorf("GET %s = %d %s, want %d containing %s", tc.path, status, body, tc.status, tc.bodyHas)
		}
	}
	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{
		`saga_http_requests_total{code="200",method="GET",route="/things/{id}",service="test-service"} 1`,
		`saga_http_requests_total{code="500",method="GET",route="/things/{id}",service="test-service"} 2`,
		`saga_http_requests_total{code="404",method="GET",route="unmatched",service="test-service"} 1`,
		`saga_http_request_duration_seconds_count{method="GET",route="/things/{id}",service="test-service"} 3`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestTopicsCreated(t *testing.T) {
	r, _ := start(t, nil)
	details, err := kadm.NewClient(r.rt.Producer).ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range service.Topics() {
		d, ok := details[topic]
		if !ok || len(d.Partitions) != 3 {
			t.Errorf("topic %s: exists=%v partitions=%d, want 3", topic, ok, len(d.Partitions))
		}
	}
	if len(service.Topics()) != 6 {
		t.Fatalf("Topics() = %v", service.Topics())
	}
}

// TestProducerDoesNotLinger: the producer publishes outbox passes and dead letters, each a whole
// batch waited on before the next; a linger would only delay every hop of a saga.
func TestProducerDoesNotLinger(t *testing.T) {
	r, _ := launch(t, nil)
	if got := r.rt.Producer.OptValue(kgo.ProducerLinger); got != time.Duration(0) {
		t.Fatalf("producer linger = %v, want 0", got)
	}
}

func TestReadyzReportsKafkaDown(t *testing.T) {
	c := kafkatest.New(t)
	rt, err := service.New(context.Background(), service.Options{
		Name: "test-service", Addr: "127.0.0.1:0",
		DatabaseURL: "sqlite:" + filepath.Join(t.TempDir(), "svc.db"),
		Kafka:       kafka.Config{Brokers: c.ListenAddrs()}, KafkaOpts: kafkatest.ClientOpts(c),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the runtime ended with %v", err)
		}
	}()
	waitFor(t, "ready", func() bool {
		s, _ := get(t, rt.URL()+"/readyz")
		return s == 200
	})
	c.Close()
	status, body := get(t, rt.URL()+"/readyz")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, `"db":"ok"`) || strings.Contains(body, `"kafka":"ok"`) {
		t.Fatalf("readyz with Kafka gone = %d %s", status, body)
	}
}

// TestGracefulShutdown: a request in flight at shutdown completes; intake workers stop before
// publish workers.
func TestGracefulShutdown(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	r, _ := start(t, func(rt *service.Runtime) {
		rt.Handle("POST /slow", func(w http.ResponseWriter, _ *http.Request) error {
			close(entered)
			<-release
			service.WriteJSON(w, http.StatusCreated, map[string]string{"done": "yes"})
			return nil
		})
		rt.Go(service.StagePublish, "relay", func(ctx context.Context) error { <-ctx.Done(); note("publish"); return nil })
		rt.Go(service.StageIntake, "consumer", func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(20 * time.Millisecond) // draining takes a moment; publish must still wait
			note("intake")
			return nil
		})
	})
	type result struct {
		status int
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Post(r.rt.URL()+"/slow", "application/json", strings.NewReader("{}"))
		if err != nil {
			res <- result{err: err}
			return
		}
		resp.Body.Close()
		res <- result{status: resp.StatusCode}
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- r.stop() }()
	<-r.rt.Draining() // the shutdown has begun and waits for the request
	close(release)
	got := <-res
	if got.err != nil || got.status != http.StatusCreated {
		t.Fatalf("in-flight request at shutdown: %d %v", got.status, got.err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if strings.Join(order, ",") != "intake,publish" {
		t.Fatalf("stop order %v, want intake before publish", order)
	}
}

func TestWorkerFailureStopsService(t *testing.T) {
	r, _ := launch(t, func(rt *service.Runtime) {
		rt.Go(service.StageIntake, "consumer", func(context.Context) error { return errors.New("group fenced") })
	})
	// Run returns on its own, with the worker's error.
	select {
	case err := <-r.done:
		if err == nil || !strings.Contains(err.Error(), "consumer: group fenced") {
			t.Fatalf("Run error = %v", err)
		}
		r.done <- err // for the cleanup's stop
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after a worker failed")
	}
}

func TestLoggerMasksSecretsAndAddsTrace(t *testing.T) {
	var buf bytes.Buffer
	log := service.NewLogger(&buf, slog.LevelInfo, "payment-service", "v2")
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	log.InfoContext(ctx, "confirmed", "paymentKey", "tgen_20240101abcdefgh", "orderId", 7)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line is not JSON: %s", buf.Bytes())
	}
	if line["paymentKey"] != "tgen_***" || line["trace_id"] != tid.String() || line["service"] != "payment-service" || line["version"] != "v2" {
		t.Fatalf("log line %v", line)
	}
	if strings.Contains(buf.String(), "abcdefgh") {
		t.Fatal("payment key logged in full")
	}
}

func TestDecodeJSON(t *testing.T) {
	type req struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	for _, tc := range []struct {
		name, body, ctype string
		status            int
		msg               string
	}{
		{"ok", `{"name":"a","count":2}`, "application/json", 0, ""},
		{"malformed", `{"name":`, "application/json", 400, "truncated"},
		{"syntax", `{"name" "a"}`, "", 400, "not valid JSON"},
		{"unknown field", `{"name":"a","cuont":2}`, "", 400, `unknown field "cuont"`},
		{"wrong type", `{"count":"two"}`, "", 400, "field count must be int"},
		{"empty", ``, "", 400, "empty"},
		{"trailing", `{"name":"a"} {"x":1}`, "", 400, "after the JSON document"},
		{"too large", `{"name":"` + strings.Repeat("x", 200) + `"}`, "", 413, "larger than 100 bytes"},
		{"content type", `{}`, "text/plain", 415, "not application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			var dst req
			err := service.DecodeJSON(nopWriter{}, r, &dst, 100)
			if tc.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ae *service.APIError
			if !errors.As(err, &ae) || ae.Status != tc.status || !strings.Contains(ae.Message, tc.msg) || !strings.Contains(ae.Message, service.Unchanged) {
				t.Fatalf("err = %v, want %d mentioning %q and that nothing changed", err, tc.status, tc.msg)
			}
		})
	}
}

type nopWriter struct{}

func (nopWriter) Header() http.Header         { return http.Header{} }
func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (nopWriter) WriteHeader(int)             {}

func TestOptionsFromEnv(t *testing.T) {
	env := map[string]string{
		"KAFKA_BROKERS": "b1:9092, b2:9092", "LOG_LEVEL": "loud", "SHUTDOWN_TIMEOUT": "soon",
		"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_PASSWORD": "hunter2",
	}
	e := service.NewEnv(func(k string) string { return env[k] })
	o := service.OptionsFromEnv("order-service", e)
	err := e.Err()
	if err == nil || !strings.Contains(err.Error(), "LOG_LEVEL") || !strings.Contains(err.Error(), "SHUTDOWN_TIMEOUT") {
		t.Fatalf("Err() = %v, want both bad settings named", err)
	}
	if strings.Join(o.Kafka.Brokers, "|") != "b1:9092|b2:9092" || o.DatabaseURL != "sqlite:order-service.db" || o.Addr != ":8080" {
		t.Fatalf("options %+v", o)
	}
	if o.Kafka.SASL.Password != "" || o.Kafka.SASL.PasswordEnv != "KAFKA_SASL_PASSWORD" {
		t.Fatalf("SASL password should be read from the environment when connecting: %+v", o.Kafka.SASL)
	}
}

func TestDatabaseURLFromParts(t *testing.T) {
	env := map[string]string{"DATABASE_HOST": "db.internal", "DATABASE_PASSWORD": "p@ss:w/rd"}
	e := service.NewEnv(func(k string) string { return env[k] })
	o := service.OptionsFromEnv("order-service", e)
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	want := "postgres://order_service:p%40ss%3Aw%2Frd@db.internal:5432/order_service?sslmode=require"
	if o.DatabaseURL != want {
		t.Fatalf("DatabaseURL = %q, want %q", o.DatabaseURL, want)
	}
	env["DATABASE_URL"] = "sqlite:/data/x.db"
	if o := service.OptionsFromEnv("order-service", service.NewEnv(func(k string) string { return env[k] })); o.DatabaseURL != "sqlite:/data/x.db" {
		t.Fatalf("DATABASE_URL does not win: %q", o.DatabaseURL)
	}
}

func TestConsumerFromEnvStaticMembership(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"POD_NAME": "order-service-v1-5d8f-x2k9q", "HOSTNAME": "ignored"}, "order-service-v1-5d8f-x2k9q"},
		{map[string]string{"HOSTNAME": "order-service-v1-5d8f-abcde"}, "order-service-v1-5d8f-abcde"},
		{map[string]string{}, ""},
	} {
		e := service.NewEnv(func(k string) string { return tc.env[k] })
		if c := service.ConsumerFromEnv(e); c.InstanceID != tc.want || e.Err() != nil {
			t.Errorf("env %v: instance id %q (%v), want %q", tc.env, c.InstanceID, e.Err(), tc.want)
		}
	}
	e := service.NewEnv(func(k string) string { return map[string]string{"CONSUMER_RETRY_FOR": "10m"}[k] })
	if c := service.ConsumerFromEnv(e); c.RetryFor != 10*time.Minute {
		t.Fatalf("CONSUMER_RETRY_FOR: %v", c.RetryFor)
	}
}

type demoConfig struct {
	Addr, Secret string
	Timeout      time.Duration
}

func demoBinary(ran *bool) service.Binary[demoConfig] {
	return service.Binary[demoConfig]{
		Name:    "demo-service",
		Summary: "a service for the test.",
		Config: func(e *service.Env) demoConfig {
			return demoConfig{
				Addr:    e.String("HTTP_ADDR", ":8080", "HTTP listen address"),
				Secret:  e.Required("DEMO_SECRET", "the demo's secret key"),
				Timeout: e.Duration("DEMO_TIMEOUT", 10*time.Second, "bound of one call"),
			}
		},
		Run: func(context.Context, demoConfig) error { *ran = true; return nil },
	}
}

// TestMainHelp: --help and -h print the flags and every environment variable with its default
// and exit 0 without reading the environment or starting anything; --version prints the build.
func TestMainHelp(t *testing.T) {
	noEnv := func(k string) string { t.Errorf("read %s: the service was being configured", k); return "" }
	for _, arg := range []string{"--help", "-h", "-help"} {
		var ran bool
		var out, errOut strings.Builder
		if code := service.Main(context.Background(), demoBinary(&ran), []string{arg}, noEnv, &out, &errOut); code != 0 || ran {
			t.Fatalf("%s: exit %d, ran %v, stderr %q", arg, code, ran, errOut.String())
		}
		for _, want := range []string{"demo-service — a service for the test.", "--help", "--version", "Environment:",
			`HTTP_ADDR`, `HTTP listen address (default ":8080")`, "DEMO_SECRET", "the demo's secret key (required)", `DEMO_TIMEOUT`, `(default "10s")`} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("%s output lacks %q:\n%s", arg, want, out.String())
			}
		}
	}
	var ran bool
	var out strings.Builder
	if code := service.Main(context.Background(), demoBinary(&ran), []string{"--version"}, noEnv, &out, io.Discard); code != 0 || ran ||
		!strings.HasPrefix(out.String(), "demo-service ") {
		t.Fatalf("--version: exit %d, ran %v, %q", code, ran, out.String())
	}
}

// TestMainRefusesArguments: anything but --help and --version exits 2 before anything starts, and
// a bad configuration lists every problem and exits 2.
func TestMainRefusesArguments(t *testing.T) {
	env := func(k string) string { return map[string]string{"DEMO_SECRET": "s3cr3t"}[k] }
	for _, args := range [][]string{{"--port=9090"}, {"serve"}, {"--version", "extra"}} {
		var ran bool
		var errOut strings.Builder
		code := service.Main(context.Background(), demoBinary(&ran), args, env, io.Discard, &errOut)
		if code != service.ExitUsage || ran || !strings.Contains(errOut.String(), "nothing was started") {
			t.Fatalf("%v: exit %d, ran %v, stderr %q", args, code, ran, errOut.String())
		}
	}
	var ran bool
	var errOut strings.Builder
	bad := func(k string) string { return map[string]string{"DEMO_TIMEOUT": "soon"}[k] }
	code := service.Main(context.Background(), demoBinary(&ran), nil, bad, io.Discard, &errOut)
	if code != service.ExitUsage || ran || !strings.Contains(errOut.String(), "DEMO_SECRET is required") || !strings.Contains(errOut.String(), `DEMO_TIMEOUT="soon"`) {
		t.Fatalf("bad configuration: exit %d, ran %v, stderr %q", code, ran, errOut.String())
	}
	if code := service.Main(context.Background(), demoBinary(&ran), nil, env, io.Discard, io.Discard); code != 0 || !ran {
		t.Fatalf("good configuration: exit %d, ran %v", code, ran)
	}
}

// TestServiceBinariesLinkNoGRPC: traces go out over OTLP/HTTP with the runtime's own client, so no
// service binary links gRPC and its HTTP/2 stack (about 7 MB of each binary).
func TestServiceBinariesLinkNoGRPC(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list the binaries' packages")
	}
	for _, bin := range []string{"order", "payment", "product"} {
		out, err := exec.Command(gobin, "list", "-deps", "github.com/come2us/opsctl/cmd/services/"+bin).Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == "google.golang.org/grpc" || strings.HasPrefix(dep, "google.golang.org/grpc/") {
				t.Errorf("%s-service links %s", bin, dep)
				break
			}
		}
	}
}
