//go:build simagent

package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/bench/simagent"
	"github.com/berthd/berth/daemon"
)

// simAgentFlag adds the hidden --sim-agent of process tests and benchmarks. Only a
// binary built with -tags simagent has it, so that berth's own does not link the
// simulated agent. The function it returns sets cfg's agent to the simulated one
// when the flag is given, and says whether it did.
func simAgentFlag(cmd *cobra.Command) func(cfg *daemon.Config) bool {
	var on bool
	f := cmd.Flags()
	f.BoolVar(&on, "sim-agent", false, "Run a simulated agent (tests only): tasks assigned to this node are reported running, none is started")
	_ = f.MarkHidden("sim-agent")
	return func(cfg *daemon.Config) bool {
		if !on {
			return false
		}
		logger := cfg.Logger.With("component", "simulated-agent")
		logger.Warn("running a simulated agent: tasks are reported running, no container is started (tests only)")
		cfg.Agent = func(ctx context.Context, a daemon.AgentAPI) error {
			return simagent.New(simagent.Config{API: a, Logger: logger}).Run(ctx)
		}
		return true
	}
}
