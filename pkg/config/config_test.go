package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/kafka"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadAndResolve(t *testing.T) {
	t.Parallel()
	p := write(t, `
current-context: prod
contexts:
  prod:
    readonly: true
    kafka:
      brokers: [b-1:9098, b-2:9098]
      sasl: {mechanism: AWS_MSK_IAM, region: ap-northeast-2}
    dlt:
      allowlist: [orders-failed]
  dev:
    kafka: {brokers: [localhost:9092]}
`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	name, ctx, err := c.Resolve("")
	if err != nil || name != "prod" || !ctx.Readonly || len(ctx.Kafka.Brokers) != 2 {
		t.Fatalf("resolve current: %s %+v %v", name, ctx, err)
	}
	if ctx.LedgerTopic() != dlt.DefaultLedgerTopic || ctx.MaxReplays() != 3 || !ctx.DLTPattern().MatchString("orders-failed.DLT") {
		t.Fatal("defaults not applied")
	}
	if _, _, err := c.Resolve("staging"); err == nil || !strings.Contains(err.Error(), "dev, prod") {
		t.Fatalf("unknown context error = %v", err)
	}
}

func TestLoadRejects(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"unknown field":         "contexts:\n  a:\n    kafak: {}\n",
		"bad pattern":           "contexts:\n  a:\n    dlt: {pattern: '('}\n",
		"bad sasl":              "contexts:\n  a:\n    kafka: {sasl: {mechanism: GSSAPI}}\n",
		"not yaml":              "contexts: [",
		"negative minRequests":  "contexts:\n  a:\n    prometheus: {minRequests: -1}\n",
		"negative failureLimit": "contexts:\n  a:\n    canary: {failureLimit: -2}\n",
		"bad bakeTime":          "contexts:\n  a:\n    canary: {bakeTime: soon}\n",
		"negative bakeTime":     "contexts:\n  a:\n    canary: {bakeTime: -5m}\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := Load(write(t, body)); err == nil {
				t.Fatal("accepted invalid config")
			}
		})
	}
}

func TestMissingAndEmptyFile(t *testing.T) {
	t.Parallel()
	c, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if name, _, err := c.Resolve(""); err != nil || name != "default" {
		t.Fatalf("empty config resolve = %q, %v", name, err)
	}
	if _, err := Load(write(t, "")); err != nil {
		t.Fatalf("empty file: %v", err)
	}
}

func TestSaveRoundTrip(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "sub", "config.yaml")
	c, _ := Load(p)
	c.Contexts["sandbox"] = &Context{Simulated: true, Kafka: kafka.Config{Brokers: []string{"127.0.0.1:9092"}}}
	c.CurrentContext = "sandbox"
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	c2, err := Load(p)
	if err != nil || !c2.Contexts["sandbox"].Simulated || c2.CurrentContext != "sandbox" {
		t.Fatalf("reload: %+v %v", c2, err)
	}
}

func TestDLTTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for body, want := range map[string]string{
		"contexts:\n  a:\n    dlt: {timeout: 45s}\n":  "",
		"contexts:\n  a:\n    dlt: {timeout: soon}\n": "dlt.timeout",
		"contexts:\n  a:\n    dlt: {timeout: -1s}\n":  "dlt.timeout",
	} {
		path := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if want != "" {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%q: %v, want an error about %s", body, err, want)
			}
			continue
		}
		if err != nil || c.Contexts["a"].DLTTimeout() != 45*time.Second || (&Context{}).DLTTimeout() != 0 {
			t.Errorf("%q: %v", body, err)
		}
	}
}

// TestTimeouts checks each section's timeout: parsed when set, refused on load when it is not a
// positive duration, and 0 (the package default applies) when unset.
func TestTimeouts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		key string
		get func(*Context) time.Duration
	}{
		{"gitops", (*Context).GitTimeout},
		{"prometheus", (*Context).PrometheusTimeout},
		{"argocd", (*Context).ArgoCDTimeout},
		{"kube", func(c *Context) time.Duration { return c.Kube.RequestTimeout() }},
	} {
		for value, bad := range map[string]bool{"45s": false, "soon": true, "-1s": true, "0s": true} {
			body := fmt.Sprintf("contexts:\n  a:\n    %s: {timeout: %s}\n", tc.key, value)
			path := filepath.Join(dir, "c.yaml")
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(path)
			if bad {
				if err == nil || !strings.Contains(err.Error(), tc.key+".timeout") {
					t.Errorf("%q: %v, want an error about %s.timeout", body, err, tc.key)
				}
				continue
			}
			if err != nil || tc.get(c.Contexts["a"]) != 45*time.Second || tc.get(&Context{}) != 0 {
				t.Errorf("%q: %v", body, err)
			}
		}
	}
}

// TestRedriveSectionKeepsItsLines checks a context's redrive policy is kept as YAML with this
// file's line numbers, and written back as it was.
func TestRedriveSectionKeepsItsLines(t *testing.T) {
	t.Parallel()
	p := write(t, `contexts:
  prod:
    kafka: {brokers: [b-1:9098]}
    redrive:
      rules:
        - name: locks
          topics: ["*.DLT"]
          errorCodes: [DB_LOCK_TIMEOUT]
  dev:
    kafka: {brokers: [localhost:9092]}
`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	_, prod, _ := c.Resolve("prod")
	_, dev, _ := c.Resolve("dev")
	if !prod.HasRedrive() || dev.HasRedrive() {
		t.Fatalf("HasRedrive: prod %v, dev %v", prod.HasRedrive(), dev.HasRedrive())
	}
	rules := prod.Redrive.Content[1]
	if prod.Redrive.Line != 5 || rules.Content[0].Line != 6 {
		t.Errorf("redrive section at line %d, its first rule at %d; want 5 and 6", prod.Redrive.Line, rules.Content[0].Line)
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	again, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	_, prod2, _ := again.Resolve("prod")
	_, dev2, _ := again.Resolve("dev")
	if !prod2.HasRedrive() || dev2.HasRedrive() || prod2.Redrive.Content[1].Content[0].Content[1].Value != "locks" {
		t.Errorf("after a save: prod %+v, dev has redrive %v", prod2.Redrive, dev2.HasRedrive())
	}
}

// userConfig is a hand-written config file: comments, flow style, a key order of its own.
const userConfig = `# opsctl contexts — on-call rota, edit with care
current-context: prod # the default at 3 a.m.

contexts:
  # production MSK; IAM auth
  prod:
    kafka: {brokers: [b-1:9098, b-2:9098]}   # two AZs
    readonly: true
  # developer laptop
  dev:
    kafka:
      brokers: [localhost:9092]
`

// TestUseContextChangesOnlyThatValue pins that switching context rewrites nothing but the value:
// re-marshalling the file used to drop every comment.
func TestUseContextChangesOnlyThatValue(t *testing.T) {
	t.Parallel()
	p := write(t, userConfig)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	c.CurrentContext = "dev"
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if want := strings.Replace(userConfig, "current-context: prod #", "current-context: dev #", 1); string(got) != want {
		t.Fatalf("file after use-context:\n%s\nwant:\n%s", got, want)
	}
}

// TestSaveLeavesOtherContextsAlone adds a context and removes another: the untouched one keeps
// its comments, flow style and line comments; a second Save with no change is a no-op.
func TestSaveLeavesOtherContextsAlone(t *testing.T) {
	t.Parallel()
	p := write(t, userConfig)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	c.Contexts["sandbox"] = &Context{Simulated: true, Kafka: kafka.Config{Brokers: []string{"127.0.0.1:39092"}}}
	delete(c.Contexts, "dev")
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	for _, keep := range []string{"# opsctl contexts — on-call rota, edit with care", "# the default at 3 a.m.",
		"# production MSK; IAM auth", "kafka: {brokers: [", "# two AZs"} {
		if !strings.Contains(string(got), keep) {
			t.Errorf("lost %q:\n%s", keep, got)
		}
	}
	if strings.Contains(string(got), "localhost:9092") || strings.Contains(string(got), "developer laptop") {
		t.Errorf("removed context dev is still there:\n%s", got)
	}
	again, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if again.CurrentContext != "prod" || !again.Contexts["sandbox"].Simulated || !again.Contexts["prod"].Readonly || len(again.Contexts) != 2 {
		t.Fatalf("reloaded: %+v", again)
	}
	before, _ := os.ReadFile(p)
	if err := again.Save(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(p)
	if string(before) != string(after) {
		t.Errorf("a save without changes rewrote the file:\n%s\n---\n%s", before, after)
	}
}

// TestSaveRefusesABrokenFile leaves a file it cannot parse as it is and says so.
func TestSaveRefusesABrokenFile(t *testing.T) {
	t.Parallel()
	p := write(t, "current-context: a\ncontexts: {a: {}}\n")
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("contexts: [unclosed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.CurrentContext = ""
	err = c.Save()
	if err == nil || !strings.Contains(err.Error(), "not changed") {
		t.Fatalf("save over a broken file: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "contexts: [unclosed\n" {
		t.Fatalf("broken file rewritten: %q", b)
	}
}

// TestSaveAfterLastContextRemoved: removing the only context leaves `contexts: {}`, and the next
// Save that adds one (the sandbox's next start) must work, as it must on a flow mapping the user
// wrote.
func TestSaveAfterLastContextRemoved(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		"current-context: sandbox\ncontexts:\n  sandbox:\n    kafka:\n      brokers: [127.0.0.1:9092]\n",
		"# mine\ncontexts: {prod: {kafka: {brokers: [b:9092]}}}\n",
	} {
		p := write(t, body)
		c, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Contexts["sandbox"]; ok {
			delete(c.Contexts, "sandbox")
			c.CurrentContext = ""
			if err := c.Save(); err != nil {
				t.Fatal(err)
			}
			if c, err = Load(p); err != nil {
				t.Fatal(err)
			}
		}
		c.Contexts["sandbox"] = &Context{Simulated: true, Kafka: kafka.Config{Brokers: []string{"127.0.0.1:39092"}}}
		c.CurrentContext = "sandbox"
		if err := c.Save(); err != nil {
			t.Fatalf("save after %q: %v", body, err)
		}
		again, err := Load(p)
		if err != nil || again.CurrentContext != "sandbox" || !again.Contexts["sandbox"].Simulated {
			t.Fatalf("reloaded %+v, %v", again, err)
		}
		if strings.Contains(body, "prod") && again.Contexts["prod"] == nil {
			t.Fatal("the user's flow-mapped context was lost")
		}
	}
}

// TestCanaryAnalysisSettings: the analysis settings load as written; an unset bake time is
// "unset" (the default applies), "0s" is an explicit none.
func TestCanaryAnalysisSettings(t *testing.T) {
	t.Parallel()
	c, err := Load(write(t, "contexts:\n  a:\n    prometheus: {minRequests: 250}\n    canary: {failureLimit: 3, bakeTime: 10m}\n  b:\n    canary: {bakeTime: 0s}\n  c: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Contexts["a"]
	if d, ok := a.CanaryBakeTime(); a.Prometheus.MinRequests != 250 || a.Canary.FailureLimit != 3 || d != 10*time.Minute || !ok {
		t.Errorf("context a: %+v %+v bake %s %v", a.Prometheus, a.Canary, d, ok)
	}
	if d, ok := c.Contexts["b"].CanaryBakeTime(); d != 0 || !ok {
		t.Errorf("bakeTime 0s = %s %v, want 0 set", d, ok)
	}
	if d, ok := c.Contexts["c"].CanaryBakeTime(); d != 0 || ok {
		t.Errorf("no bakeTime = %s %v, want unset", d, ok)
	}
}
