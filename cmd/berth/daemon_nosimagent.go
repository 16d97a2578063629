//go:build !simagent

package main

import (
	"github.com/spf13/cobra"

	"github.com/berthd/berth/daemon"
)

// simAgentFlag: without the simagent build tag there is no --sim-agent (see
// daemon_simagent.go), and the daemon always runs the real agent.
func simAgentFlag(*cobra.Command) func(*daemon.Config) bool {
	return func(*daemon.Config) bool { return false }
}
