package dlt

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/termsafe"
)

// ShowOptions are the inputs of `opsctl dlt show`.
type ShowOptions struct {
	Factory *cmdutil.Factory
	Session
	Topic     string
	Partition int32
	Offset    int64
	Reveal    bool
	// Limit caps the value bytes shown in the table view.
	Limit int
}

// NewCmdShow returns `opsctl dlt show TOPIC PARTITION OFFSET`.
func NewCmdShow(f *cmdutil.Factory, runF func(*ShowOptions) error) *cobra.Command {
	opts := &ShowOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "show TOPIC PARTITION OFFSET",
		Short: "Show one dead letter: headers decoded, value pretty-printed, original coordinates",
		Long: `Show one dead letter in full: its error, original topic, partition, offset and time, every
header decoded (Spring's binary partition, offset and timestamp as numbers), and the value
pretty-printed as JSON, or as text, or as a hex dump with a text column. Payment keys and the
context's dlt.secretFields are masked unless --reveal. Large values are cut for display with a
marker (-o json carries them whole).`,
		Example: `  opsctl dlt show orders-failed.DLT 0 1234
  opsctl dlt show orders-failed.DLT 0 1234 -o json | jq .value.json`,
		Args: cmdutil.UsageArgs(cobra.ExactArgs(3)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Topic = args[0]
			p, err := strconv.ParseInt(args[1], 10, 32)
			if err != nil || p < 0 {
				return cmdutil.FlagErrorf("PARTITION %q is not a partition number", args[1])
			}
			o, err := strconv.ParseInt(args[2], 10, 64)
			if err != nil || o < 0 {
				return cmdutil.FlagErrorf("OFFSET %q is not an offset", args[2])
			}
			opts.Partition, opts.Offset = int32(p), o
			if opts.Limit < 1 {
				return cmdutil.FlagErrorf("--max-bytes must be positive")
			}
			if err := opts.Session.read(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return showRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Reveal, "reveal", false, "show secret fields (payment keys, tokens) unmasked")
	cmd.Flags().IntVar(&opts.Limit, "max-bytes", dlt.DefaultViewLimit, "cut the displayed value after this many bytes")
	return cmd
}

// ShowRecord is `dlt show -o json`.
type ShowRecord struct {
	dlt.Record
	Key         string       `json:"key"`
	KeyEncoding string       `json:"keyEncoding"`
	Headers     []dlt.Header `json:"headers"`
	Value       ShowValue    `json:"value"`
	Stacktrace  string       `json:"stacktrace,omitempty"`
}

// ShowValue is a value in `dlt show -o json`: JSON values as JSON (secrets masked), text as a
// string, anything else as base64.
type ShowValue struct {
	Kind   string          `json:"kind"`
	Size   int             `json:"size"`
	JSON   json.RawMessage `json:"json,omitempty"`
	Text   string          `json:"text,omitempty"`
	Base64 string          `json:"base64,omitempty"`
	Masked bool            `json:"masked,omitempty"`
}

func showRun(ctx context.Context, opts *ShowOptions) error {
	f := opts.Factory
	s, err := openSession(f, opts.Session)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := s.engine.Get(ctx, opts.Topic, opts.Partition, opts.Offset)
	if err != nil {
		return engineError(err)
	}
	mask := s.secrets
	if opts.Reveal {
		mask = nil
	}
	headers := dlt.MaskHeaders(d.Headers, mask)
	view := dlt.ViewValue(d.Value, mask, opts.Limit)
	if f.Output != cmdutil.OutputTable {
		rec := ShowRecord{Record: *d, Headers: headers, Stacktrace: d.Stacktrace}
		rec.Key, rec.KeyEncoding = string(d.Key), "text"
		if !utf8.Valid(d.Key) {
			rec.Key, rec.KeyEncoding = base64.StdEncoding.EncodeToString(d.Key), "base64"
		}
		rec.Value = ShowValue{Kind: view.Kind, Size: view.Size, Masked: view.Masked}
		switch view.Kind {
		case dlt.ValueJSON:
			rec.Value.JSON, _, _ = mask.MaskJSON(d.Value)
		case dlt.ValueText:
			rec.Value.Text = string(d.Value)
		case dlt.ValueBinary:
			rec.Value.Base64 = base64.StdEncoding.EncodeToString(d.Value)
		}
		return write(f, rec, nil)
	}
	return showTable(f, f.IOStreams.Out, d, headers, view)
}

func showTable(f *cmdutil.Factory, w io.Writer, d *dlt.Record, headers []dlt.Header, view dlt.ValueView) error {
	line := func(label, value string) {
		fmt.Fprintf(w, "%s %s\n", paintHeader(f, padRight(label, 12)), value)
	}
	line("Record", sanitize(fmt.Sprintf("%s/%d/%d", d.Topic, d.Partition, d.Offset)))
	line("Time", stamp(d.Timestamp))
	line("Key", sanitize(keyText(d.Key)))
	line("Format", string(d.Format))
	line("Error", sanitize(d.ErrorSource+" / "+d.ErrorCode))
	if d.ErrorMessage != "" {
		line("Message", truncate(d.ErrorMessage, 300))
	}
	if !d.FailedAt.IsZero() {
		line("Failed at", stamp(d.FailedAt))
	}
	orig := "(unknown: no original-topic header; a replay needs --to)"
	if d.Origin.Topic != "" {
		orig = sanitize(d.Origin.Topic)
		if d.Origin.Partition >= 0 {
			orig += fmt.Sprintf(" partition %d", d.Origin.Partition)
		}
		if d.Origin.Offset >= 0 {
			orig += fmt.Sprintf(" offset %d", d.Origin.Offset)
		}
		if !d.Origin.Timestamp.IsZero() {
			orig += " at " + stamp(d.Origin.Timestamp)
		}
	}
	line("Original", orig)
	if d.Group != "" {
		line("Group", sanitize(d.Group))
	}
	if d.Exception != "" {
		line("Exception", sanitize(d.Exception))
	}
	line("Replays", strconv.Itoa(d.ReplayCount))
	if d.TargetGroup != "" {
		line("For group", sanitize(d.TargetGroup))
	}
	for _, p := range d.Problems {
		line("Problem", paint(f, "3", truncate(p, 200)))
	}

	fmt.Fprintf(w, "\n%s (%d)\n", paintHeader(f, "Headers"), len(headers))
	width := 0
	for _, h := range headers {
		width = max(width, min(utf8.RuneCountInString(termsafe.String(h.Key)), 40))
	}
	for _, h := range headers {
		text := h.Text
		if h.Key == dlt.HeaderExceptionStacktrace || h.Key == dlt.ConnectExceptionTrace {
			text = firstLine(text) + " (stack trace below)"
		}
		kind := ""
		if h.Kind != "string" {
			kind = "  (" + h.Kind + ")"
		}
		fmt.Fprintf(w, "  %s  %s%s\n", padRight(termsafe.String(h.Key), width), truncate(text, 160), kind)
	}

	fmt.Fprintf(w, "\n%s (%s, %d bytes%s)\n", paintHeader(f, "Value"), view.Kind, view.Size, maskedNote(view.Masked))
	if view.Text != "" {
		fmt.Fprintln(w, termsafe.Block(view.Text))
	}
	if view.Truncated {
		fmt.Fprintln(w, paint(f, "3", view.Marker+" (--max-bytes N, or -o json for all of it)"))
	}
	if d.Stacktrace != "" {
		lines := strings.Split(termsafe.Block(d.Stacktrace), "\n")
		more := ""
		if len(lines) > 30 {
			more = fmt.Sprintf("\n  … %d more lines (-o json for all)", len(lines)-30)
			lines = lines[:30]
		}
		fmt.Fprintf(w, "\n%s\n  %s%s\n", paintHeader(f, "Stack trace"), strings.Join(lines, "\n  "), more)
	}
	return nil
}

func maskedNote(masked bool) string {
	if masked {
		return ", secrets masked: --reveal to show"
	}
	return ""
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}
