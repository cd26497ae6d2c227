package service

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/consumer"
	"github.com/come2us/opsctl/pkg/outbox"
)

// Env reads typed settings from environment variables, collecting every malformed one so a
// misconfigured pod reports all its mistakes at once.
type Env struct {
	get  func(string) string
	errs []error
}

// NewEnv reads from getenv (os.Getenv in main, a map in tests).
func NewEnv(getenv func(string) string) *Env { return &Env{get: getenv} }

// String returns key's value, or def when unset or empty.
func (e *Env) String(key, def string) string {
	if v := strings.TrimSpace(e.get(key)); v != "" {
		return v
	}
	return def
}

// Duration returns key parsed as a Go duration ("90s", "5m").
func (e *Env) Duration(key string, def time.Duration) time.Duration {
	v := e.String(key, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want a positive duration such as 30s or 5m", key, v))
		return def
	}
	return d
}

// Int returns key parsed as a positive integer.
func (e *Env) Int(key string, def int) int {
	v := e.String(key, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want a positive integer", key, v))
		return def
	}
	return n
}

// Bool returns key parsed as a boolean (true/false/1/0).
func (e *Env) Bool(key string, def bool) bool {
	v := e.String(key, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want true or false", key, v))
		return def
	}
	return b
}

// Required returns key's value and records an error when it is missing.
func (e *Env) Required(key, why string) string {
	v := e.String(key, "")
	if v == "" {
		e.errs = append(e.errs, fmt.Errorf("%s is required: %s", key, why))
	}
	return v
}

// Err returns every problem found so far, or nil.
func (e *Env) Err() error {
	if len(e.errs) == 0 {
		return nil
	}
	return fmt.Errorf("configuration: %w", errors.Join(e.errs...))
}

// OptionsFromEnv reads the settings every service shares:
//
//	HTTP_ADDR                     listen address (":8080")
//	DATABASE_URL                  postgres://… or sqlite:<file> ("sqlite:<name>.db")
//	DATABASE_HOST, DATABASE_PORT, DATABASE_NAME, DATABASE_USER, DATABASE_PASSWORD, DATABASE_SSLMODE
//	                              used instead of DATABASE_URL when it is unset and DATABASE_HOST is
//	                              set (port 5432, name and user <name> with "_" for "-", sslmode
//	                              require) — the chart's ConfigMap names the host and the Secret
//	                              holds the password
//	KAFKA_BROKERS                 comma-separated seed brokers ("localhost:9092")
//	KAFKA_TLS, KAFKA_TLS_CA_FILE  TLS to the brokers
//	KAFKA_SASL_MECHANISM          PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM
//	KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD
//	KAFKA_DELIVERY_TIMEOUT        how long a publish may take before the outbox retries it (30s)
//	LOG_LEVEL                     debug, info, warn or error (info)
//	OTEL_EXPORTER_OTLP_ENDPOINT   OTLP/gRPC collector, e.g. http://otel-collector:4317 (tracing off when unset)
//	SERVICE_VERSION               version stamped on logs and traces (the build's version)
//	SHUTDOWN_TIMEOUT              how long a graceful shutdown may take (25s)
func OptionsFromEnv(name string, e *Env) Options {
	o := Options{
		Name:            name,
		Addr:            e.String("HTTP_ADDR", ":8080"),
		DatabaseURL:     databaseURL(name, e),
		OTLPEndpoint:    e.String("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
		Version:         e.String("SERVICE_VERSION", ""),
		ShutdownTimeout: e.Duration("SHUTDOWN_TIMEOUT", 25*time.Second),
		DeliveryTimeout: e.Duration("KAFKA_DELIVERY_TIMEOUT", 30*time.Second),
	}
	for _, b := range strings.Split(e.String("KAFKA_BROKERS", "localhost:9092"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			o.Kafka.Brokers = append(o.Kafka.Brokers, b)
		}
	}
	o.Kafka.ClientID = name
	o.Kafka.TLS.Enabled = e.Bool("KAFKA_TLS", false)
	o.Kafka.TLS.CAFile = e.String("KAFKA_TLS_CA_FILE", "")
	o.Kafka.SASL = config.SASL{
		Mechanism: e.String("KAFKA_SASL_MECHANISM", ""),
		Username:  e.String("KAFKA_SASL_USERNAME", ""),
		// Read when connecting, so the password never sits in a config struct that gets logged.
		PasswordEnv: "KAFKA_SASL_PASSWORD",
	}
	switch lv := strings.ToLower(e.String("LOG_LEVEL", "info")); lv {
	case "debug":
		o.LogLevel = slog.LevelDebug
	case "info":
		o.LogLevel = slog.LevelInfo
	case "warn", "warning":
		o.LogLevel = slog.LevelWarn
	case "error":
		o.LogLevel = slog.LevelError
	default:
		e.errs = append(e.errs, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", lv))
	}
	return o
}

func databaseURL(name string, e *Env) string {
	if u := e.String("DATABASE_URL", ""); u != "" {
		return u
	}
	host := e.String("DATABASE_HOST", "")
	if host == "" {
		return "sqlite:" + name + ".db"
	}
	def := strings.ReplaceAll(name, "-", "_")
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(e.String("DATABASE_USER", def), e.get("DATABASE_PASSWORD")),
		Host:     net.JoinHostPort(host, e.String("DATABASE_PORT", "5432")),
		Path:     "/" + e.String("DATABASE_NAME", def),
		RawQuery: url.Values{"sslmode": {e.String("DATABASE_SSLMODE", "require")}}.Encode(),
	}
	return u.String()
}

// ConsumerFromEnv reads the consumer retry policy; the service fills in the rest of the config.
//
//	CONSUMER_MAX_ATTEMPTS     tries per record before it is dead-lettered (3)
//	CONSUMER_BACKOFF          wait after the first failed try, doubling (100ms)
//	CONSUMER_ATTEMPT_TIMEOUT  bound of one try (10s)
func ConsumerFromEnv(e *Env) consumer.Config {
	return consumer.Config{
		Attempts:       e.Int("CONSUMER_MAX_ATTEMPTS", 3),
		Backoff:        e.Duration("CONSUMER_BACKOFF", 100*time.Millisecond),
		AttemptTimeout: e.Duration("CONSUMER_ATTEMPT_TIMEOUT", 10*time.Second),
	}
}

// RelayFromEnv reads the outbox relay's timing; the service fills in the rest of the config.
//
//	OUTBOX_POLL_INTERVAL       how often to look for rows nobody announced (1s)
//	OUTBOX_RETRY_BACKOFF       wait before retrying a failed publish, doubling (1s)
//	OUTBOX_MAX_RETRY_BACKOFF   cap of that wait (1m)
func RelayFromEnv(e *Env) outbox.Config {
	return outbox.Config{
		PollInterval:    e.Duration("OUTBOX_POLL_INTERVAL", time.Second),
		RetryBackoff:    e.Duration("OUTBOX_RETRY_BACKOFF", time.Second),
		MaxRetryBackoff: e.Duration("OUTBOX_MAX_RETRY_BACKOFF", time.Minute),
	}
}
