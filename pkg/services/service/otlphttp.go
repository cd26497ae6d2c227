package service

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// otlpHTTP sends spans to an OTLP/HTTP collector: POST <endpoint>/v1/traces with an
// ExportTraceServiceRequest in protobuf. otlptrace.New does the batching, conversion and
// retries-by-next-batch; this client only carries the request.
//
// It exists for the binaries' size: both of OpenTelemetry's OTLP trace clients (otlptracegrpc and
// otlptracehttp) link gRPC and its HTTP/2 stack through the collector's service definitions —
// about 7 MB of each 33 MB service binary — for what is one POST of one message. The message is
// built from the generated span types the exporter hands over; a test checks it against the
// generated ExportTraceServiceRequest.
type otlpHTTP struct {
	url  string
	http *http.Client
}

// otlpTimeout bounds one export.
const otlpTimeout = 10 * time.Second

// newOTLPHTTP returns the client for endpoint, the collector's base URL (http://host:4318; a
// URL that already ends in /v1/traces is used as it is).
func newOTLPHTTP(endpoint string) (*otlpHTTP, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("OTLP endpoint %q: want the collector's OTLP/HTTP base URL, e.g. http://otel-collector:4318", endpoint)
	}
	if !strings.HasSuffix(u.Path, "/v1/traces") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	}
	return &otlpHTTP{url: u.String(), http: &http.Client{Timeout: otlpTimeout}}, nil
}

var _ otlptrace.Client = (*otlpHTTP)(nil)

// Start does nothing: connections are made per export.
func (c *otlpHTTP) Start(context.Context) error { return nil }

// Stop does nothing: the exporter flushes before it stops its client, and nothing is held open.
func (c *otlpHTTP) Stop(context.Context) error { return nil }

// UploadTraces posts spans to the collector.
func (c *otlpHTTP) UploadTraces(ctx context.Context, spans []*tracepb.ResourceSpans) error {
	body, err := exportRequest(spans)
	if err != nil {
		return fmt.Errorf("OTLP export: encode spans: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("OTLP export to %s: %w", c.url, err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("OTLP export to %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("OTLP export to %s: %s %s", c.url, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// exportRequest encodes opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest, whose
// only field is resource_spans = 1 (repeated).
func exportRequest(spans []*tracepb.ResourceSpans) ([]byte, error) {
	var b []byte
	for _, rs := range spans {
		m, err := proto.Marshal(rs)
		if err != nil {
			return nil, err
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, m)
	}
	return b, nil
}
