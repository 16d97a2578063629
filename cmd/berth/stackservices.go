package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/cli/filter"
	"github.com/berthd/berth/cli/format"
	"github.com/berthd/berth/cluster/api"
)

func newStackServicesCommand(host *hostFlag) *cobra.Command {
	var opts listFlags
	cmd := &cobra.Command{
		Use:   "services [-q] [--filter KEY=VALUE]... [--format FORMAT] STACK",
		Short: "List the services of a stack",
		Long: `List the services of a stack, as 'docker stack services': the columns of 'berth service
ls', whose --stack flag does the same.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, filters, err := opts.parse(filter.ParseServices)
			if err != nil {
				return err
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			svcs, _, err := c.Services(cmd.Context(), api.ServiceFilter{Stack: args[0]}, api.Query{})
			if err != nil {
				return err
			}
			if len(svcs) == 0 && f.Kind() == format.Default {
				// Docker's words, on standard error: a script reading the listing sees none.
				fmt.Fprintf(cmd.ErrOrStderr(), "Nothing found in stack: %s\n", args[0])
				return nil
			}
			return serviceListing(opts.noTrunc).print(cmd.OutOrStdout(), f, opts.quiet, filter.Services(filters, svcs))
		},
	}
	opts.register(cmd, "Print service IDs only", "Print whole IDs", filter.ServiceKeys)
	return cmd
}
