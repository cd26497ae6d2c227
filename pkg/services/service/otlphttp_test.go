package service

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestExportRequestMatchesGenerated: the request body is the generated ExportTraceServiceRequest
// of the same spans, byte for byte when encoded deterministically and equal when decoded.
func TestExportRequestMatchesGenerated(t *testing.T) {
	attr := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	spans := []*tracepb.ResourceSpans{
		{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{attr("service.name", "order-service")}},
			ScopeSpans: []*tracepb.ScopeSpans{{
				Scope: &commonpb.InstrumentationScope{Name: "test"},
				Spans: []*tracepb.Span{{
					TraceId: []byte("0123456789abcdef"), SpanId: []byte("01234567"), Name: "POST /orders",
					Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: 1, EndTimeUnixNano: 2,
					Attributes: []*commonpb.KeyValue{attr("http.route", "/orders")},
				}},
			}},
		},
		{Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{attr("service.name", "payment-service")}}},
	}
	for _, tc := range []struct {
		name  string
		spans []*tracepb.ResourceSpans
	}{{"none", nil}, {"one", spans[:1]}, {"two", spans}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := exportRequest(tc.spans)
			if err != nil {
				t.Fatal(err)
			}
			want := &collectorpb.ExportTraceServiceRequest{ResourceSpans: tc.spans}
			var decoded collectorpb.ExportTraceServiceRequest
			if err := proto.Unmarshal(got, &decoded); err != nil {
				t.Fatalf("the body does not decode as ExportTraceServiceRequest: %v", err)
			}
			if !proto.Equal(&decoded, want) {
				t.Fatalf("decoded %v, want %v", &decoded, want)
			}
			wantBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(wantBytes) {
				t.Fatalf("body %x, generated message encodes as %x", got, wantBytes)
			}
		})
	}
}

// TestTracingExportsOverHTTP: with an endpoint set, a finished span reaches the collector's
// /v1/traces as protobuf when the provider shuts down.
func TestTracingExportsOverHTTP(t *testing.T) {
	var mu sync.Mutex
	var got []*collectorpb.ExportTraceServiceRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"), http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var req collectorpb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, &req)
		mu.Unlock()
	}))
	defer srv.Close()

	tr, err := newTracing(context.Background(), "order-service", "v1", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.provider.Tracer("test").Start(context.Background(), "POST /orders")
	span.End()
	tr.shutdown(context.Background())

	mu.Lock()
	defer mu.Unlock()
	var names []string
	for _, req := range got {
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names = append(names, s.Name)
				}
			}
		}
	}
	if len(names) != 1 || names[0] != "POST /orders" {
		t.Fatalf("collector received spans %v, want [POST /orders]", names)
	}
}

func TestOTLPEndpointRejected(t *testing.T) {
	for _, e := range []string{"otel-collector:4318", "grpc://otel:4317", "http://"} {
		if _, err := newOTLPHTTP(e); err == nil {
			t.Errorf("endpoint %q accepted", e)
		}
	}
	c, err := newOTLPHTTP("http://otel:4318/")
	if err != nil || c.url != "http://otel:4318/v1/traces" {
		t.Fatalf("url %q, %v", c.url, err)
	}
}
