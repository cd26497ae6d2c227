package replay

import (
	"runtime/debug"
	"testing"
)

func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestTuneGCForBatch(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	before, beforeLimit := gcPercent(), debug.SetMemoryLimit(-1)
	restore := TuneGCForBatch()
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != BatchGCPercent || l != BatchMemoryLimit {
		t.Fatalf("tuned: GOGC %d, memory limit %d; want %d and %d", p, l, BatchGCPercent, BatchMemoryLimit)
	}
	restore()
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != before || l != beforeLimit {
		t.Fatalf("restored: GOGC %d, memory limit %d; want %d and %d", p, l, before, beforeLimit)
	}

	// The user's settings stand.
	t.Setenv("GOGC", "50")
	t.Setenv("GOMEMLIMIT", "100MiB")
	restore = TuneGCForBatch()
	defer restore()
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != before || l != beforeLimit {
		t.Fatalf("with GOGC and GOMEMLIMIT set, tuning changed GOGC to %d and the limit to %d", p, l)
	}
}
