package main

import (
	"bytes"
	"errors"
	"testing"
)

// TestErrorsKeepTheirLineBreaks: a multi-line error prints on several lines, not with a literal
// "\n", while terminal control sequences from the message stay neutralised.
func TestErrorsKeepTheirLineBreaks(t *testing.T) {
	var b bytes.Buffer
	writeError(&b, errors.New("working copy has uncommitted changes in /w:\n M values.yaml\x1b[2J\ncommit or stash them first"))
	want := "Error: working copy has uncommitted changes in /w:\n M values.yaml\\x1b[2J\ncommit or stash them first\n"
	if b.String() != want {
		t.Errorf("got  %q\nwant %q", b.String(), want)
	}
}
