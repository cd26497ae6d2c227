package service

import (
	"context"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/come2us/opsctl/pkg/secret"
)

// NewLogger returns the JSON logger of a service: one object per line (what Fluent Bit parses),
// secret attributes such as paymentKey masked, and trace_id/span_id added from the context so
// Loki lines link to Tempo traces.
func NewLogger(w io.Writer, level slog.Leveler, service, version string) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: secret.NewFields().SlogReplacer()})
	l := slog.New(traceHandler{h})
	attrs := []any{"service", service}
	if version != "" {
		attrs = append(attrs, "version", version)
	}
	return l.With(attrs...)
}

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(as)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
