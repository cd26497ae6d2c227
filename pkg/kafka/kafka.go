// Package kafka turns a context's Kafka settings into franz-go client options: brokers, TLS and
// SASL (PLAIN, SCRAM-SHA-256/512, or AWS MSK IAM). Every opsctl command and the services build
// their clients here, so authentication works the same everywhere.
package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// ErrNoBrokers means neither the context nor --brokers named a broker.
var ErrNoBrokers = errors.New("no Kafka brokers configured: set kafka.brokers in the context or pass --brokers")

// Options returns the client options for k: seed brokers, client id, TLS and SASL.
func Options(k Config) ([]kgo.Opt, error) {
	if len(k.Brokers) == 0 {
		return nil, ErrNoBrokers
	}
	id := k.ClientID
	if id == "" {
		id = "opsctl"
	}
	opts := []kgo.Opt{kgo.SeedBrokers(k.Brokers...), kgo.ClientID(id), kgo.DialTimeout(10 * time.Second)}
	if k.TLS.Enabled || k.TLS.CAFile != "" || k.TLS.CertFile != "" {
		cfg, err := tlsConfig(k.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	mech, err := saslMechanism(k.SASL)
	if err != nil {
		return nil, err
	}
	if mech != nil {
		opts = append(opts, mech)
	}
	return opts, nil
}

func tlsConfig(t TLS) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in per context
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka tls ca %s: no PEM certificates found", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func saslMechanism(s SASL) (kgo.Opt, error) {
	switch strings.ToUpper(s.Mechanism) {
	case "":
		return nil, nil
	case SASLPlain:
		return kgo.SASL(plain.Auth{User: s.Username, Pass: s.SASLPassword()}.AsMechanism()), nil
	case SASLScram256:
		return kgo.SASL(scram.Auth{User: s.Username, Pass: s.SASLPassword()}.AsSha256Mechanism()), nil
	case SASLScram512:
		return kgo.SASL(scram.Auth{User: s.Username, Pass: s.SASLPassword()}.AsSha512Mechanism()), nil
	case SASLAWSMSKIAM:
		creds := newAWSCredentials(s.Region)
		return kgo.SASL(aws.ManagedStreamingIAM(creds.get)), nil
	}
	return nil, fmt.Errorf("kafka sasl mechanism %q is not supported", s.Mechanism)
}
