// Package event defines the Kafka contracts of the SAGA: topic names, consumer groups and the
// JSON events that payment-, order- and product-service exchange. It is the one place both the
// services and opsctl agree on what a record means.
//
// Every event is JSON with eventId (UUID), eventType and occurredAt plus its business fields,
// and every record is keyed by the order id, so all events of one order land on one partition
// and keep their order. Decoders ignore unknown fields: a dead-letter value (the original event
// plus errorSource/errorCode/errorMessage/timestamp) can be re-read as the original event.
package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Topic names of section 6.3 of the design.
const (
	TopicPaymentsPaid   = "payments-paid"
	TopicPaymentsFailed = "payments-failed"
	TopicOrdersFailed   = "orders-failed"
)

// DLTSuffix is appended to a topic's name to form its dead-letter topic.
const DLTSuffix = ".DLT"

// Partitions is the partition count of every SAGA topic and DLT (a multiple of the 3 brokers).
const Partitions = 3

// Consumer groups, one per consuming service (section 6.5).
const (
	GroupOrderService   = "order-service-group"
	GroupProductService = "product-service-group"
)

// Topics lists the SAGA topics in flow order.
func Topics() []string {
	return []string{TopicPaymentsPaid, TopicPaymentsFailed, TopicOrdersFailed}
}

// DLT returns the dead-letter topic of topic.
func DLT(topic string) string { return topic + DLTSuffix }

// Event types carried in eventType.
const (
	TypePaymentPaid   = "PaymentPaid"
	TypePaymentFailed = "PaymentFailed"
	TypeOrderFailed   = "OrderFailed"
)

// Envelope holds the fields every event carries.
type Envelope struct {
	EventID    string    `json:"eventId"`
	EventType  string    `json:"eventType"`
	OccurredAt time.Time `json:"occurredAt"`
}

// PaymentPaid is published on payments-paid when the PG approved a payment.
type PaymentPaid struct {
	Envelope
	OrderID    int64  `json:"orderId"`
	PaymentKey string `json:"paymentKey"`
	Amount     int64  `json:"amount"`
}

// PaymentFailed is published on payments-failed when the PG declined or the confirm call failed
// for good; it starts the compensation.
type PaymentFailed struct {
	Envelope
	OrderID    int64  `json:"orderId"`
	PaymentKey string `json:"paymentKey"`
	Amount     int64  `json:"amount"`
	ReasonCode string `json:"reasonCode,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// OrderFailed is published on orders-failed once per order line of a failed order, so
// product-service restores that line's stock.
type OrderFailed struct {
	Envelope
	OrderID       int64  `json:"orderId"`
	OrderDetailID int64  `json:"orderDetailId"`
	OptionValueID int64  `json:"optionValueId"`
	Quantity      int    `json:"quantity"`
	PaymentKey    string `json:"paymentKey,omitempty"`
}

// NewEnvelope stamps a fresh event id and the time of the event.
func NewEnvelope(eventType string, at time.Time) Envelope {
	return Envelope{EventID: uuid.NewString(), EventType: eventType, OccurredAt: at.UTC()}
}

// Key returns the record key for an order: its id in decimal.
func Key(orderID int64) []byte { return []byte(strconv.FormatInt(orderID, 10)) }

// ErrSchema marks a record that cannot be a valid event: it will never succeed on retry, so
// consumers send it straight to the dead-letter topic.
var ErrSchema = errors.New("invalid event")

// Decode parses and validates a PaymentPaid, PaymentFailed or OrderFailed value. A value that is
// not JSON, has the wrong eventType or misses a required field yields an error wrapping ErrSchema.
func Decode[T PaymentPaid | PaymentFailed | OrderFailed](value []byte) (T, error) {
	var ev T
	if len(value) == 0 {
		return ev, fmt.Errorf("%w: empty value", ErrSchema)
	}
	if err := json.Unmarshal(value, &ev); err != nil {
		return ev, fmt.Errorf("%w: %v", ErrSchema, err)
	}
	if err := validate(any(&ev)); err != nil {
		return ev, fmt.Errorf("%w: %v", ErrSchema, err)
	}
	return ev, nil
}

func validate(ev any) error {
	switch e := ev.(type) {
	case *PaymentPaid:
		if err := e.Envelope.check(TypePaymentPaid); err != nil {
			return err
		}
		return positive("orderId", e.OrderID)
	case *PaymentFailed:
		if err := e.Envelope.check(TypePaymentFailed); err != nil {
			return err
		}
		return positive("orderId", e.OrderID)
	case *OrderFailed:
		if err := e.Envelope.check(TypeOrderFailed); err != nil {
			return err
		}
		for _, f := range []struct {
			name string
			v    int64
		}{{"orderId", e.OrderID}, {"orderDetailId", e.OrderDetailID}, {"optionValueId", e.OptionValueID}, {"quantity", int64(e.Quantity)}} {
			if err := positive(f.name, f.v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e Envelope) check(want string) error {
	if e.EventType != want {
		return fmt.Errorf("eventType %q, want %q", e.EventType, want)
	}
	if _, err := uuid.Parse(e.EventID); err != nil {
		return fmt.Errorf("eventId %q is not a UUID", e.EventID)
	}
	if e.OccurredAt.IsZero() {
		return errors.New("occurredAt missing")
	}
	return nil
}

func positive(name string, v int64) error {
	if v <= 0 {
		return fmt.Errorf("%s must be positive, got %d", name, v)
	}
	return nil
}
