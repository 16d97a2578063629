package main

import (
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/cluster/api"
)

// selfNode is the name `node ps` takes for the node the CLI talks to, as Docker's.
const selfNode = "self"

func newNodePsCommand(host *hostFlag) *cobra.Command {
	var opts psOptions
	cmd := &cobra.Command{
		Use:   "ps [--no-trunc] [-q] [--filter KEY=VALUE]... [--format FORMAT] [NODE...]",
		Short: "List the tasks on nodes (this one by default)",
		Long: `List the tasks the cluster placed on nodes (by ID, ID prefix or hostname; "self", the
default, is the node you talk to), as 'docker node ps': per slot, the current task
first and its history below it (\_), with the desired and current state and the error.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := opts.output()
			if err != nil {
				return err
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			if len(args) == 0 {
				args = []string{selfNode}
			}
			if i := slices.Index(args, selfNode); i >= 0 {
				info, err := c.Info(cmd.Context())
				if err != nil {
					return err
				}
				args[i] = info.NodeID
			}
			all, err := tasksOf(cmd.Context(), c, args, func(ref string) api.TaskFilter { return api.TaskFilter{Node: ref} })
			if err != nil {
				return err
			}
			return printTasks(cmd.OutOrStdout(), all, out, time.Now())
		},
	}
	opts.register(cmd)
	return cmd
}
