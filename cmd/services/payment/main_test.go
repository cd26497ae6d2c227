package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestHelp: --help prints the flags and the environment variables payment-service reads, and exits
// 0 without reading the environment, opening a database or listening on a port.
func TestHelp(t *testing.T) {
	var out strings.Builder
	noEnv := func(k string) string { t.Errorf("read %s: the service was being configured", k); return "" }
	if code := run(context.Background(), []string{"--help"}, noEnv, &out, io.Discard); code != 0 {
		t.Fatalf("--help exited %d", code)
	}
	for _, want := range []string{"Usage:", "--help", "--version", "Environment:", "HTTP_ADDR", "KAFKA_BROKERS", "ORDER_SERVICE_URL", "PG_SECRET_KEY", "PG_TIMEOUT", "RECONCILE_INTERVAL", "OUTBOX_MAX_ATTEMPTS", "DATABASE_URL"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("--help does not mention %s:\n%s", want, out.String())
		}
	}
}

// TestUnknownFlag: a flag the binary does not have exits 2 before anything starts.
func TestUnknownFlag(t *testing.T) {
	var errOut strings.Builder
	noEnv := func(k string) string { t.Errorf("read %s: the service was being configured", k); return "" }
	if code := run(context.Background(), []string{"--addr", ":9090"}, noEnv, io.Discard, &errOut); code != 2 || !strings.Contains(errOut.String(), "nothing was started") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}
