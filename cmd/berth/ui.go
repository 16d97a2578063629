package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newUICommand(host *hostFlag) *cobra.Command {
	return groupCommand("ui", "Log in to the web dashboard", newUITokenCommand(host))
}

func newUITokenCommand(host *hostFlag) *cobra.Command {
	return &cobra.Command{
		Use:   "token",
		Short: "Print a one-time login link to this manager's web dashboard",
		Long: `Print a link to the web dashboard of the manager this runs on
(https://ADDR:4270/ui/login?token=...). Opening it in a browser logs the browser in
to that manager's dashboard for 12 hours; the link works once, within 5 minutes.
The browser does not know the cluster's CA: accept the manager's certificate, or
trust the CA (certs/ca.pem in the data directory). An admin client certificate ('berth ca
client-cert') logs in without a link.`,
		Example: `  berth ui token
  xdg-open "$(berth ui token)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := host.client()
			if err != nil {
				return err
			}
			t, err := c.UIToken(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), t.URL)
			fmt.Fprintf(cmd.ErrOrStderr(), "Open the link within %s (by %s): it works once, and logs the browser in to this manager for 12 hours.\n",
				time.Until(t.ExpiresAt).Round(time.Minute), t.ExpiresAt.Local().Format(time.Kitchen))
			return nil
		},
	}
}
