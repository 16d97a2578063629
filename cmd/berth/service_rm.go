package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newServiceRmCommand(host *hostFlag) *cobra.Command {
	return &cobra.Command{
		Use:     "rm SERVICE...",
		Aliases: []string{"remove"},
		Short:   "Remove services",
		Long: `Remove services, of a stack or of none, as 'docker service rm' does; their tasks stop.
A service of a stack deployed from a source removed this way is drift: the source
reports it missing, and its next deploy (or self-heal) creates it again.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New("service rm needs at least one service; see 'berth service rm --help'")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := host.client()
			if err != nil {
				return err
			}
			var errs []error
			for _, ref := range args {
				if _, err := c.RemoveService(cmd.Context(), ref); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), ref)
			}
			return errors.Join(errs...)
		},
	}
}
