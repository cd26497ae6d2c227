// Package dlt implements `opsctl dlt`: find dead-letter topics, inspect and group their records,
// and replay them exactly once. The commands are thin: pkg/replay does the work, here are flags,
// confirmation, and output — tables on a terminal, JSON or NDJSON for scripts, everything from
// Kafka passed through termsafe, secret fields masked unless --reveal.
package dlt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/secret"
	"github.com/come2us/opsctl/pkg/termsafe"
)

// NewCmdDLT returns `opsctl dlt` with its subcommands.
func NewCmdDLT(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlt <command>",
		Short: "Find, inspect, group and replay Kafka dead letters, exactly once",
		Long: `Work with dead-letter topics (names ending .DLT or -dlt, or the context's dlt.pattern)
written by the SAGA services, Spring Kafka or Kafka Connect.

Replays are exactly once across runs: each replayed record and its entry in the replay ledger
(opsctl.replays, compacted) are written in one Kafka transaction, a run skips what the ledger
already holds, and a second run of the same DLT fences the first.

Every command ends within --timeout (default: the context's dlt.timeout, else 30s) of a Kafka
broker that stops answering, and says what it did: a replay, how many records it committed
(running it again replays the rest, exactly once).

The commands run Go's garbage collector at GOGC=400 under a 512 MiB soft memory limit, which
saves about a quarter of a scan's CPU; set GOGC or GOMEMLIMIT to choose otherwise.`,
		Example: `  opsctl dlt topics
  opsctl dlt stats orders-failed.DLT
  opsctl dlt list orders-failed.DLT --since 2h --where 'errorCode == "DB_LOCK_TIMEOUT" && quantity > 1'
  opsctl dlt show orders-failed.DLT 0 1234
  opsctl dlt replay orders-failed.DLT --since 2h --dry-run
  opsctl dlt replay orders-failed.DLT --since 2h --reason "INC-42: lock fixed" --group product-service-group
  opsctl dlt history orders-failed.DLT
  opsctl dlt outcome 0190f1e2
  opsctl dlt redrive --policy default --once --dry-run`,
	}
	cmd.AddCommand(
		NewCmdTopics(f, nil),
		NewCmdStats(f, nil),
		NewCmdList(f, nil),
		NewCmdShow(f, nil),
		NewCmdReplay(f, nil),
		NewCmdHistory(f, nil),
		NewCmdOutcome(f, nil),
		NewCmdRedrive(f, nil),
	)
	cmd.PersistentFlags().Duration(timeoutFlag, 0,
		"stop when a Kafka broker has not answered for this long (default: the context's dlt.timeout, else 30s)")
	return cmd
}

// timeoutFlag is the dlt commands' --timeout.
const timeoutFlag = "timeout"

// Session is what every dlt command takes from the dlt command group's persistent flags.
type Session struct {
	// Timeout is --timeout: how long to wait for a silent broker; 0 means the context's
	// dlt.timeout, else the engine's default.
	Timeout time.Duration
}

// read takes --timeout from cmd's flags, refusing a duration that is not positive.
func (o *Session) read(cmd *cobra.Command) error {
	fl := cmd.Flags().Lookup(timeoutFlag)
	if fl == nil || !fl.Changed {
		return nil
	}
	d, err := cmd.Flags().GetDuration(timeoutFlag)
	if err != nil || d <= 0 {
		return cmdutil.FlagErrorf("--timeout %s: want a positive duration such as 30s or 2m; nothing was changed", fl.Value)
	}
	o.Timeout = d
	return nil
}

// timeout is --timeout, else the context's dlt.timeout, else 0 (the engine's default).
func (o Session) timeout(ctx *config.Context) time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return ctx.DLTTimeout()
}

// session is what a dlt command needs from the selected context.
type session struct {
	engine  *replay.Engine
	ctxName string
	ctx     *config.Context
	secrets secret.Fields
	// restoreGC undoes the collector settings of a dlt command's run (see
	// replay.TuneGCForBatch); it matters only where the command runs inside a longer process.
	restoreGC func()
}

// Close releases the engine.
func (s *session) Close() {
	s.engine.Close()
	s.restoreGC()
}

// openSession builds the replay engine for the selected context and the session's flags.
func openSession(f *cmdutil.Factory, o Session) (*session, error) {
	name, ctx, err := f.Context()
	if err != nil {
		return nil, err
	}
	cfg := cmdutil.ReplayConfig(ctx, f.KafkaClient, f.Actor(), clock(f))
	cfg.Timeout = o.timeout(ctx)
	e, err := replay.New(cfg)
	if err != nil {
		return nil, err
	}
	return &session{engine: e, ctxName: name, ctx: ctx, secrets: secret.NewFields(ctx.DLT.SecretFields...),
		restoreGC: replay.TuneGCForBatch()}, nil
}

// clock is the factory's clock, or the system's when none was set.
func clock(f *cmdutil.Factory) func() time.Time {
	if f.Now != nil {
		return f.Now
	}
	return time.Now
}

// engineError turns engine errors about bad input into usage errors (exit 2), and says what a
// read stopped by a silent broker did: nothing.
func engineError(err error) error {
	if errors.Is(err, replay.ErrBadSelection) {
		return cmdutil.FlagErrorf("%v", err)
	}
	var se *replay.SilenceError
	if errors.As(err, &se) {
		return fmt.Errorf("%v; gave up, nothing was changed (--timeout or the context's dlt.timeout sets how long to wait)", se)
	}
	return err
}

// writeJSON writes v as JSON that is safe on a terminal: encoding/json escapes C0 controls but
// not DEL, C1 controls (U+009B is a CSI on some terminals) or bidirectional overrides, so those
// are escaped too. JSON allows \u escapes for any character, so the document means the same.
func writeJSON(w io.Writer, v any, indent bool) error {
	var b []byte
	var err error
	if indent {
		b, err = json.MarshalIndent(v, "", "  ")
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return err
	}
	b = append(escapeUnsafe(b, `\u%04x`), '\n')
	_, err = w.Write(b)
	return err
}

// writeYAML writes v as YAML through its JSON form, so field names match -o json. YAML cannot
// carry control characters at all, so every string is passed through termsafe.Block first:
// escapes become visible text like \x1b, newlines and tabs stay.
func writeYAML(w io.Writer, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(blockStrings(tree)); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	b := buf.Bytes()
	_, err = w.Write(escapeUnsafe(b, `\u%04x`))
	return err
}

func blockStrings(v any) any {
	switch t := v.(type) {
	case string:
		return termsafe.Block(strings.ReplaceAll(t, "\r\n", "\n"))
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[termsafe.String(k)] = blockStrings(e)
		}
		return out
	case []any:
		for i := range t {
			t[i] = blockStrings(t[i])
		}
	case json.Number: // keep numbers numbers, not quoted strings
		if i, err := t.Int64(); err == nil {
			return i
		}
		if f, err := t.Float64(); err == nil {
			return f
		}
		return t.String()
	}
	return v
}

// escapeUnsafe replaces DEL, C1 controls, bidirectional controls and BOMs with format's escape.
func escapeUnsafe(b []byte, format string) []byte {
	if !bytes.ContainsFunc(b, unsafeRune) && utf8.Valid(b) {
		return b
	}
	var out bytes.Buffer
	out.Grow(len(b) + 16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&out, `\x%02x`, b[i])
		case unsafeRune(r):
			fmt.Fprintf(&out, format, r)
		default:
			out.Write(b[i : i+size])
		}
		i += size
	}
	return out.Bytes()
}

func unsafeRune(r rune) bool {
	return r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) ||
		r == 0x200e || r == 0x200f || r == 0x061c || r == 0xfeff
}

// write prints v in the -o format; table is rendered by the caller.
func write(f *cmdutil.Factory, v any, table func(io.Writer) error) error {
	switch f.Output {
	case cmdutil.OutputJSON:
		return writeJSON(f.IOStreams.Out, v, true)
	case cmdutil.OutputYAML:
		return writeYAML(f.IOStreams.Out, v)
	}
	return table(f.IOStreams.Out)
}

// sanitize makes text from Kafka safe to print on one terminal line.
func sanitize(s string) string { return termsafe.String(s) }

// truncate sanitises s and cuts it to n runes.
func truncate(s string, n int) string { return termsafe.Truncate(s, n) }

// stamp renders a time for a table cell.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func stampPtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return stamp(*t)
}

// paint colours s when the terminal wants colour; never otherwise (pipes, NO_COLOR).
func paint(f *cmdutil.Factory, color, s string) string {
	if !f.IOStreams.ColorEnabled() {
		return s
	}
	return lipgloss.NewStyle().Foreground(lipgloss.Color(color)).Render(s)
}

func statusColor(status string) string {
	switch status {
	case replay.RunCompleted:
		return "2"
	case replay.RunPartial, replay.RunRunning, replay.RunCancelled:
		return "3"
	}
	return "1"
}

// padRight pads or cuts an already sanitised cell to width runes.
func padRight(s string, width int) string {
	n := utf8.RuneCountInString(s)
	if n > width {
		return string([]rune(s)[:width-1]) + "…"
	}
	return s + strings.Repeat(" ", width-n)
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
