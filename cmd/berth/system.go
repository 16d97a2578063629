package main

import (
	"github.com/spf13/cobra"

	"github.com/berthd/berth/cluster/api"
)

func newSystemCommand(host *hostFlag) *cobra.Command {
	cmd := groupCommand("system", "Commands berth runs on a node for clients elsewhere",
		newDialStdioCommand(host),
	)
	// Nothing in it is for typing yet: ssh:// clients run dial-stdio.
	cmd.Hidden = true
	return cmd
}

func newDialStdioCommand(host *hostFlag) *cobra.Command {
	return &cobra.Command{
		Use:   "dial-stdio",
		Short: "Connect standard input and output to this node's socket (what -H ssh:// runs)",
		Long: `Copy standard input to this node's socket and its answers to standard output, until
either side ends. 'berth -H ssh://user@host ...' runs it on the host through ssh, as
'docker -H ssh://' runs 'docker system dial-stdio'.`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, _, err := host.endpoint()
			if err != nil {
				return err
			}
			return api.DialStdio(cmd.Context(), e.Host, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
}
