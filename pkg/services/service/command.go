package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/come2us/opsctl/pkg/buildinfo"
)

// Binary describes a service binary for Main.
type Binary[C any] struct {
	// Name is the binary's and the service's name, e.g. "order-service".
	Name string
	// Summary says in a sentence what the service does.
	Summary string
	// Config reads the configuration from the environment, recording every variable in e.
	Config func(e *Env) C
	// Run starts the service with cfg and serves until ctx ends.
	Run func(ctx context.Context, cfg C) error
}

// Exit codes of a service binary.
const (
	ExitOK     = 0 // graceful shutdown, or --help / --version
	ExitFailed = 1 // could not start, or a component failed
	ExitUsage  = 2 // bad arguments or configuration: nothing was started
)

// Main runs a service binary's command line and returns its exit code. A service is configured
// from the environment only, so the command line takes just --help (-h), which prints the flags
// and every environment variable the service reads with its default, and --version; either exits
// at once. Any other argument is refused before anything starts — a mistyped flag must not open a
// database or a port. Then the configuration is read (every problem reported at once) and the
// service runs until ctx ends.
func Main[C any](ctx context.Context, b Binary[C], args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(b.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	version := fs.Bool("version", false, "print the version and exit")
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		writeHelp(stdout, b)
		return ExitOK
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v; nothing was started (see %s --help)\n", b.Name, err, b.Name)
		return ExitUsage
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "%s: unexpected argument %q: the service is configured from the environment; nothing was started (see %s --help)\n",
			b.Name, fs.Arg(0), b.Name)
		return ExitUsage
	case *version:
		fmt.Fprintf(stdout, "%s %s\n", b.Name, buildinfo.Get().String())
		return ExitOK
	}
	e := NewEnv(getenv)
	cfg := b.Config(e)
	if err := e.Err(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\nnothing was started (see %s --help)\n", b.Name, err, b.Name)
		return ExitUsage
	}
	if err := b.Run(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", b.Name, err)
		return ExitFailed
	}
	return ExitOK
}

func writeHelp[C any](w io.Writer, b Binary[C]) {
	e := NewEnv(func(string) string { return "" })
	b.Config(e)
	fmt.Fprintf(w, "%s — %s\n\n", b.Name, b.Summary)
	fmt.Fprintf(w, "Usage:\n  %s [--help | --version]\n\n", b.Name)
	fmt.Fprintf(w, "The service is configured from the environment and runs until SIGTERM or SIGINT. It exits\n"+
		"0 after a graceful shutdown, 2 on bad arguments or configuration (nothing started), and 1 when\n"+
		"it cannot start or a component fails.\n\n")
	fmt.Fprintln(w, "Flags:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  -h, --help\tprint this help and exit")
	fmt.Fprintln(tw, "  --version\tprint the version and exit")
	_ = tw.Flush()
	fmt.Fprintln(w, "\nEnvironment:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, v := range e.Vars() {
		var note string
		switch {
		case v.Required:
			note = " (required)"
		case v.Default != "":
			note = fmt.Sprintf(" (default %q)", v.Default)
		}
		fmt.Fprintf(tw, "  %s\t%s%s\n", v.Name, strings.TrimSpace(v.Usage), note)
	}
	_ = tw.Flush()
}
