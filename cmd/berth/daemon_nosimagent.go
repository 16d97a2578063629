//go:build !simagent

package main

import (
	"github.com/spf13/cobra"

	"github.com/berthd/berth/cluster/node"
)

// simAgentFlag: without the simagent build tag there is no --sim-agent (see
// daemon_simagent.go), and the daemon always runs the real agent.
func simAgentFlag(*cobra.Command) func(*node.Config) bool {
	return func(*node.Config) bool { return false }
}
