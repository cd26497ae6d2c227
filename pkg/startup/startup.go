// Package startup keeps the garbage collector off while opsctl's packages initialise.
//
// opsctl links Argo CD's client, Kubernetes', Istio's and Helm's packages, whose initialisers
// allocate about 13 MB before main runs (API schemes, protobuf registries, JSON schemas), most
// of it to keep. With the default GOGC=100 the heap starts at a 4 MB goal, so the collector ran
// four times during initialisation, on every command: a quarter of the time `opsctl version`
// took.
//
// Go initialises packages in import-path order, each once everything it imports is. This
// package imports only the standard library; it is initialised when runtime/debug is, about a
// third of the way through (before Kubernetes', Helm's and most of Argo CD's packages). It
// turns the collector off; main calls Done first, which restores the setting. A GOGC the user
// set stands throughout.
package startup

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
)

// InitGCPercent is GOGC while packages initialise: off. What initialisers allocate is fixed
// by the code linked, about 13 MB, and most of it stays live.
const InitGCPercent = -1

var (
	// previous is the setting Done restores; raised says whether init changed it, pending
	// whether Done has yet to restore it.
	previous        int
	raised, pending bool
	// cycles is the collector's cycle count when this package was initialised, then (after
	// Done) how many cycles ran during initialisation.
	cycles uint64
)

func init() {
	cycles = gcCycles()
	if os.Getenv("GOGC") != "" {
		return
	}
	previous = debug.SetGCPercent(InitGCPercent)
	raised, pending = true, true
}

// Done restores the collector's setting of before initialisation. main calls it first; later
// calls do nothing.
func Done() {
	if !pending {
		return
	}
	pending = false
	cycles = gcCycles() - cycles
	debug.SetGCPercent(previous)
}

// CyclesDuringInit reports, once Done has run, how many collections ran between this
// package's initialisation and Done, and whether GOGC was raised meanwhile (not when the user
// set GOGC).
func CyclesDuringInit() (n uint64, wasRaised bool) { return cycles, raised }

func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
