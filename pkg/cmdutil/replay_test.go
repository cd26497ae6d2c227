package cmdutil

import (
	"testing"

	"github.com/come2us/opsctl/pkg/config"
)

func TestReplayConfig(t *testing.T) {
	c := &config.Context{DLT: config.DLT{LedgerTopic: "ops.ledger", Allowlist: []string{"orders-failed"}, MaxReplays: 5}}
	cfg := ReplayConfig(c, nil, "me@host", nil)
	if cfg.LedgerTopic != "ops.ledger" || cfg.MaxReplays != 5 || cfg.Actor != "me@host" || len(cfg.Allowlist) != 1 ||
		!cfg.DLTPattern.MatchString("x.DLT") {
		t.Fatalf("config %+v", cfg)
	}
}
