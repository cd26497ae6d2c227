package dlt

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/secret"
)

// ListOptions are the inputs of `opsctl dlt list`.
type ListOptions struct {
	Factory *cmdutil.Factory
	Session
	Topic     string
	Selection SelectionFlags
	Reveal    bool
}

// NewCmdList returns `opsctl dlt list TOPIC`.
func NewCmdList(f *cmdutil.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "list TOPIC",
		Short: "List a dead-letter topic's records, filtered",
		Long: `Stream the records of a dead-letter topic in partition and offset order, one row each:
partition, offset, time, key, errorSource, errorCode, orderId and original topic. Memory stays
bounded whatever the topic's size. With -o json each record is one line of JSON (NDJSON) with
its decoded value, secret fields masked unless --reveal.

--where takes an expression (expr-lang) over the value's JSON fields (errorCode, quantity,
orderId, ...) and record metadata (partition, offset, timestamp, key, headers, errorSource,
errorCode, originalTopic, replayCount, ...; all also under meta.*).`,
		Example: `  opsctl dlt list orders-failed.DLT --since 2h
  opsctl dlt list orders-failed.DLT --where 'errorCode == "DB_LOCK_TIMEOUT" && quantity > 1'
  opsctl dlt list orders-failed.DLT --partition 1 --offset 100-200 -o json | jq .orderId`,
		Args: cmdutil.UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Topic = args[0]
			opts.Selection.changed(cmd)
			if err := opts.Session.read(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	opts.Selection.register(cmd, "stop after this many records (0: all)")
	cmd.Flags().BoolVar(&opts.Reveal, "reveal", false, "show secret fields (payment keys, tokens) unmasked in -o json/yaml")
	return cmd
}

// listColumn is one column of the list table.
type listColumn struct {
	name  string
	width int
}

// listColumns are the table's fixed widths: rows stream out as they are read, so widths cannot
// be measured first.
func listColumns() []listColumn {
	return []listColumn{{"PARTITION", 9}, {"OFFSET", 10}, {"TIME", 20}, {"KEY", 20}, {"ERROR SOURCE", 22}, {"ERROR CODE", 26}, {"ORDER ID", 10}, {"ORIGINAL TOPIC", 0}}
}

// ListRow is one record in `dlt list -o json` (one line each).
type ListRow struct {
	Topic         string          `json:"topic"`
	Partition     int32           `json:"partition"`
	Offset        int64           `json:"offset"`
	Timestamp     time.Time       `json:"timestamp"`
	Key           string          `json:"key"`
	Format        dlt.Format      `json:"format"`
	ErrorSource   string          `json:"errorSource"`
	ErrorCode     string          `json:"errorCode"`
	ErrorMessage  string          `json:"errorMessage,omitempty"`
	OrderID       string          `json:"orderId,omitempty"`
	OriginalTopic string          `json:"originalTopic,omitempty"`
	ReplayCount   int             `json:"replayCount"`
	Value         json.RawMessage `json:"value,omitempty"`
	Problems      []string        `json:"problems,omitempty"`
}

func listRun(ctx context.Context, opts *ListOptions) error {
	f := opts.Factory
	sel, err := opts.Selection.Build(clock(f)())
	if err != nil {
		return err
	}
	if w := sinceWarning(sel, clock(f)()); w != "" {
		fmt.Fprintln(f.IOStreams.ErrOut, w)
	}
	s, err := openSession(f, opts.Session)
	if err != nil {
		return err
	}
	defer s.Close()
	mask := s.secrets
	if opts.Reveal {
		mask = nil
	}
	out := f.IOStreams.Out
	columns := listColumns()
	if f.Output == cmdutil.OutputTable {
		var hdr []string
		for _, c := range columns {
			hdr = append(hdr, padCell(c.name, c.width))
		}
		fmt.Fprintln(out, paintHeader(f, strings.TrimRight(strings.Join(hdr, "  "), " ")))
	}
	first := true
	sum, err := s.engine.List(ctx, opts.Topic, &sel, func(d *dlt.Record) error {
		switch f.Output {
		case cmdutil.OutputJSON:
			return writeJSON(out, listRow(d, mask), false)
		case cmdutil.OutputYAML:
			if !first {
				fmt.Fprintln(out, "---")
			}
			first = false
			return writeYAML(out, listRow(d, mask))
		}
		cells := []string{fmt.Sprint(d.Partition), fmt.Sprint(d.Offset), stamp(d.Timestamp), keyText(d.Key),
			d.ErrorSource, d.ErrorCode, d.Field("orderId"), d.OriginalTopic()}
		var row []string
		for i, c := range columns {
			row = append(row, padCell(sanitize(cells[i]), c.width))
		}
		_, err := fmt.Fprintln(out, strings.TrimRight(strings.Join(row, "  "), " "))
		return err
	})
	if err != nil {
		return engineError(err)
	}
	printWhereWarnings(f.IOStreams.ErrOut, sum.WhereErrors, sum.FirstWhereError, sum.WhereMissing)
	if f.IOStreams.IsStderrTTY() {
		more := ""
		if sum.Limited {
			more = " (--limit reached)"
		}
		fmt.Fprintf(f.IOStreams.ErrOut, "%d of %d records scanned selected%s\n", sum.Selected, sum.Scanned, more)
	}
	return nil
}

func listRow(d *dlt.Record, mask secret.Fields) ListRow {
	r := ListRow{
		Topic: d.Topic, Partition: d.Partition, Offset: d.Offset, Timestamp: d.Timestamp.UTC(), Key: keyText(d.Key),
		Format: d.Format, ErrorSource: d.ErrorSource, ErrorCode: d.ErrorCode, ErrorMessage: d.ErrorMessage,
		OrderID: d.Field("orderId"), OriginalTopic: d.OriginalTopic(), ReplayCount: d.ReplayCount, Problems: d.Problems,
	}
	if d.Fields != nil {
		if m, _, err := mask.MaskJSON(d.Value); err == nil {
			r.Value = m
		}
	}
	return r
}

// keyText shows a key as text when it is UTF-8, else as hex.
func keyText(k []byte) string {
	if k == nil {
		return ""
	}
	if utf8.Valid(k) {
		return string(k)
	}
	return fmt.Sprintf("0x%x", k)
}

// padCell pads a sanitised cell to width runes, cutting it with "…" when longer; width 0 leaves
// it as it is (the last column).
func padCell(s string, width int) string {
	if width == 0 {
		return s
	}
	return padRight(s, width)
}

func paintHeader(f *cmdutil.Factory, s string) string {
	if !f.IOStreams.ColorEnabled() {
		return s
	}
	return lipgloss.NewStyle().Bold(true).Render(s)
}
