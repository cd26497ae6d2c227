// Package kafkatest starts an in-process Kafka cluster (kfake) for tests: the real protocol, real
// consumer groups, and fault injection through the returned *kfake.Cluster.
package kafkatest

import (
	"testing"
	"time"

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
