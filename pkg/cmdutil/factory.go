// Package cmdutil is the plumbing every opsctl command shares: the Factory that hands a command
// its streams, configuration and clients; the global flags; error types that map to exit codes;
// output in table, JSON or YAML; and the read-only and confirmation guards of mutating commands.
package cmdutil

import (
	"fmt"
	"os"
	"os/user"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/iostreams"
	"github.com/come2us/opsctl/pkg/kafka"
)

// Factory gives commands what they need, resolved lazily so `opsctl version` never reads a config
// file or dials a broker.
type Factory struct {
	IOStreams *iostreams.IOStreams

	// Global flags, filled by the root command.
	ConfigPath  string
	ContextName string
	Brokers     []string
	Output      string
	Readonly    bool

	// Now is the clock; tests replace it.
	Now func() time.Time

	once    sync.Once
	cfg     *config.Config
	ctxName string
	ctx     *config.Context
	err     error
}

// New returns a Factory on the process's streams.
func New() *Factory {
	return &Factory{IOStreams: iostreams.System(), Now: time.Now, Output: "table"}
}

// Config loads the configuration file (once).
func (f *Factory) Config() (*config.Config, error) {
	f.load()
	if f.cfg == nil {
		return nil, f.err
	}
	return f.cfg, nil
}

// Context returns the selected context with flag overrides applied (--brokers, --readonly).
func (f *Factory) Context() (string, *config.Context, error) {
	f.load()
	if f.err != nil {
		return "", nil, f.err
	}
	return f.ctxName, f.ctx, nil
}

func (f *Factory) load() {
	f.once.Do(func() {
		path := f.ConfigPath
		if path == "" {
			if path, f.err = config.Path(); f.err != nil {
				return
			}
		}
		if f.cfg, f.err = config.Load(path); f.err != nil {
			return
		}
		if f.ctxName, f.ctx, f.err = f.cfg.Resolve(f.ContextName); f.err != nil {
			return
		}
		if len(f.Brokers) > 0 {
			f.ctx.Kafka.Brokers = f.Brokers
		}
		if f.ctx.Readonly {
			f.Readonly = true
		}
	})
}

// KafkaClient returns a franz-go client for the selected context; extra options are appended.
func (f *Factory) KafkaClient(extra ...kgo.Opt) (*kgo.Client, error) {
	_, ctx, err := f.Context()
	if err != nil {
		return nil, err
	}
	opts, err := kafka.Options(ctx.Kafka)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// Actor names who runs the command, user@host, for audit records and commit trailers.
func (f *Factory) Actor() string {
	name := os.Getenv("OPSCTL_ACTOR")
	if name != "" {
		return name
	}
	name = "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown"
	}
	return name + "@" + host
}
