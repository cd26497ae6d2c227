package traffic

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/services/consumer"
	"github.com/come2us/opsctl/pkg/services/store"
)

// Fault is a kind of fault window.
type Fault string

// The fault windows the generator opens. Each makes a real dead letter of its own schema: the
// failing service writes it with its own consumer, as it would in production.
const (
	// FaultOrderPayments: order-service cannot apply payment failures (its database refuses
	// connections), so payments-failed records end in payments-failed.DLT and their orders
	// stay PENDING until the sweeper fails them.
	FaultOrderPayments Fault = "order-payments"
	// FaultProductRestore: product-service cannot restore stock (row locks time out), so
	// orders-failed records end in orders-failed.DLT until someone replays them.
	FaultProductRestore Fault = "product-restore"
)

// Faults are the switches behind the fault windows. Their hooks go into the services' consumer
// configuration (consumer.Config.Fault); the generator opens and closes the windows.
type Faults struct {
	orderPayments, productRestore atomic.Bool
}

// Set opens (on) or closes a fault window.
func (f *Faults) Set(kind Fault, on bool) error {
	switch kind {
	case FaultOrderPayments:
		f.orderPayments.Store(on)
	case FaultProductRestore:
		f.productRestore.Store(on)
	default:
		return fmt.Errorf("unknown fault %q (want %s or %s)", kind, FaultOrderPayments, FaultProductRestore)
	}
	return nil
}

// Active reports whether a fault window is open.
func (f *Faults) Active(kind Fault) bool {
	switch kind {
	case FaultOrderPayments:
		return f.orderPayments.Load()
	case FaultProductRestore:
		return f.productRestore.Load()
	}
	return false
}

// OrderHook is order-service's consumer fault hook: while FaultOrderPayments is open every
// attempt at a payments-failed record fails as a database outage would.
func (f *Faults) OrderHook(_ context.Context, rec *kgo.Record) error {
	if rec.Topic == event.TopicPaymentsFailed && f.orderPayments.Load() {
		return consumer.Retryable(store.CodeUnavailable,
			errors.New("simulated fault window (opsctl sandbox): connection pool exhausted, could not reach the orders database"))
	}
	return nil
}

// ProductHook is product-service's consumer fault hook: while FaultProductRestore is open every
// attempt at an orders-failed record fails as a lock timeout on the option rows would.
func (f *Faults) ProductHook(_ context.Context, rec *kgo.Record) error {
	if rec.Topic == event.TopicOrdersFailed && f.productRestore.Load() {
		return consumer.Retryable(store.CodeLockTimeout,
			errors.New(`simulated fault window (opsctl sandbox): canceling statement due to lock timeout on "option_values"`))
	}
	return nil
}
