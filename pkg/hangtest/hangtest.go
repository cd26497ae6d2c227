// Package hangtest gives tests a hung server: a TCP listener that accepts every connection,
// reads and discards what it is sent (so a client's writes never block and it goes on to wait
// for the answer), and never answers or closes it, as a wedged server, a black-holing proxy or a
// stopped process behind a live load balancer does. A client with no deadline waits on it
// forever; a test uses it to prove that a call ends at its deadline.
package hangtest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Listen starts a hung server on a free port of 127.0.0.1 and returns its host:port. The
// listener and every connection it accepted are closed when the test ends.
func Listen(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return lis.Addr().String()
}
