package cmdutil

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/replay"
)

// ReplayConfig returns the replay engine's configuration of an opsctl context: its ledger topic,
// DLT pattern, allowlist, poison guard and timeout. newClient builds Kafka clients (the Factory's
// KafkaClient has this shape); actor and now may be empty and nil for the defaults.
func ReplayConfig(c *config.Context, newClient func(extra ...kgo.Opt) (*kgo.Client, error), actor string, now func() time.Time) replay.Config {
	return replay.Config{
		NewClient:   newClient,
		LedgerTopic: c.LedgerTopic(),
		DLTPattern:  c.DLTPattern(),
		Allowlist:   c.DLT.Allowlist,
		MaxReplays:  c.MaxReplays(),
		Actor:       actor,
		Now:         now,
		Timeout:     c.DLTTimeout(),
	}
}
