// Command opsctl-sandbox runs the whole COME2US platform on this machine, simulated, and opens
// the opsctl console on it. `opsctl sandbox` runs it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	sandboxcmd "github.com/come2us/opsctl/pkg/cmd/sandbox"
	tuicmd "github.com/come2us/opsctl/pkg/cmd/tui"
	"github.com/come2us/opsctl/pkg/cmdutil"
)

func main() {
	os.Exit(run())
}

func run() int {
	// SIGHUP too: a closed terminal or `tmux kill-session` must stop the sandbox as Ctrl-C does,
	// so it takes its context out of the user's config file on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	f := cmdutil.New()
	// The sandbox opens the console on its simulated context once it is ready.
	return cmdutil.Execute(ctx, sandboxcmd.NewCmdStandalone(f, tuicmd.Run), f)
}
