package dlt

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/replay"
)

// SelectionFlags are the record filters list, stats and replay share, as typed.
type SelectionFlags struct {
	Since, Until string
	Partitions   []int
	Offset       string
	Key          string
	KeySet       bool
	Headers      []string
	Where        string
	Limit        int
}

func (s *SelectionFlags) register(cmd *cobra.Command, limitUsage string) {
	fs := cmd.Flags()
	fs.StringVar(&s.Since, "since", "", "only records at or after this time: a duration back from now (30m, 2h, 7d) or RFC 3339")
	fs.StringVar(&s.Until, "until", "", "only records before this time: a duration back from now or RFC 3339")
	fs.IntSliceVar(&s.Partitions, "partition", nil, "only these partitions (repeatable)")
	fs.StringVar(&s.Offset, "offset", "", "only these offsets: N, FROM-TO (inclusive) or FROM-")
	fs.StringVar(&s.Key, "key", "", "only records with exactly this key")
	fs.StringArrayVar(&s.Headers, "header", nil, "only records with header KEY=VALUE (repeatable; all must match)")
	fs.StringVar(&s.Where, "where", "", `only records for which this expression is true, over value fields and metadata, e.g. 'errorCode == "DB_LOCK_TIMEOUT" && quantity > 1'`)
	fs.IntVar(&s.Limit, "limit", 0, limitUsage)
}

// changed records which flags the user set, so an explicit empty --key selects empty keys.
func (s *SelectionFlags) changed(cmd *cobra.Command) {
	s.KeySet = cmd.Flags().Changed("key")
}

// Build parses the flags into a selection; a bad value is a usage error naming the flag.
func (s *SelectionFlags) Build(now time.Time) (replay.Selection, error) {
	var sel replay.Selection
	var err error
	if s.Since != "" {
		if sel.Since, err = replay.ParseTime(s.Since, now); err != nil {
			return sel, cmdutil.FlagErrorf("--since: %v", err)
		}
	}
	if s.Until != "" {
		if sel.Until, err = replay.ParseTime(s.Until, now); err != nil {
			return sel, cmdutil.FlagErrorf("--until: %v", err)
		}
	}
	if !sel.Since.IsZero() && !sel.Until.IsZero() && !sel.Since.Before(sel.Until) {
		return sel, cmdutil.FlagErrorf("--since %s is not before --until %s: nothing would be selected", stamp(sel.Since), stamp(sel.Until))
	}
	for _, p := range s.Partitions {
		if p < 0 || p > math.MaxInt32 {
			return sel, cmdutil.FlagErrorf("--partition %d is not a partition number", p)
		}
		sel.Partitions = append(sel.Partitions, int32(p))
	}
	if s.Offset != "" {
		if sel.Offsets, err = replay.ParseOffsets(s.Offset); err != nil {
			return sel, cmdutil.FlagErrorf("--offset: %v", err)
		}
	}
	if s.KeySet {
		k := s.Key
		sel.Key = &k
	}
	for _, h := range s.Headers {
		m, err := replay.ParseHeaderMatch(h)
		if err != nil {
			return sel, cmdutil.FlagErrorf("--header: %v", err)
		}
		sel.Headers = append(sel.Headers, m)
	}
	if s.Where != "" {
		if sel.Where, err = replay.CompileWhere(s.Where); err != nil {
			return sel, cmdutil.FlagErrorf("%v", err)
		}
	}
	if s.Limit < 0 {
		return sel, cmdutil.FlagErrorf("--limit %d must not be negative", s.Limit)
	}
	sel.Limit = s.Limit
	return sel, nil
}

// whereWarnings says what the operator should know about how --where read the records: those
// it could not evaluate (left out), and value fields it names that some records lack (nil
// there).
func whereWarnings(n int64, first string, missing []replay.FieldMissing) []string {
	var out []string
	if n > 0 {
		out = append(out, sanitize(fmt.Sprintf("warning: --where could not be evaluated for %d records, which were left out (first: %s)", n, first)))
	}
	for _, m := range missing {
		out = append(out, sanitize(fmt.Sprintf("note: --where names %s, which %d of the %d records it was evaluated on lack (it is nil there)", m.Field, m.Missing, m.Of)))
	}
	return out
}

// printWhereWarnings writes whereWarnings to w, one a line.
func printWhereWarnings(w io.Writer, n int64, first string, missing []replay.FieldMissing) {
	for _, line := range whereWarnings(n, first, missing) {
		fmt.Fprintln(w, line)
	}
}

// sinceWarning says so when --since lies after now: only a dead letter stamped in the future
// could be selected.
func sinceWarning(sel replay.Selection, now time.Time) string {
	if sel.Since.IsZero() || !sel.Since.After(now) {
		return ""
	}
	return fmt.Sprintf("warning: --since %s is in the future (now is %s): only dead letters stamped later than that can be selected",
		stamp(sel.Since), stamp(now))
}
