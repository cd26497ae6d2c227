// Package iostreams bundles a command's standard streams with what it needs to know about them:
// whether stdout is a terminal (tables, colour, progress bars and prompts only there) and
// whether colour is wanted at all (NO_COLOR, TERM=dumb).
package iostreams

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/mattn/go-isatty"
	"golang.org/x/term"
)

// IOStreams are the streams of one command run.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdinTTY, stdoutTTY, stderrTTY bool
	colorEnabled                   bool
	width                          int

	mu sync.Mutex
}

// System returns the process's streams with terminal detection.
func System() *IOStreams {
	s := &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		stdinTTY:  isatty.IsTerminal(os.Stdin.Fd()),
		stdoutTTY: isatty.IsTerminal(os.Stdout.Fd()),
		stderrTTY: isatty.IsTerminal(os.Stderr.Fd()),
		width:     80,
	}
	if s.stdoutTTY {
		if w, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil && w > 0 {
			s.width = w
		}
	}
	s.colorEnabled = s.stdoutTTY && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	return s
}

// Test returns streams backed by buffers: stdin, stdout and stderr. They are not terminals until
// SetTTY says so.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut, width: 120}, in, out, errOut
}

// SetTTY marks all three streams as terminals or not (for tests). Colour stays off.
func (s *IOStreams) SetTTY(tty bool) { s.stdinTTY, s.stdoutTTY, s.stderrTTY = tty, tty, tty }

// SetColorEnabled turns colour on or off.
func (s *IOStreams) SetColorEnabled(on bool) { s.colorEnabled = on }

// IsStdoutTTY reports whether stdout is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStdinTTY reports whether stdin is a terminal.
func (s *IOStreams) IsStdinTTY() bool { return s.stdinTTY }

// IsStderrTTY reports whether stderr is a terminal (progress bars are drawn there).
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// ColorEnabled reports whether output may be coloured.
func (s *IOStreams) ColorEnabled() bool { return s.colorEnabled }

// TerminalWidth is stdout's width in columns (80 when unknown).
func (s *IOStreams) TerminalWidth() int { return s.width }

// CanPrompt reports whether the user can answer a question: stdin and stdout are terminals.
func (s *IOStreams) CanPrompt() bool { return s.stdinTTY && s.stdoutTTY }

// ErrDeclined is returned when the user answers no to a confirmation.
var ErrDeclined = errors.New("declined")

// Confirm prints question and reads a yes/no answer from stdin; only "y" or "yes" confirm.
func (s *IOStreams) Confirm(question string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.Out, "%s [y/N]: ", question)
	line, err := bufio.NewReader(s.In).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("%w: no answer (%v)", ErrDeclined, err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return ErrDeclined
}

// Progress draws a one-line progress bar on stderr when it is a terminal, and nothing otherwise.
type Progress struct {
	s     *IOStreams
	label string
	total int
	done  int
	on    bool
}

// StartProgress begins a progress bar for total steps (0 for an unknown total).
func (s *IOStreams) StartProgress(label string, total int) *Progress {
	p := &Progress{s: s, label: label, total: total, on: s.stderrTTY}
	p.draw()
	return p
}

// Add advances the bar by n.
func (p *Progress) Add(n int) {
	p.done += n
	p.draw()
}

// SetTotal sets the number of steps, once it is known.
func (p *Progress) SetTotal(total int) {
	p.total = total
}

// Done clears the bar's line.
func (p *Progress) Done() {
	if p.on {
		fmt.Fprint(p.s.ErrOut, "\r\x1b[2K")
	}
}

func (p *Progress) draw() {
	if !p.on {
		return
	}
	if p.total <= 0 {
		fmt.Fprintf(p.s.ErrOut, "\r\x1b[2K%s %d", p.label, p.done)
		return
	}
	const width = 30
	filled := width * p.done / p.total
	if filled > width {
		filled = width
	}
	fmt.Fprintf(p.s.ErrOut, "\r\x1b[2K%s [%s%s] %d/%d", p.label, strings.Repeat("█", filled), strings.Repeat("░", width-filled), p.done, p.total)
}
