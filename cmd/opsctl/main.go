// Command opsctl is the on-call console for the COME2US platform.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/come2us/opsctl/pkg/cmd/root"
	"github.com/come2us/opsctl/pkg/cmdutil"
)

func main() {
	os.Exit(run())
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f := cmdutil.New()
	return cmdutil.Execute(ctx, root.NewCmdRoot(f), f)
}
