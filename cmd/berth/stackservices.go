package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/cluster/api"
)

func newStackServicesCommand(host *hostFlag) *cobra.Command {
	var (
		format string
		quiet  bool
	)
	cmd := &cobra.Command{
		Use:   "services [-q] [--format json] STACK",
		Short: "List the services of a stack",
		Long: `List the services of a stack, as 'docker stack services': the columns of 'berth service
ls', whose --stack flag does the same.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
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
			if len(svcs) == 0 && format == "" {
				// Docker's words, on standard error: a script reading the listing sees none.
				fmt.Fprintf(cmd.ErrOrStderr(), "Nothing found in stack: %s\n", args[0])
				return nil
			}
			return printListing(cmd.OutOrStdout(), format, quiet, svcs, func(s *api.ServiceStatus) string { return s.ID }, printServices)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "Output format: json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Print service IDs only")
	return cmd
}
