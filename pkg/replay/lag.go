package replay

import (
	"context"
	"fmt"
	"sort"
)

// A dead-letter topic fills when the consumers of its original topic fail; whether they keep up
// at all is the other half of the picture. The lag of the original topic's consumer groups,
// beside the DLT's counts, tells "a few poison records" from "the consumer is down and
// everything it reads will be late or dead".

// OriginLag is the consumer lag on the topic a dead-letter topic's records came from.
type OriginLag struct {
	DLT string `json:"dlt"`
	// Topic is the original topic: the DLT's name without the suffix the DLT pattern matched.
	Topic string `json:"topic"`
	// Lag sums the lag of Groups on Topic: the offsets from each group's committed offset to
	// the end of each partition, as Kafka's own tools count it.
	Lag int64 `json:"lag"`
	// Groups are the consumer groups that consume Topic (offsets committed there, or
	// partitions assigned), by name. None means the lag is unknown: nothing Kafka sees reads
	// the topic.
	Groups []GroupLag `json:"groups"`
}

// Known reports whether some consumer group reads the original topic, so Lag means something.
func (l *OriginLag) Known() bool { return l != nil && len(l.Groups) > 0 }

// GroupLag is one consumer group's lag on one topic.
type GroupLag struct {
	Group string `json:"group"`
	Lag   int64  `json:"lag"`
}

// OriginTopic returns the topic whose failed records dltTopic holds, by its name: the name
// without what the DLT pattern matched at its end (orders-failed.DLT → orders-failed). It is ""
// when the pattern does not end the name or leaves nothing of it.
func (e *Engine) OriginTopic(dltTopic string) string {
	loc := e.cfg.DLTPattern.FindStringIndex(dltTopic)
	if loc == nil || loc[1] != len(dltTopic) || loc[0] == 0 {
		return ""
	}
	return dltTopic[:loc[0]]
}

// OriginLags returns, by DLT name, the consumer lag on the original topic of each of dlts
// (see OriginTopic) that exists on the cluster; a DLT without one is absent. It reads every
// consumer group's lag once (kadm's Lag: describe, committed offsets, start and end offsets).
func (e *Engine) OriginLags(ctx context.Context, dlts []string) (_ map[string]*OriginLag, err error) {
	ctx, done := e.guard(ctx)
	defer done()
	defer func() { err = explain(ctx, err) }()
	out := map[string]*OriginLag{}
	if len(dlts) == 0 {
		return out, nil
	}
	ids, err := e.topicIDs(ctx)
	if err != nil {
		return nil, err
	}
	byOrigin := map[string][]*OriginLag{}
	for _, d := range dlts {
		t := e.OriginTopic(d)
		if _, ok := ids[t]; !ok || t == "" {
			continue
		}
		l := &OriginLag{DLT: d, Topic: t, Groups: []GroupLag{}}
		out[d] = l
		byOrigin[t] = append(byOrigin[t], l)
	}
	if len(byOrigin) == 0 {
		return out, nil
	}
	lags, err := e.adm.Lag(ctx) // no group named: every group
	if err != nil {
		return nil, fmt.Errorf("read the consumer groups' lag: %w", err)
	}
	names := make([]string, 0, len(lags))
	for g := range lags {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		gl := lags[g]
		if err := gl.Error(); err != nil {
			return nil, fmt.Errorf("read the lag of consumer group %s: %w", g, err)
		}
		for t, tl := range gl.Lag.TotalByTopic() {
			for _, l := range byOrigin[t] {
				l.Groups = append(l.Groups, GroupLag{Group: g, Lag: tl.Lag})
				l.Lag += tl.Lag
			}
		}
	}
	return out, nil
}

// Slowest returns the consumer group whose progress past the run's replayed records matters
// most, and how many records the run replayed to its topic: the run's --group, else the group
// with the most replayed records still pending. ok is false when no group reads any target.
func (o *Outcome) Slowest() (g GroupProgress, replayed int, ok bool) {
	var best *GroupProgress
	if o == nil {
		return g, 0, false
	}
	for _, tp := range o.Targets {
		for i := range tp.Groups {
			c := &tp.Groups[i]
			if best == nil || (c.Targeted && !best.Targeted) || (c.Targeted == best.Targeted && c.Pending > best.Pending) {
				best, replayed = c, tp.Replayed
			}
		}
	}
	if best == nil {
		return g, 0, false
	}
	return *best, replayed, true
}
