package replay

import (
	"context"
	"fmt"
	"sort"
)

// DLTs returns the names of the dead-letter topics on the cluster (names matching the
// configured pattern, the ledger excluded), sorted. Unlike Topics it reads no record: it is
// one metadata request, for a caller that decides per topic what to read (the redrive agent
// asks every pass).
func (e *Engine) DLTs(ctx context.Context) (_ []string, err error) {
	ctx, done := e.guard(ctx)
	defer done()
	defer func() { err = explain(ctx, err) }()
	tds, err := e.adm.ListTopics(fresh(ctx))
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	var out []string
	for _, td := range tds {
		if td.Err == nil && td.Topic != e.cfg.LedgerTopic && e.cfg.DLTPattern.MatchString(td.Topic) {
			out = append(out, td.Topic)
		}
	}
	sort.Strings(out)
	return out, nil
}

// TransactionalIDs returns every transactional id a replay of dltTopic uses, one per lane
// (see replayLanes): what a Kafka principal needs access to, and what a test fences to end a
// killed run's open transactions.
func TransactionalIDs(dltTopic string) []string {
	out := make([]string, replayLanes)
	for k := range out {
		out[k] = laneTransactionalID(dltTopic, k)
	}
	return out
}
