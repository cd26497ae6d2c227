// Package config reads opsctl's configuration file: named contexts, each naming one
// environment's Kafka cluster, GitOps repository, Argo CD server, kube context and Prometheus.
//
// Precedence is flags > environment > config file > defaults; flags are applied by the command
// layer through Overrides, the environment and file here. The file lives at
// $OPSCTL_CONFIG, else $XDG_CONFIG_HOME/opsctl/config.yaml, else ~/.config/opsctl/config.yaml.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/kafka"
)

// Config is the whole configuration file.
type Config struct {
	CurrentContext string              `yaml:"current-context,omitempty" json:"currentContext,omitempty"`
	Contexts       map[string]*Context `yaml:"contexts,omitempty" json:"contexts,omitempty"`

	path string
}

// Context is one named environment.
type Context struct {
	// Readonly makes every mutating command refuse in this context, as --readonly does.
	Readonly   bool         `yaml:"readonly,omitempty" json:"readonly,omitempty"`
	Kafka      kafka.Config `yaml:"kafka,omitempty" json:"kafka"`
	DLT        DLT          `yaml:"dlt,omitempty" json:"dlt"`
	GitOps     GitOps       `yaml:"gitops,omitempty" json:"gitops"`
	ArgoCD     ArgoCD       `yaml:"argocd,omitempty" json:"argocd"`
	Kube       Kube         `yaml:"kube,omitempty" json:"kube"`
	Prometheus Prometheus   `yaml:"prometheus,omitempty" json:"prometheus"`
	Canary     Canary       `yaml:"canary,omitempty" json:"canary"`
	// Services maps a service key (order, payment, product) to its HTTP base URL, used to show an
	// order's current state next to its trace.
	Services map[string]string `yaml:"services,omitempty" json:"services,omitempty"`
	// Simulated marks a context served by `opsctl sandbox`; views say so wherever they show it.
	Simulated bool `yaml:"simulated,omitempty" json:"simulated,omitempty"`
	// Redrive is the context's redrive policy for `opsctl dlt redrive` and `opsctl agent`
	// (rules of DLT patterns, error codes, ages and a backoff ladder; see package redrive). It
	// is kept as YAML and read by the redrive package, so its problems name this file's lines.
	Redrive yaml.Node `yaml:"redrive,omitempty" json:"-"`
}

// DLT configures dead-letter handling.
type DLT struct {
	// Pattern is a regular expression matching dead-letter topic names.
	Pattern string `yaml:"pattern,omitempty" json:"pattern,omitempty"`
	// LedgerTopic is the compacted topic recording every replay.
	LedgerTopic string `yaml:"ledgerTopic,omitempty" json:"ledgerTopic,omitempty"`
	// Allowlist, when set, is the only set of topics a replay may write to.
	Allowlist []string `yaml:"allowlist,omitempty" json:"allowlist,omitempty"`
	// SecretFields are value fields masked on display unless --reveal.
	SecretFields []string `yaml:"secretFields,omitempty" json:"secretFields,omitempty"`
	// MaxReplays is how often one record may be replayed before --force is needed.
	MaxReplays int `yaml:"maxReplays,omitempty" json:"maxReplays,omitempty"`
	// Timeout is how long a dlt command (and the TUI's DLT screens) waits for a Kafka broker
	// that does not answer before it stops, as a Go duration ("30s", "2m"); empty means 30s.
	// The dlt commands' --timeout overrides it.
	Timeout string `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// GitOps names the repository whose Helm values carry canary weights.
type GitOps struct {
	// Repo is a clone URL; opsctl keeps a clone in its cache directory.
	Repo string `yaml:"repo,omitempty" json:"repo,omitempty"`
	// Dir is an existing working copy, used instead of Repo when set.
	Dir    string `yaml:"dir,omitempty" json:"dir,omitempty"`
	Branch string `yaml:"branch,omitempty" json:"branch,omitempty"`
	// Timeout bounds every git command (fetch, push, clone...) as a Go duration ("30s", "2m");
	// empty means 30s. The canary commands' --git-timeout overrides it.
	Timeout string `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// ArgoCD is how to reach Argo CD.
type ArgoCD struct {
	Server    string `yaml:"server,omitempty" json:"server,omitempty"`
	Token     string `yaml:"token,omitempty" json:"token,omitempty"`
	TokenEnv  string `yaml:"tokenEnv,omitempty" json:"tokenEnv,omitempty"`
	Insecure  bool   `yaml:"insecure,omitempty" json:"insecure,omitempty"`
	PlainText bool   `yaml:"plaintext,omitempty" json:"plaintext,omitempty"`
	GRPCWeb   bool   `yaml:"grpcWeb,omitempty" json:"grpcWeb,omitempty"`
	// Core reads Application objects straight from Kubernetes, like `argocd --core`.
	Core      bool   `yaml:"core,omitempty" json:"core,omitempty"`
	Namespace string `yaml:"namespace,omitempty" json:"namespace,omitempty"`
	// Timeout bounds connecting to Argo CD and each request, as a Go duration; empty means
	// 15s. The apps commands' --argocd-timeout overrides it.
	Timeout string `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Kube selects a kubeconfig context.
type Kube struct {
	Kubeconfig string `yaml:"kubeconfig,omitempty" json:"kubeconfig,omitempty"`
	Context    string `yaml:"context,omitempty" json:"context,omitempty"`
	// Namespace overrides the per-env namespace come2us-<env>.
	Namespace string `yaml:"namespace,omitempty" json:"namespace,omitempty"`
	// Timeout bounds each request to the Kubernetes API, as a Go duration; empty means 15s.
	Timeout string `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// RequestTimeout returns kube.timeout, 0 when unset (the kube package's default applies).
func (k Kube) RequestTimeout() time.Duration { return duration(k.Timeout) }

// Prometheus is where canary gates read metrics.
type Prometheus struct {
	URL      string            `yaml:"url,omitempty" json:"url,omitempty"`
	TokenEnv string            `yaml:"tokenEnv,omitempty" json:"tokenEnv,omitempty"`
	Queries  map[string]string `yaml:"queries,omitempty" json:"queries,omitempty"`
	// Timeout bounds one evaluation of the canary gates, all of its queries together, as a Go
	// duration; empty means 15s. What Prometheus has not answered by then is unknown, which
	// refuses to move traffic.
	Timeout string `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// MinRequests is the minimum number of canary requests in the window (1 minute) for the
	// traffic criteria (5xx, latency, business errors) to give a verdict; below it they are
	// unknown, which refuses to move traffic. 0 means 100.
	MinRequests int `yaml:"minRequests,omitempty" json:"minRequests,omitempty"`
}

// Canary is the analysis policy of the context's canaries.
type Canary struct {
	// FailureLimit is how many consecutive checks must breach a rollback criterion before
	// `canary watch --auto-rollback` rolls back; 0 means 2.
	FailureLimit int `yaml:"failureLimit,omitempty" json:"failureLimit,omitempty"`
	// BakeTime is how long a canary weight must have been committed before the next step
	// (step, set upwards, promote), as a Go duration; empty means 5m, "0s" turns it off.
	// Rollbacks are never held back.
	BakeTime string `yaml:"bakeTime,omitempty" json:"bakeTime,omitempty"`
}

// ErrNoContext means no context was named and the file has no current-context.
var ErrNoContext = errors.New("no context selected")

// Path returns the configuration file path for this environment.
func Path() (string, error) {
	if p := os.Getenv("OPSCTL_CONFIG"); p != "" {
		return p, nil
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("locate config: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "opsctl", "config.yaml"), nil
}

// Load reads the file at path. A missing file is an empty configuration, not an error.
func Load(path string) (*Config, error) {
	c := &Config{path: path, Contexts: map[string]*Context{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s is not valid: %w", path, err)
	}
	if c.Contexts == nil {
		c.Contexts = map[string]*Context{}
	}
	for name, ctx := range c.Contexts {
		if ctx == nil {
			c.Contexts[name] = &Context{}
			continue
		}
		if err := ctx.validate(); err != nil {
			return nil, fmt.Errorf("config %s, context %q: %w", path, name, err)
		}
	}
	return c, nil
}

// File returns the path the configuration was read from.
func (c *Config) File() string { return c.path }

// Names returns the context names, sorted.
func (c *Config) Names() []string {
	names := make([]string, 0, len(c.Contexts))
	for n := range c.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Resolve returns the context called name, or the current context when name is empty. A config
// with no contexts at all yields an empty context named "default", so flags alone can drive
// opsctl.
func (c *Config) Resolve(name string) (string, *Context, error) {
	if name == "" {
		name = c.CurrentContext
	}
	if name == "" {
		if len(c.Contexts) == 0 {
			return "default", &Context{}, nil
		}
		return "", nil, fmt.Errorf("%w: pass --context (one of %s) or set current-context in %s", ErrNoContext, strings.Join(c.Names(), ", "), c.path)
	}
	ctx, ok := c.Contexts[name]
	if !ok {
		return "", nil, fmt.Errorf("context %q is not in %s (known: %s)", name, c.path, strings.Join(c.Names(), ", "))
	}
	cp := *ctx
	return name, &cp, nil
}

// Save writes the configuration back atomically (temp file + rename), creating its directory,
// mode 0600 because a context may hold credentials. It edits the file rather than rewriting it:
// a changed current-context is spliced in place, and only the contexts that were added, changed
// or removed are re-encoded — every other context, comment, key order and blank line stays as
// the user wrote it.
func (c *Config) Save() error {
	if c.path == "" {
		return errors.New("config has no path")
	}
	old, err := os.ReadFile(c.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("save config: %w", err)
	}
	b, err := c.edit(old)
	if err != nil {
		return fmt.Errorf("save config %s: %w; the file was not changed", c.path, err)
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".config-*.yaml")
	if err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save config: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	if err := os.Rename(tmp.Name(), c.path); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	return nil
}

// edit returns old with c's state applied. An empty or missing file is written whole.
func (c *Config) edit(old []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(old, &doc); err != nil {
		return nil, fmt.Errorf("it is not valid YAML: %w", err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return yaml.Marshal(c)
	}
	root := doc.Content[0]
	if doc.Kind != yaml.DocumentNode || root.Kind != yaml.MappingNode {
		return nil, errors.New("its top level is not a mapping")
	}
	var onDisk Config
	if err := doc.Decode(&onDisk); err != nil {
		return nil, err
	}
	contextsChanged := !sameContexts(onDisk.Contexts, c.Contexts)
	if !contextsChanged && onDisk.CurrentContext == c.CurrentContext {
		return old, nil
	}
	// The common edit — `config use-context` — touches one scalar: splice it into the original
	// bytes, which keeps every other byte of the file.
	if !contextsChanged && onDisk.CurrentContext != "" && c.CurrentContext != "" {
		if b, err := gitops.EditScalars(old, gitops.ScalarEdit{Path: []string{"current-context"}, Kind: gitops.KindString, Value: c.CurrentContext}); err == nil {
			return b, nil
		}
	}
	if err := setKey(root, "current-context", c.CurrentContext); err != nil {
		return nil, err
	}
	if contextsChanged {
		if err := editContexts(root, onDisk.Contexts, c.Contexts); err != nil {
			return nil, err
		}
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(indentOf(old))
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// sameContexts reports whether two context maps hold the same settings, treating an empty entry
// and a nil one alike (Load turns the latter into the former).
func sameContexts(a, b map[string]*Context) bool {
	if len(a) != len(b) {
		return false
	}
	for name, x := range a {
		y, ok := b[name]
		if !ok || !reflect.DeepEqual(orEmpty(x), orEmpty(y)) {
			return false
		}
	}
	return true
}

func orEmpty(c *Context) *Context {
	if c == nil {
		return &Context{}
	}
	return c
}

// setKey sets a top-level string key, adding it when absent and removing it when value is empty.
func setKey(root *yaml.Node, key, value string) error {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != key {
			continue
		}
		if value == "" {
			root.Content = append(root.Content[:i], root.Content[i+2:]...)
			return nil
		}
		root.Content[i+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value,
			HeadComment: root.Content[i+1].HeadComment, LineComment: root.Content[i+1].LineComment}
		return nil
	}
	if value != "" {
		k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}
		v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
		root.Content = append([]*yaml.Node{k, v}, root.Content...)
	}
	return nil
}

// editContexts replaces, adds and removes the entries of the contexts mapping that differ between
// was and now, leaving every other entry's node (and its comments) as parsed.
func editContexts(root *yaml.Node, was, now map[string]*Context) error {
	var contexts *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "contexts" {
			contexts = root.Content[i+1]
		}
	}
	if contexts == nil {
		contexts = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "contexts"}, contexts)
	}
	if contexts.Kind != yaml.MappingNode {
		return errors.New("its contexts are not a mapping")
	}
	// A flow mapping — `contexts: {}`, which this function writes when the last context goes,
	// or one the user wrote on a line — becomes a block mapping as soon as it is edited.
	contexts.Style &^= yaml.FlowStyle
	kept := contexts.Content[:0]
	for i := 0; i+1 < len(contexts.Content); i += 2 {
		k, v := contexts.Content[i], contexts.Content[i+1]
		cur, ok := now[k.Value]
		if !ok {
			continue
		}
		if !reflect.DeepEqual(orEmpty(was[k.Value]), orEmpty(cur)) {
			var n yaml.Node
			if err := n.Encode(cur); err != nil {
				return fmt.Errorf("encode context %q: %w", k.Value, err)
			}
			n.HeadComment, n.LineComment, n.FootComment = v.HeadComment, v.LineComment, v.FootComment
			v = &n
		}
		kept = append(kept, k, v)
	}
	contexts.Content = kept
	names := make([]string, 0, len(now))
	for name := range now {
		if _, ok := was[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		var n yaml.Node
		if err := n.Encode(orEmpty(now[name])); err != nil {
			return fmt.Errorf("encode context %q: %w", name, err)
		}
		contexts.Content = append(contexts.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name}, &n)
	}
	if len(contexts.Content) == 0 {
		contexts.Style = yaml.FlowStyle
	}
	return nil
}

// indentOf guesses the file's indentation from its first indented line, so re-encoded parts match
// the rest; 2 when nothing is indented.
func indentOf(b []byte) int {
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if n := len(line) - len(trimmed); n > 0 && trimmed != "" && !strings.HasPrefix(trimmed, "#") && !strings.HasPrefix(trimmed, "- ") {
			return n
		}
	}
	return 2
}

func (ctx *Context) validate() error {
	if p := ctx.DLT.Pattern; p != "" {
		if _, err := regexp.Compile(p); err != nil {
			return fmt.Errorf("dlt.pattern %q: %w", p, err)
		}
	}
	switch strings.ToUpper(ctx.Kafka.SASL.Mechanism) {
	case kafka.SASLMechanismNo, kafka.SASLPlain, kafka.SASLScram256, kafka.SASLScram512, kafka.SASLAWSMSKIAM:
	default:
		return fmt.Errorf("kafka.sasl.mechanism %q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM", ctx.Kafka.SASL.Mechanism)
	}
	if ctx.DLT.MaxReplays < 0 {
		return fmt.Errorf("dlt.maxReplays must not be negative")
	}
	if ctx.Prometheus.MinRequests < 0 {
		return fmt.Errorf("prometheus.minRequests must not be negative, got %d", ctx.Prometheus.MinRequests)
	}
	if ctx.Canary.FailureLimit < 0 {
		return fmt.Errorf("canary.failureLimit must not be negative, got %d", ctx.Canary.FailureLimit)
	}
	if b := ctx.Canary.BakeTime; b != "" {
		if d, err := time.ParseDuration(b); err != nil || d < 0 {
			return fmt.Errorf("canary.bakeTime %q: want a duration such as 5m, or 0s for none", b)
		}
	}
	for _, t := range []struct{ key, value string }{
		{"dlt.timeout", ctx.DLT.Timeout},
		{"gitops.timeout", ctx.GitOps.Timeout},
		{"prometheus.timeout", ctx.Prometheus.Timeout},
		{"argocd.timeout", ctx.ArgoCD.Timeout},
		{"kube.timeout", ctx.Kube.Timeout},
	} {
		if t.value == "" {
			continue
		}
		if d, err := time.ParseDuration(t.value); err != nil || d <= 0 {
			return fmt.Errorf("%s %q: want a positive duration such as 30s or 2m", t.key, t.value)
		}
	}
	return nil
}

// duration parses a timeout validated on load; 0 means unset.
func duration(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0 // unset; a bad value was refused on load
	}
	return d
}

// CanaryBakeTime returns canary.bakeTime and whether it is set (unset: the canary package's
// default applies; "0s" is set and means no bake time).
func (ctx *Context) CanaryBakeTime() (time.Duration, bool) {
	if ctx.Canary.BakeTime == "" {
		return 0, false
	}
	d, _ := time.ParseDuration(ctx.Canary.BakeTime) // validated on load
	return max(d, 0), true
}

// PrometheusTimeout returns prometheus.timeout, 0 when unset (the gates' default then applies).
func (ctx *Context) PrometheusTimeout() time.Duration { return duration(ctx.Prometheus.Timeout) }

// ArgoCDTimeout returns argocd.timeout, 0 when unset (the argocd package's default applies).
func (ctx *Context) ArgoCDTimeout() time.Duration { return duration(ctx.ArgoCD.Timeout) }

// GitTimeout returns gitops.timeout, 0 when unset (the gitops package's default then applies).
func (ctx *Context) GitTimeout() time.Duration { return duration(ctx.GitOps.Timeout) }

// HasRedrive reports whether the context has a redrive section.
func (ctx *Context) HasRedrive() bool { return ctx.Redrive.Kind != 0 }

// DLTTimeout returns dlt.timeout, 0 when unset (the replay engine's default then applies).
func (ctx *Context) DLTTimeout() time.Duration { return duration(ctx.DLT.Timeout) }

// DLTPattern returns the compiled dead-letter topic pattern.
func (ctx *Context) DLTPattern() *regexp.Regexp {
	p := ctx.DLT.Pattern
	if p == "" {
		p = dlt.DefaultPattern
	}
	return regexp.MustCompile(p) // validated on load
}

// LedgerTopic returns the replay ledger topic.
func (ctx *Context) LedgerTopic() string {
	if ctx.DLT.LedgerTopic != "" {
		return ctx.DLT.LedgerTopic
	}
	return dlt.DefaultLedgerTopic
}

// MaxReplays returns the poison-guard limit.
func (ctx *Context) MaxReplays() int {
	if ctx.DLT.MaxReplays > 0 {
		return ctx.DLT.MaxReplays
	}
	return dlt.DefaultMaxReplays
}

// AuthToken returns the Argo CD token: ARGOCD_AUTH_TOKEN, then TokenEnv, then Token.
func (a ArgoCD) AuthToken() string {
	if t := os.Getenv("ARGOCD_AUTH_TOKEN"); t != "" {
		return t
	}
	if a.TokenEnv != "" {
		return os.Getenv(a.TokenEnv)
	}
	return a.Token
}
