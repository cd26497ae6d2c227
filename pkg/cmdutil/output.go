package cmdutil

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/charmbracelet/lipgloss"
	"sigs.k8s.io/yaml"

	"github.com/come2us/opsctl/pkg/termsafe"
)

// Output formats accepted by -o.
const (
	OutputTable = "table"
	OutputJSON  = "json"
	OutputYAML  = "yaml"
)

// ValidateOutput checks the -o value.
func ValidateOutput(o string) error {
	switch o {
	case OutputTable, OutputJSON, OutputYAML:
		return nil
	}
	return FlagErrorf("invalid output format %q: want table, json or yaml", o)
}

// Table writes aligned columns. Every cell is sanitised for the terminal; on a colour terminal
// the header is bold.
type Table struct {
	w      *tabwriter.Writer
	header []string
	color  bool
	rows   int
}

// NewTable starts a table on w with the given column headers.
func (f *Factory) NewTable(w io.Writer, header ...string) *Table {
	t := &Table{w: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0), header: header, color: f.IOStreams.ColorEnabled()}
	return t
}

// Row adds a row; cells are sanitised and tabs inside them cannot break the layout.
func (t *Table) Row(cells ...string) {
	if t.rows == 0 && len(t.header) > 0 {
		h := strings.Join(t.header, "\t")
		if t.color {
			h = lipgloss.NewStyle().Bold(true).Render(h)
		}
		fmt.Fprintln(t.w, h)
	}
	t.rows++
	clean := make([]string, len(cells))
	for i, c := range cells {
		clean[i] = termsafe.String(c)
	}
	fmt.Fprintln(t.w, strings.Join(clean, "\t"))
}

// Flush writes the table; a table with no rows prints only its header.
func (t *Table) Flush() error {
	if t.rows == 0 && len(t.header) > 0 {
		fmt.Fprintln(t.w, strings.Join(t.header, "\t"))
	}
	return t.w.Flush()
}

// WriteJSON writes v as indented JSON. JSON strings escape control characters, so the output is
// terminal-safe as it is.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteNDJSON writes v as one line of JSON (for streams of records).
func WriteNDJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// WriteYAML writes v as YAML, through its JSON form so field names match -o json. Strings with
// control characters are quoted and escaped by the YAML encoder.
func WriteYAML(w io.Writer, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// Write prints v in the factory's -o format; table is rendered by the caller's table function.
func (f *Factory) Write(v any, table func(io.Writer) error) error {
	switch f.Output {
	case OutputJSON:
		return WriteJSON(f.IOStreams.Out, v)
	case OutputYAML:
		return WriteYAML(f.IOStreams.Out, v)
	}
	return table(f.IOStreams.Out)
}
