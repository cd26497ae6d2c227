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

	"github.com/come2us/opsctl/pkg/kafka"
	"github.com/come2us/opsctl/pkg/services/consumer"
	"github.com/come2us/opsctl/pkg/services/outbox"
)

// Env reads typed settings from environment variables, collecting every malformed one so a
// misconfigured pod reports all its mistakes at once. It also records every variable it was asked
// for, with its default and meaning, so a binary's --help lists exactly what it reads.
type Env struct {
	get  func(string) string
	errs []error
	vars []Var
	seen map[string]bool
}

// Var describes one environment variable a service reads.
type Var struct {
	Name string
	// Default is the value used when the variable is unset ("" when there is none).
	Default string
	// Usage says what the variable sets.
	Usage string
	// Required variables have no default; the service refuses to start without them.
	Required bool
}

// NewEnv reads from getenv (os.Getenv in main, a map in tests).
func NewEnv(getenv func(string) string) *Env { return &Env{get: getenv, seen: map[string]bool{}} }

func (e *Env) describe(key, def, usage string, required bool) {
	if !e.seen[key] {
		e.seen[key] = true
		e.vars = append(e.vars, Var{Name: key, Default: def, Usage: usage, Required: required})
	}
}

// Vars lists the variables read so far, in the order they were first read.
func (e *Env) Vars() []Var { return append([]Var(nil), e.vars...) }

// String returns key's value, or def when unset or empty.
func (e *Env) String(key, def, usage string) string {
	e.describe(key, def, usage, false)
	return e.lookup(key, def)
}

func (e *Env) lookup(key, def string) string {
	if v := strings.TrimSpace(e.get(key)); v != "" {
		return v
	}
	return def
}

// Secret records a variable holding a secret that is read elsewhere (or returns it raw, untrimmed);
// its value never appears in --help or errors.
func (e *Env) Secret(key, usage string) string {
	e.describe(key, "", usage, false)
	return e.get(key)
}

// Duration returns key parsed as a Go duration ("90s", "5m").
func (e *Env) Duration(key string, def time.Duration, usage string) time.Duration {
	e.describe(key, def.String(), usage, false)
	v := e.lookup(key, "")
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
func (e *Env) Int(key string, def int, usage string) int {
	e.describe(key, strconv.Itoa(def), usage, false)
	v := e.lookup(key, "")
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
func (e *Env) Bool(key string, def bool, usage string) bool {
	e.describe(key, strconv.FormatBool(def), usage, false)
	v := e.lookup(key, "")
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

// Required returns key's value and records an error when it is missing. The value is treated as
// a secret: it never appears in --help or errors.
func (e *Env) Required(key, usage string) string {
	e.describe(key, "", usage, true)
	v := e.lookup(key, "")
	if v == "" {
		e.errs = append(e.errs, fmt.Errorf("%s is required: %s", key, usage))
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

// OptionsFromEnv reads the settings every service shares (HTTP_ADDR, DATABASE_*, KAFKA_*,
// LOG_LEVEL, OTEL_EXPORTER_OTLP_ENDPOINT, SERVICE_VERSION, SHUTDOWN_TIMEOUT; --help lists them
// with their defaults). DATABASE_HOST and its companions are used instead of DATABASE_URL when it
// is unset and DATABASE_HOST is set — the chart's ConfigMap names the host and the Secret holds
// the password.
func OptionsFromEnv(name string, e *Env) Options {
	o := Options{
		Name:            name,
		Addr:            e.String("HTTP_ADDR", ":8080", "HTTP listen address"),
		DatabaseURL:     databaseURL(name, e),
		OTLPEndpoint:    e.String("OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP/HTTP collector for traces, e.g. http://otel-collector:4318 (tracing off when unset)"),
		Version:         e.String("SERVICE_VERSION", "", "version stamped on logs and traces (the build's version when unset)"),
		ShutdownTimeout: e.Duration("SHUTDOWN_TIMEOUT", 25*time.Second, "how long a graceful shutdown may take"),
		DeliveryTimeout: e.Duration("KAFKA_DELIVERY_TIMEOUT", 30*time.Second, "how long a publish may take before the outbox retries it"),
	}
	for _, b := range strings.Split(e.String("KAFKA_BROKERS", "localhost:9092", "comma-separated seed brokers"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			o.Kafka.Brokers = append(o.Kafka.Brokers, b)
		}
	}
	o.Kafka.ClientID = name
	o.Kafka.TLS.Enabled = e.Bool("KAFKA_TLS", false, "TLS to the brokers")
	o.Kafka.TLS.CAFile = e.String("KAFKA_TLS_CA_FILE", "", "CA bundle for the brokers' certificates (the system's when unset)")
	o.Kafka.SASL = kafka.SASL{
		Mechanism: e.String("KAFKA_SASL_MECHANISM", "", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM (no SASL when unset)"),
		Username:  e.String("KAFKA_SASL_USERNAME", "", "SASL user name"),
		// Read when connecting, so the password never sits in a config struct that gets logged.
		PasswordEnv: "KAFKA_SASL_PASSWORD",
	}
	e.Secret("KAFKA_SASL_PASSWORD", "SASL password (secret)")
	switch lv := strings.ToLower(e.String("LOG_LEVEL", "info", "debug, info, warn or error")); lv {
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
	def := strings.ReplaceAll(name, "-", "_")
	u := e.String("DATABASE_URL", "", "postgres://… or sqlite:<file>; sqlite:"+name+".db when neither it nor DATABASE_HOST is set")
	host := e.String("DATABASE_HOST", "", "PostgreSQL host, used when DATABASE_URL is unset")
	port := e.String("DATABASE_PORT", "5432", "PostgreSQL port (with DATABASE_HOST)")
	dbName := e.String("DATABASE_NAME", def, "database name (with DATABASE_HOST)")
	user := e.String("DATABASE_USER", def, "database user (with DATABASE_HOST)")
	password := e.Secret("DATABASE_PASSWORD", "database password (secret; with DATABASE_HOST)")
	sslMode := e.String("DATABASE_SSLMODE", "require", "PostgreSQL sslmode (with DATABASE_HOST)")
	switch {
	case u != "":
		return u
	case host == "":
		return "sqlite:" + name + ".db"
	}
	pu := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort(host, port),
		Path:     "/" + dbName,
		RawQuery: url.Values{"sslmode": {sslMode}}.Encode(),
	}
	return pu.String()
}

// ConsumerFromEnv reads the consumer's retry policy and its static group membership; the service
// fills in the rest of the config. The instance id is POD_NAME (the chart sets it from the pod's
// name), else HOSTNAME, which a container's runtime sets to the pod's name too; with neither the
// consumer is a dynamic member.
func ConsumerFromEnv(e *Env) consumer.Config {
	return consumer.Config{
		InstanceID:     instanceID(e),
		Attempts:       e.Int("CONSUMER_MAX_ATTEMPTS", 3, "tries of a record failing with an unclassified error before it is dead-lettered"),
		RetryFor:       e.Duration("CONSUMER_RETRY_FOR", 5*time.Minute, "how long a record failing transiently (lock, timeout, lost connection) is retried in place before it is dead-lettered"),
		Backoff:        e.Duration("CONSUMER_BACKOFF", 100*time.Millisecond, "wait after the first failed try, doubling"),
		MaxBackoff:     e.Duration("CONSUMER_MAX_BACKOFF", 5*time.Second, "cap of that wait"),
		AttemptTimeout: e.Duration("CONSUMER_ATTEMPT_TIMEOUT", 10*time.Second, "bound of one try"),
	}
}

func instanceID(e *Env) string {
	if id := e.String("POD_NAME", "", "the consumer's static group instance id: the pod's name, stable across restarts of its container"); id != "" {
		return id
	}
	return e.String("HOSTNAME", "", "the instance id when POD_NAME is unset")
}

// RelayFromEnv reads the outbox relay's timing; the service fills in the rest of the config.
func RelayFromEnv(e *Env) outbox.Config {
	return outbox.Config{
		PollInterval:    e.Duration("OUTBOX_POLL_INTERVAL", time.Second, "how often to look for rows nobody announced"),
		RetryBackoff:    e.Duration("OUTBOX_RETRY_BACKOFF", time.Second, "wait before retrying a failed publish, doubling"),
		MaxRetryBackoff: e.Duration("OUTBOX_MAX_RETRY_BACKOFF", time.Minute, "cap of that wait"),
		MaxAttempts:     e.Int("OUTBOX_MAX_ATTEMPTS", 30, "failed publishes after which a row is marked FAILED for an operator"),
	}
}
