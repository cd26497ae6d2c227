package dlt

// Defaults of opsctl's dead-letter handling, for a context (or an engine) that leaves them
// empty: the names of dead-letter topics, the ledger topic that records every replay, and the
// poison guard.
const (
	// DefaultPattern matches dead-letter topic names: Spring's "<topic>.DLT" and the "-dlt"
	// suffix some teams use.
	DefaultPattern = `(\.DLT|-dlt)$`
	// DefaultLedgerTopic is the compacted topic recording every replay.
	DefaultLedgerTopic = "opsctl.replays"
	// DefaultMaxReplays is the poison guard: how often one dead letter may be replayed.
	DefaultMaxReplays = 3
)
