package kafka

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestOptionsRejects(t *testing.T) {
	t.Parallel()
	if _, err := Options(Config{}); !errors.Is(err, ErrNoBrokers) {
		t.Fatalf("no brokers: %v", err)
	}
	if _, err := Options(Config{Brokers: []string{"x:1"}, SASL: SASL{Mechanism: "GSSAPI"}}); err == nil {
		t.Fatal("unsupported mechanism accepted")
	}
	if _, err := Options(Config{Brokers: []string{"x:1"}, TLS: TLS{CAFile: "/nonexistent"}}); err == nil {
		t.Fatal("missing CA accepted")
	}
}

func TestSCRAMAgainstKfake(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", "ops", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	for _, tc := range []struct {
		pass string
		ok   bool
	}{{"s3cret", true}, {"wrong", false}} {
		t.Setenv("KPASS", tc.pass)
		opts, err := Options(Config{Brokers: cluster.ListenAddrs(), SASL: SASL{Mechanism: "SCRAM-SHA-256", Username: "ops", PasswordEnv: "KPASS"}})
		if err != nil {
			t.Fatal(err)
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		err = cl.Ping(context.Background())
		cl.Close()
		if (err == nil) != tc.ok {
			t.Fatalf("password %q: ping err = %v", tc.pass, err)
		}
	}
}
