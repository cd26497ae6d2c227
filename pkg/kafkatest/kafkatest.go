// Package kafkatest starts an in-process Kafka cluster (kfake) for tests: the real protocol, real
// consumer groups, and fault injection through the returned *kfake.Cluster.
package kafkatest

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/event"
)

// New starts a one-broker cluster with topics created (event.Partitions partitions each) and
// closes it when tb ends. The KIP-848 heartbeat interval is shortened to 100ms so a consumer
// that joins a group gets its partitions at once rather than after the default five seconds.
func New(tb testing.TB, topics ...string) *kfake.Cluster {
	tb.Helper()
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.BrokerConfigs(map[string]string{"group.consumer.heartbeat.interval.ms": "100"}),
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(event.Partitions, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		tb.Fatalf("start kfake: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

// ClientOpts are connection options for c that react fast: quick metadata refreshes and retries,
// so produce faults surface in milliseconds instead of seconds, and a short fetch wait. (kfake
// occasionally leaves a long-polling fetch waiting for its full max wait although records arrived
// — seen after a group member was replaced — so the wait is kept short.)
func ClientOpts(c *kfake.Cluster) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.MetadataMinAge(50 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
	}
}

// Wait reads topic from the beginning until at least n records arrived and returns them; it fails
// the test after 30 seconds.
func Wait(tb testing.TB, c *kfake.Cluster, topic string, n int) []*kgo.Record {
	tb.Helper()
	cl, err := kgo.NewClient(append(ClientOpts(c), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		tb.Fatalf("consume %s: %v", topic, err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("%s holds %d records after 30s, want %d", topic, len(out), n)
		}
		out = append(out, f.Records()...)
	}
	return out
}

// Records returns every record topic holds now, reading up to the current end offsets.
func Records(tb testing.TB, c *kfake.Cluster, topic string) []*kgo.Record {
	tb.Helper()
	cl, err := kgo.NewClient(ClientOpts(c)...)
	if err != nil {
		tb.Fatalf("consume %s: %v", topic, err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		tb.Fatalf("end offsets of %s: %v", topic, err)
	}
	total := 0
	ends.Each(func(o kadm.ListedOffset) { total += int(o.Offset) })
	if total == 0 {
		return nil
	}
	return Wait(tb, c, topic, total)
}

// Lag returns how many records of topics group has not committed yet.
func Lag(tb testing.TB, c *kfake.Cluster, group string, topics ...string) int64 {
	tb.Helper()
	cl, err := kgo.NewClient(ClientOpts(c)...)
	if err != nil {
		tb.Fatalf("lag of %s: %v", group, err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		tb.Fatalf("end offsets: %v", err)
	}
	commits, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		tb.Fatalf("offsets of %s: %v", group, err)
	}
	var lag int64
	ends.Each(func(o kadm.ListedOffset) {
		at := int64(0)
		if c, ok := commits.Lookup(o.Topic, o.Partition); ok && c.At >= 0 {
			at = c.At
		}
		lag += max(0, o.Offset-at)
	})
	return lag
}
