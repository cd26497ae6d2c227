package event

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	in := OrderFailed{Envelope: NewEnvelope(TypeOrderFailed, at), OrderID: 9, OrderDetailID: 11, OptionValueID: 3, Quantity: 2, PaymentKey: "pk"}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decode[OrderFailed](b)
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip changed the event: %+v != %+v", out, in)
	}
}

func TestDecodeDeadLetterValue(t *testing.T) {
	// A DLT value is the original event plus error fields; it must decode as the original.
	v := `{"eventId":"0b8c8a4e-7d7c-4bb0-9d8a-3f1f6f3f1f6f","eventType":"PaymentFailed","occurredAt":"2026-11-25T03:00:00Z","orderId":5,"paymentKey":"k","amount":1000,"errorSource":"order-service","errorCode":"DB_LOCK_TIMEOUT","errorMessage":"x","timestamp":"2026-11-25T03:00:01Z"}`
	ev, err := Decode[PaymentFailed]([]byte(v))
	if err != nil || ev.OrderID != 5 {
		t.Fatalf("got %+v, %v", ev, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := `"eventId":"0b8c8a4e-7d7c-4bb0-9d8a-3f1f6f3f1f6f","occurredAt":"2026-11-25T03:00:00Z"`
	tests := map[string]string{
		"empty":         ``,
		"not json":      `{`,
		"wrong type":    `{` + good + `,"eventType":"PaymentFailed","orderId":1}`,
		"no event id":   `{"eventType":"PaymentPaid","occurredAt":"2026-11-25T03:00:00Z","orderId":1}`,
		"no time":       `{"eventId":"0b8c8a4e-7d7c-4bb0-9d8a-3f1f6f3f1f6f","eventType":"PaymentPaid","orderId":1}`,
		"zero order":    `{` + good + `,"eventType":"PaymentPaid","orderId":0}`,
		"string amount": `{` + good + `,"eventType":"PaymentPaid","orderId":1,"amount":"x"}`,
	}
	for name, v := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Decode[PaymentPaid]([]byte(v)); !errors.Is(err, ErrSchema) {
				t.Fatalf("want ErrSchema, got %v", err)
			}
		})
	}
	if _, err := Decode[OrderFailed]([]byte(`{` + good + `,"eventType":"OrderFailed","orderId":1,"orderDetailId":1,"optionValueId":1,"quantity":-1}`)); !errors.Is(err, ErrSchema) {
		t.Fatalf("negative quantity accepted: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"eventId":"0b8c8a4e-7d7c-4bb0-9d8a-3f1f6f3f1f6f","eventType":"OrderFailed","occurredAt":"2026-11-25T03:00:00Z","orderId":1,"orderDetailId":1,"optionValueId":1,"quantity":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Decode[OrderFailed](b)
		if err == nil && (ev.Quantity <= 0 || ev.OrderID <= 0) {
			t.Fatalf("invalid event accepted: %+v", ev)
		}
		if err != nil && !errors.Is(err, ErrSchema) {
			t.Fatalf("error not ErrSchema: %v", err)
		}
	})
}
