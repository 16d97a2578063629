package main

import (
	"fmt"
	"strings"

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

func newSwarmCACommand(host *hostFlag) *cobra.Command {
	return &cobra.Command{
		Use:   "ca",
		Short: "Print the cluster's root CA certificate",
		Long: `Print the cluster's root CA certificate (PEM), as 'docker swarm ca' does without flags.
Rotating the root CA (Docker's --rotate) is not part of berth yet.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := host.client()
			if err != nil {
				return err
			}
			cl, err := c.Cluster(cmd.Context())
			if err != nil {
				return err
			}
			if cl.RootCACert == "" {
				return fmt.Errorf("cluster %s has no root CA certificate: this is a bug in berth, please report it", cl.ID)
			}
			fmt.Fprintln(cmd.OutOrStdout(), strings.TrimSpace(cl.RootCACert))
			return nil
		},
	}
}
