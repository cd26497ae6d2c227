package service

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// tracing is the service's tracer provider: spans exported over OTLP when an endpoint is
// configured. Without one, spans are still created but never recorded (sampling off for new
// traces, the caller's decision kept for joined ones), so every request and record still gets a
// trace id that reaches logs, outbox rows, Kafka headers and dead letters — an operator can follow
// one order through all services by its trace_id even before Tempo is wired up.
type tracing struct {
	provider trace.TracerProvider
	shutdown func(context.Context)
}

func newTracing(ctx context.Context, service, version, endpoint string) (*tracing, error) {
	if endpoint == "" {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
		return &tracing{provider: tp, shutdown: func(ctx context.Context) { _ = tp.Shutdown(ctx) }}, nil
	}
	client, err := newOTLPHTTP(endpoint)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", service, err)
	}
	exp, err := otlptrace.New(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("%s: OTLP exporter for %s: %w", service, endpoint, err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", service)}
	if version != "" {
		attrs = append(attrs, attribute.String("service.version", version))
	}
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (set by the chart) add to and override ours.
	res, err := resource.Merge(resource.NewSchemaless(attrs...), resource.Environment())
	if err != nil {
		res = resource.NewSchemaless(attrs...)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &tracing{provider: tp, shutdown: func(ctx context.Context) { _ = tp.Shutdown(ctx) }}, nil
}

// propagator is W3C trace context plus baggage, what Envoy, the OTel Collector and Tempo speak.
func propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}
