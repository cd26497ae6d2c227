package dlt_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/cmd/root"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/goldentest"
	"github.com/come2us/opsctl/pkg/iostreams"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// harness is one kfake cluster with fixtures and a config file naming it in four contexts.
type harness struct {
	c   *kfake.Cluster
	cfg string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	t.Setenv("OPSCTL_ACTOR", "oncall@laptop")
	t.Setenv("NO_COLOR", "1")
	c := replaytest.NewCluster(t)
	addr := c.ListenAddrs()[0]
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	body := fmt.Sprintf(`current-context: dev
contexts:
  dev:
    kafka: {brokers: [%q]}
  strict:
    kafka: {brokers: [%q]}
    dlt: {allowlist: [orders-failed, payments-failed], maxReplays: 2}
  frozen:
    readonly: true
    kafka: {brokers: [%q]}
`, addr, addr, addr)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OPSCTL_CONFIG", cfg) // the root's --config flag resets Factory.ConfigPath to its default
	return &harness{c: c, cfg: cfg}
}

// seed writes the standard fixtures: 12 SAGA dead letters, 4 Spring and 3 Connect ones.
func (h *harness) seed(t *testing.T) {
	t.Helper()
	var recs []*kgo.Record
	for i := 1; i <= 12; i++ {
		code := "DB_LOCK_TIMEOUT"
		if i%3 == 0 {
			code = "STOCK_ROW_MISSING"
		}
		recs = append(recs, replaytest.Saga(int32(i%3), int64(i), code, 1+i%4, replaytest.Base.Add(time.Duration(i)*time.Minute)))
	}
	for i := 1; i <= 4; i++ {
		recs = append(recs, replaytest.Spring(int32(i%2), int64(100+i), replaytest.Base.Add(time.Duration(i)*time.Second)))
	}
	for i := 1; i <= 3; i++ {
		recs = append(recs, replaytest.Connect(0, int64(i), replaytest.Base.Add(time.Duration(i)*time.Second)))
	}
	replaytest.Produce(t, h.c, recs...)
}

type result struct {
	out, errOut string
	err         error
	code        int
}

// run executes opsctl with args; tty makes all three streams terminals, stdin is typed input.
func (h *harness) run(t *testing.T, tty bool, stdin string, args ...string) result {
	t.Helper()
	ios, in, out, errOut := iostreams.Test()
	ios.SetTTY(tty)
	in.WriteString(stdin)
	f := &cmdutil.Factory{IOStreams: ios, ConfigPath: h.cfg, Now: func() time.Time { return replaytest.Base.Add(30 * time.Minute) }}
	cmd := root.NewCmdRoot(f)
	cmd.SetArgs(args)
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return result{out: out.String(), errOut: errOut.String(), err: err, code: cmdutil.ExitCode(err)}
}

func (h *harness) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := h.run(t, false, "", args...)
	if r.err != nil {
		t.Fatalf("opsctl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.err, r.out, r.errOut)
	}
	return r.out
}

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// golden compares got with testdata/name.golden (rewritten with -update). Run and replay ids
// are random and replaced first.
func golden(t *testing.T, name, got string) {
	t.Helper()
	goldentest.Equal(t, name, []byte(uuidRE.ReplaceAllString(got, "<uuid>")))
}

// assertTerminalSafe fails when s holds anything a terminal would act on: C0 controls other than
// newline and tab, DEL, C1 controls, bidirectional overrides.
func assertTerminalSafe(t *testing.T, what, s string) {
	t.Helper()
	for i, r := range s {
		bad := (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) ||
			(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0xfeff
		if bad {
			lo, hi := max(0, i-40), min(len(s), i+40)
			t.Fatalf("%s: raw %U at byte %d: %q", what, r, i, s[lo:hi])
		}
	}
}

func ndjson(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 8<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not NDJSON: %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}

func headerOf(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}
