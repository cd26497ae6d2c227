package payment_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if goroutines outlive them: every client, consumer, relay
// and server must stop when its owner does.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
