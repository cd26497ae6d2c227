package replay

import (
	"os"
	"runtime/debug"
)

// The garbage collector settings for a process whose job is one scan or replay (the CLI's
// dlt commands). Such a run allocates a record per dead letter and keeps little: with Go's
// default GOGC=100 the heap stays small and the collector runs every few thousand records,
// which cost a quarter of a replay's CPU. BatchGCPercent lets the heap grow to five times what
// is live between collections; BatchMemoryLimit caps that growth, so a large scan collects
// more often instead of growing past it.
const (
	BatchGCPercent   = 400
	BatchMemoryLimit = 512 << 20
)

// TuneGCForBatch applies BatchGCPercent and BatchMemoryLimit to the process, unless the user
// set GOGC or GOMEMLIMIT, which then stand. It returns a function that restores the previous
// settings. A long-running process that embeds the engine (the TUI, the sandbox) keeps its own.
func TuneGCForBatch() (restore func()) {
	var undo []func()
	if os.Getenv("GOGC") == "" {
		old := debug.SetGCPercent(BatchGCPercent)
		undo = append(undo, func() { debug.SetGCPercent(old) })
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		old := debug.SetMemoryLimit(BatchMemoryLimit)
		undo = append(undo, func() { debug.SetMemoryLimit(old) })
	}
	return func() {
		for _, f := range undo {
			f()
		}
	}
}
