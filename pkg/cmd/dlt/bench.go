package dlt

import (
	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/cmdutil"
)

// BenchOptions are the inputs of the hidden `opsctl dlt bench`.
type BenchOptions struct {
	Factory *cmdutil.Factory
}

// NewCmdBench returns the hidden `opsctl dlt bench`.
func NewCmdBench(f *cmdutil.Factory, runF func(*BenchOptions) error) *cobra.Command {
	opts := &BenchOptions{Factory: f}
	return &cobra.Command{
		Use:    "bench",
		Short:  "Measure replay throughput and stats speed on an in-process Kafka",
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return nil
		},
	}
}
