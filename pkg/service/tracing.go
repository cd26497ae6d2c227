package service

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// tracing is the service's tracer provider: an OTLP exporter when an endpoint is configured, a
// no-op provider otherwise. The no-op provider still carries incoming trace context through, so
// trace ids reach logs, outbox rows and Kafka headers either way.
type tracing struct {
	provider trace.TracerProvider
	shutdown func(context.Context)
}

func newTracing(ctx context.Context, service, version, endpoint string) (*tracing, error) {
	if endpoint == "" {
		return &tracing{provider: noop.NewTracerProvider(), shutdown: func(context.Context) {}}, nil
	}
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("%s: OTLP exporter for %s: %w", service, endpoint, err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", service)}
	if version != "" {
		attrs = append(attrs, attribute.String("service.version", version))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(resource.NewSchemaless(attrs...)))
	return &tracing{provider: tp, shutdown: func(ctx context.Context) { _ = tp.Shutdown(ctx) }}, nil
}

// propagator is W3C trace context plus baggage, what Envoy, the OTel Collector and Tempo speak.
func propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}
