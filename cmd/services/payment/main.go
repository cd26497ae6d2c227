// Command payment-service runs the SAGA's payment-service. It is configured from the environment;
// `payment-service --help` lists every variable it reads with its default.
//
// It exits 0 after a graceful shutdown on SIGTERM or SIGINT (and after --help or --version), 2
// on bad arguments or configuration, and 1 when it cannot start or a component fails.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/come2us/opsctl/pkg/services/payment"
	"github.com/come2us/opsctl/pkg/services/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return service.Main(ctx, service.Binary[payment.Config]{
		Name:    payment.Name,
		Summary: "the SAGA's payment-service: confirms payments with the payment gateway, one per order, and announces the results through its outbox.",
		Config:  payment.ConfigFromEnv,
		Run: func(ctx context.Context, cfg payment.Config) error {
			svc, err := payment.New(ctx, cfg)
			if err != nil {
				return err
			}
			return svc.Run(ctx)
		},
	}, args, getenv, stdout, stderr)
}
