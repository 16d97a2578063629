package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/spec/svcflags"
)

func newServiceCreateCommand(host *hostFlag) *cobra.Command {
	var (
		opts   svcflags.Options
		lists  svcflags.Lists
		name   string
		detach bool
	)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a service of no stack",
		Long: `Create a service, as 'docker service create' does: its flags become a service spec, the
model a Compose service becomes, held by the managers to the same rules. The service
belongs to no stack and no source: it is named as given (--name), its tasks NAME.1,
NAME.2..., the networks, secrets and configs it names are the cluster's, and a named
volume (--mount type=volume,source=NAME,...) is the node's local volume NAME.

Without --detach it shows the progress of its tasks until they run (exit 0) or the
service's update fails (exit 2).`,
		Example: `  berth service create --name mydb --constraint 'node.labels.os == linux' postgres:latest
  berth service create --name mydb --mount type=volume,source=mydbdata,target=/var/lib/postgresql/data postgres:latest
  berth service create --mode global --name prometheus prom/prometheus:latest
  berth service create --replicas-max-per-node 1 --name nginx -p 8080:80 nginx:latest`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New("service create needs an image; see 'berth service create --help'")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return errors.New("service create needs --name: berth names no service for you")
			}
			finishOptions(cmd, &opts)
			opts.Image, opts.Args = args[0], args[1:]
			s, err := svcflags.Create(name, &opts, lists)
			if err != nil {
				return err
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			resp, err := c.CreateService(cmd.Context(), api.ServiceCreateRequest{Spec: s})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintln(w, resp.ID)
			if detach {
				return nil
			}
			return waitService(cmd.Context(), c, w, resp.ID, api.ChangeSpec, resp.Index)
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false) // what follows the image is the command's
	f.StringVar(&name, "name", "", "Service name")
	f.StringVar(&opts.Mode, "mode", "replicated", `Service mode ("replicated", "global", "replicated-job", "global-job")`)
	registerServiceFlags(f, &opts)
	registerListFlags(f, &lists, "", "Set")
	f.BoolVarP(&detach, "detach", "d", false, "Exit immediately instead of waiting for the service to converge")
	return cmd
}

// serviceWaiter is what waitService needs of the API client.
type serviceWaiter interface {
	WaitService(ctx context.Context, ref string, ch api.ServiceChange, after uint64, report func(*api.ServiceStatus)) error
}

// waitService shows how many tasks of a service run what a write asked for, as
// Docker's "overall progress" line on a terminal that is not one, until they all do.
func waitService(ctx context.Context, c serviceWaiter, w io.Writer, ref string, ch api.ServiceChange, after uint64) error {
	last := ""
	err := c.WaitService(ctx, ref, ch, after, func(s *api.ServiceStatus) {
		if line := overallProgress(s); line != last {
			fmt.Fprintln(w, line)
			last = line
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "verify: Service converged")
	return nil
}

func overallProgress(s *api.ServiceStatus) string {
	done, what := s.UpToDate, "tasks"
	if s.Spec.Deploy.Job() {
		done, what = s.Completed, "tasks completed"
	}
	line := fmt.Sprintf("overall progress: %d out of %d %s", done, s.Desired, what)
	if st := s.UpdateStatus.State; st != "" {
		line += " (" + strings.ReplaceAll(string(st), "_", " ") + ")"
	}
	if why := s.StuckReasons(); why != "" {
		line += "; " + why
	}
	return line
}
