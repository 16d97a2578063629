package main

import (
	"github.com/spf13/cobra"
)

// newSwarmCommand is Docker's `swarm` group. Its commands are built by the same
// constructors as berth's top-level init, join, leave... which stay as aliases, so the
// two spellings cannot drift apart.
func newSwarmCommand(host *hostFlag) *cobra.Command {
	return groupCommand("swarm", "Manage the cluster (Docker's 'swarm' commands)",
		newInitCommand(host),
		newJoinCommand(host),
		newJoinTokenCommand(host),
		newLeaveCommand(host),
		newUpdateCommand(host),
		newUnlockCommand(host),
		newUnlockKeyCommand(host),
		newSwarmCACommand(host),
		newSwarmBackupCommand(host),
		newSwarmRestoreCommand(),
	)
}
