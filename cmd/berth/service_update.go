package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/spec/svcflags"
)

func newServiceUpdateCommand(host *hostFlag) *cobra.Command {
	var (
		opts    svcflags.Options
		add, rm svcflags.Lists
		force   bool
		detach  bool
	)
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] SERVICE",
		Short: "Change a service",
		Long: `Change a service as 'docker service update' does: the flags change its current spec, and
the managers hold the result to a Compose service's rules; its tasks roll to it
according to its update config, and 'berth service rollback' returns to the spec before.
--force replaces every task even though nothing changed.

A service of a stack deployed from a source changed this way is drift: the source
reports it (and, with self-heal, reverts it); change the Compose files to keep it.

Without --detach it shows the progress of the tasks until they run the new spec (exit
0) or the update is paused or rolled back (exit 2).`,
		Example: `  berth service update --image nginx:1.27 web_nginx
  berth service update --replicas 3 --env-add LOG=debug --publish-add 8080:80 nginx
  berth service update --force web_nginx`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return errors.New("service update needs one service; see 'berth service update --help'")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			finishOptions(cmd, &opts)
			c, err := host.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			req := api.ServiceUpdateRequest{Force: force}
			if changesSpec(opts.Given) {
				cur, _, err := c.Service(ctx, args[0], api.Query{})
				if err != nil {
					return err
				}
				if req.Spec, err = svcflags.Update(&cur.Spec, &opts, rm, add); err != nil {
					return err
				}
			} else if !force {
				return fmt.Errorf("nothing to update for service %s: give flags that change it, or --force to replace its tasks", args[0])
			}
			resp, err := c.UpdateService(ctx, args[0], req)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintln(w, args[0])
			if detach {
				return nil
			}
			return waitService(ctx, c, w, args[0], api.ChangeSpec, resp.Index)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Image, "image", "", "Service image tag")
	f.StringVar(&opts.ArgsLine, "args", "", "Service command args")
	registerServiceFlags(f, &opts)
	registerListFlags(f, &add, "-add", "Add or update")
	registerListFlags(f, &rm, "-rm", "Remove (by key, target or name)")
	f.BoolVar(&force, "force", false, "Replace the tasks even though nothing changed")
	f.BoolVarP(&detach, "detach", "d", false, "Exit immediately instead of waiting for the service to converge")
	return cmd
}

// changesSpec reports whether the flags given change the spec: all but --force
// and --detach.
func changesSpec(given map[string]bool) bool {
	for f := range given {
		if f != "force" && f != "detach" {
			return true
		}
	}
	return false
}
