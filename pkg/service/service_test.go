package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"go.opentelemetry.io/otel/trace"

	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/kafkatest"
	"github.com/come2us/opsctl/pkg/service"
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
		Kafka:       config.Kafka{Brokers: c.ListenAddrs()},
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

func TestReadyzReportsKafkaDown(t *testing.T) {
	c := kafkatest.New(t)
	rt, err := service.New(context.Background(), service.Options{
		Name: "test-service", Addr: "127.0.0.1:0",
		DatabaseURL: "sqlite:" + filepath.Join(t.TempDir(), "svc.db"),
		Kafka:       config.Kafka{Brokers: c.ListenAddrs()}, KafkaOpts: kafkatest.ClientOpts(c),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	defer func() { cancel(); <-done }()
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
	time.Sleep(50 * time.Millisecond) // the shutdown is now waiting for the request
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
