// Command product-service runs the SAGA's product-service. It is configured from the environment:
//
//	HTTP_ADDR, DATABASE_URL, KAFKA_BROKERS, KAFKA_TLS, KAFKA_SASL_*, LOG_LEVEL,
//	OTEL_EXPORTER_OTLP_ENDPOINT, SHUTDOWN_TIMEOUT (see service.OptionsFromEnv)
//	CONSUMER_* (see service.ConsumerFromEnv)
//
// It exits 0 after a graceful shutdown on SIGTERM or SIGINT, 2 on bad configuration and 1 when
// it cannot start or a component fails.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/come2us/opsctl/pkg/product"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := product.ConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "product-service: %v\n", err)
		os.Exit(2)
	}
	svc, err := product.New(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "product-service: %v\n", err)
		os.Exit(1)
	}
	if err := svc.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "product-service: %v\n", err)
		os.Exit(1)
	}
}
