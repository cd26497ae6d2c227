package dlt

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/iostreams"
	"github.com/come2us/opsctl/pkg/replay"
)

func testFactory() *cmdutil.Factory {
	ios, _, _, _ := iostreams.Test()
	return &cmdutil.Factory{IOStreams: ios, Now: func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }}
}

func parse(t *testing.T, cmd *cobra.Command, args ...string) error {
	t.Helper()
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	return cmd.Execute()
}

func TestReplayFlagsFillOptions(t *testing.T) {
	var got *ReplayOptions
	cmd := NewCmdReplay(testFactory(), func(o *ReplayOptions) error { got = o; return nil })
	err := parse(t, cmd, "orders-failed.DLT", "--since", "2h", "--partition", "1", "--partition", "2", "--offset", "10-",
		"--key", "", "--header", "tenant=kr", "--where", "quantity > 1", "--limit", "5", "--to", "orders-failed",
		"--group", "product-service-group", "--reason", "INC-1", "--force", "--rate", "50", "--max-replays", "5", "-y")
	if err != nil {
		t.Fatal(err)
	}
	f := got.Factory
	got.Factory = nil
	want := ReplayOptions{Topic: "orders-failed.DLT", To: "orders-failed", Group: "product-service-group",
		Reason: "INC-1", Force: true, Yes: true, MaxReplays: 5, Rate: 50,
		Selection: SelectionFlags{Since: "2h", Partitions: []int{1, 2}, Offset: "10-", KeySet: true, Headers: []string{"tenant=kr"}, Where: "quantity > 1", Limit: 5}}
	if !reflect.DeepEqual(want, *got) {
		t.Fatalf("options\n got %+v\nwant %+v", *got, want)
	}
	sel, err := got.Selection.Build(f.Now())
	if err != nil {
		t.Fatal(err)
	}
	if sel.Key == nil || *sel.Key != "" || !sel.Since.Equal(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)) || sel.Where == nil || sel.Offsets.From != 10 {
		t.Fatalf("selection %+v", sel)
	}
}

func TestFlagErrorsAreUsageErrors(t *testing.T) {
	tests := []struct {
		cmd  func(*cmdutil.Factory) *cobra.Command
		args []string
		want string
	}{
		{func(f *cmdutil.Factory) *cobra.Command {
			return NewCmdReplay(f, func(*ReplayOptions) error { return nil })
		}, []string{"t"}, "--reason is required"},
		{func(f *cmdutil.Factory) *cobra.Command {
			return NewCmdReplay(f, func(*ReplayOptions) error { return nil })
		}, []string{"t", "--dry-run", "--rate", "-1"}, "must not be negative"},
		{func(f *cmdutil.Factory) *cobra.Command { return NewCmdShow(f, func(*ShowOptions) error { return nil }) }, []string{"t", "p", "0"}, "not a partition"},
		{func(f *cmdutil.Factory) *cobra.Command { return NewCmdShow(f, func(*ShowOptions) error { return nil }) }, []string{"t", "0", "0", "--max-bytes", "0"}, "--max-bytes"},
		{func(f *cmdutil.Factory) *cobra.Command {
			return NewCmdHistory(f, func(*HistoryOptions) error { return nil })
		}, []string{"--limit", "-2"}, "--limit"},
	}
	for _, tt := range tests {
		err := parse(t, tt.cmd(testFactory()), tt.args...)
		if cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v (exit %d), want a usage error saying %q", tt.args, err, cmdutil.ExitCode(err), tt.want)
		}
	}
	bad := []SelectionFlags{{Since: "soon"}, {Until: "2026-13-01"}, {Since: "1h", Until: "2h"}, {Partitions: []int{-1}},
		{Offset: "x"}, {Headers: []string{"x"}}, {Where: "a =="}, {Limit: -1}}
	for _, s := range bad {
		if _, err := s.Build(time.Now()); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Errorf("%+v: %v is not a usage error", s, err)
		}
	}
}

// FuzzOutputIsTerminalSafe writes arbitrary strings through -o json and -o yaml: the output
// never carries a raw control or bidirectional character, and JSON stays JSON with the same
// content.
func FuzzOutputIsTerminalSafe(f *testing.F) {
	f.Add("\x1b[31mred\u009b2J\u202e\x00\xff")
	f.Add("line\nline\ttab\r")
	f.Add("del\x7f")
	f.Fuzz(func(t *testing.T, s string) {
		v := map[string]any{"s": s, s: []string{s}}
		var out bytes.Buffer
		if err := writeJSON(&out, v, false); err != nil {
			t.Fatal(err)
		}
		for _, r := range out.String() {
			if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
				t.Fatalf("raw %U in JSON %q", r, out.String())
			}
		}
		var back map[string]any
		if err := json.Unmarshal(out.Bytes(), &back); err != nil {
			t.Fatalf("not JSON: %q", out.String())
		}
		want, _ := json.Marshal(v)
		again, _ := json.Marshal(back)
		if !bytes.Equal(want, again) {
			t.Fatalf("content changed: %s vs %s", want, again)
		}
		out.Reset()
		if err := writeYAML(&out, v); err != nil {
			t.Fatal(err)
		}
		for _, doc := range []string{out.String()} {
			for _, r := range doc {
				if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
					t.Fatalf("raw %U in %q", r, doc)
				}
			}
		}
	})
}

// TestTimeoutPrecedence: --timeout wins over the context's dlt.timeout, which wins over the
// engine's default of 30s; a --timeout that is not a positive duration is a usage error.
func TestTimeoutPrecedence(t *testing.T) {
	sub := func(args ...string) *cobra.Command {
		t.Helper()
		root := NewCmdDLT(testFactory())
		list, _, err := root.Find([]string{"list"})
		if err != nil {
			t.Fatal(err)
		}
		if err := list.ParseFlags(args); err != nil {
			t.Fatal(err)
		}
		return list
	}
	withSetting := &config.Context{DLT: config.DLT{Timeout: "45s"}}
	tests := []struct {
		args []string
		ctx  *config.Context
		want time.Duration
	}{
		{nil, &config.Context{}, 0}, // the engine's DefaultTimeout, 30s
		{nil, withSetting, 45 * time.Second},
		{[]string{"--timeout", "5s"}, withSetting, 5 * time.Second},
		{[]string{"--timeout", "2m"}, &config.Context{}, 2 * time.Minute},
	}
	for _, tt := range tests {
		var s Session
		err := s.read(sub(tt.args...))
		if got := s.timeout(tt.ctx); err != nil || got != tt.want {
			t.Errorf("%v with dlt.timeout %q: %s %v, want %s", tt.args, tt.ctx.DLT.Timeout, got, err, tt.want)
		}
	}
	if replay.DefaultTimeout != 30*time.Second {
		t.Fatalf("the default timeout is %s", replay.DefaultTimeout)
	}
	var s Session
	if err := s.read(sub("--timeout", "0s")); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("--timeout 0s: %v", err)
	}
}
