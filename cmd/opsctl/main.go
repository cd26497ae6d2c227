// Command opsctl is the on-call console for the COME2US platform.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/come2us/opsctl/pkg/cmd/root"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/startup"
)

func main() {
	os.Exit(run())
}

func run() int {
	startup.Done() // the collector's own setting from here on (see package startup)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f := cmdutil.New()
	return cmdutil.Execute(ctx, root.NewCmdRoot(f), f)
}
