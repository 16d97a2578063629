package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berthd/berth/cli/filter"
	"github.com/berthd/berth/cli/format"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

func newServiceCommand(host *hostFlag) *cobra.Command {
	return groupCommand("service", "Inspect and manage services",
		newServiceLsCommand(host),
		newServicePsCommand(host),
		newServiceInspectCommand(host),
		newServiceScaleCommand(host),
		newServiceUpdateCommand(host),
		newServiceRollbackCommand(host),
		newServiceLogsCommand(host),
		newServiceCreateCommand(host),
		newServiceRmCommand(host),
	)
}

// shortID is how listings show IDs, as Docker's do.
func shortID(id string, noTrunc bool) string {
	if noTrunc || len(id) <= 12 {
		return id
	}
	return id[:12]
}

func newServiceLsCommand(host *hostFlag) *cobra.Command {
	var (
		opts  listFlags
		stack string
	)
	cmd := &cobra.Command{
		Use:     "ls [-q] [--stack STACK] [--filter KEY=VALUE]... [--format FORMAT]",
		Aliases: []string{"list"},
		Short:   "List the services",
		Long: `List the services. REPLICAS is running/desired: tasks meant to run that run, out of the
replicas (or, for a global service, of the nodes that should run one), with the per-node
cap when there is one. Below the table, a line per service that runs fewer says why, once
per distinct reason: tasks pending (the scheduler's reason) or failing (the error of the
latest attempt); 'berth service ps' shows each task.`,
		Example: `  berth service ls --filter mode=global
  berth service ls --format '{{.Name}}: {{.Replicas}}'
  berth service ls --format 'table {{.Name}}\t{{.Image}}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, filters, err := opts.parse(filter.ParseServices)
			if err != nil {
				return err
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			svcs, _, err := c.Services(cmd.Context(), api.ServiceFilter{Stack: stack}, api.Query{})
			if err != nil {
				return err
			}
			return serviceListing(opts.noTrunc).print(cmd.OutOrStdout(), f, opts.quiet, filter.Services(filters, svcs))
		},
	}
	opts.register(cmd, "Print service IDs only", "Print whole IDs", filter.ServiceKeys)
	cmd.Flags().StringVar(&stack, "stack", "", "Only the services of this stack")
	return cmd
}

// printServices is Docker's `service ls` table, then a line for each service that
// runs fewer tasks than it wants and knows why: Docker's columns stay as they are.
func printServices(w io.Writer, svcs []*api.ServiceStatus, noTrunc bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tMODE\tREPLICAS\tIMAGE\tPORTS")
	var notes []string
	for _, s := range svcs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", shortID(s.ID, noTrunc), s.Name, modeText(s.Spec.Deploy.Mode),
			replicasText(s), s.Spec.Image, portsText(s.Spec.Ports))
		if why := s.StuckReasons(); why != "" && s.Running < s.Desired {
			notes = append(notes, s.Name+": "+why)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.Join(notes, "\n"))
	}
	return nil
}

func modeText(mode string) string {
	switch mode {
	case spec.ModeReplicatedJob:
		return "replicated job"
	case spec.ModeGlobalJob:
		return "global job"
	case "":
		return spec.ModeReplicated
	}
	return mode
}

// replicasText is "3/5", with "(max 1 per node)" when the service has a cap and
// "(2/5 completed)" for jobs, as Docker writes them.
func replicasText(s *api.ServiceStatus) string {
	out := fmt.Sprintf("%d/%d", s.Running, s.Desired)
	if s.Spec.Deploy.Job() {
		out += fmt.Sprintf(" (%d/%d completed)", s.Completed, s.Desired)
	}
	if m := s.Spec.Deploy.Placement.MaxReplicasPerNode; m > 0 {
		out += fmt.Sprintf(" (max %d per node)", m)
	}
	return out
}

// portsText lists the ports published through the routing mesh, as Docker's
// `service ls` does ("*:8080->80/tcp").
func portsText(ports []spec.Port) string {
	var out []string
	for _, p := range ports {
		if p.Published == 0 || p.Mode == spec.PortModeHost {
			continue
		}
		out = append(out, fmt.Sprintf("*:%d->%d/%s", p.Published, p.Target, p.Protocol))
	}
	return strings.Join(out, ", ")
}

// psOptions are the flags of `service ps` and `stack ps`.
type psOptions struct{ listFlags }

func (o *psOptions) register(cmd *cobra.Command) {
	o.listFlags.register(cmd, "Print task IDs only", "Print whole IDs and errors", filter.TaskKeys)
}

// taskOutput is how a task listing prints, read from its flags before the managers
// are asked anything.
type taskOutput struct {
	format  format.Format
	filters filter.Args
	quiet   bool
	noTrunc bool
}

func (o *psOptions) output() (taskOutput, error) {
	f, filters, err := o.parse(filter.ParseTasks)
	return taskOutput{format: f, filters: filters, quiet: o.quiet, noTrunc: o.noTrunc}, err
}

func newServicePsCommand(host *hostFlag) *cobra.Command {
	var opts psOptions
	cmd := &cobra.Command{
		Use:   "ps [--no-trunc] [-q] [--filter KEY=VALUE]... [--format FORMAT] SERVICE...",
		Short: "List the tasks of services",
		Long: `List the tasks of services, per slot (per node for global services): the current task
first, its history below it (\_), with the node, the desired and current state, and the
error text: why a task failed, or why it waits for a node (cut to 30 characters unless
--no-trunc).`,
		Example: `  berth service ps --filter desired-state=running web_api
  berth service ps --format '{{.Name}} {{.Node}} {{.CurrentState}}' web_api`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := opts.output()
			if err != nil {
				return err
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			all, err := tasksOf(cmd.Context(), c, args, func(ref string) api.TaskFilter { return api.TaskFilter{Service: ref} })
			if err != nil {
				return err
			}
			return printTasks(cmd.OutOrStdout(), all, out, time.Now())
		},
	}
	opts.register(cmd)
	return cmd
}

// tasksOf lists the tasks of each ref (a service, a node...) in turn, as by says.
func tasksOf(ctx context.Context, c *api.Client, refs []string, by func(ref string) api.TaskFilter) ([]*api.TaskInfo, error) {
	var all []*api.TaskInfo
	for _, ref := range refs {
		tasks, _, err := c.Tasks(ctx, by(ref), api.Query{})
		if err != nil {
			return nil, err
		}
		all = append(all, tasks...)
	}
	return all, nil
}

// printTasks is Docker's `service ps` table: tasks come sorted by service, slot and
// age, so the first task of each slot is its current one and the others its history.
func printTasks(w io.Writer, tasks []*api.TaskInfo, out taskOutput, now time.Time) error {
	tasks = filter.Tasks(out.filters, tasks)
	switch {
	case out.quiet:
		for _, t := range tasks {
			fmt.Fprintln(w, shortID(t.ID, out.noTrunc))
		}
		return nil
	case out.format.Kind() != format.Default:
		return out.format.WriteRows(w, taskColumns, taskRows(tasks, out.format, out.noTrunc, now))
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tIMAGE\tNODE\tDESIRED STATE\tCURRENT STATE\tERROR")
	for _, r := range psRows(tasks) {
		t := r.task
		errText := taskError(t.Status.Err, out.noTrunc)
		if r.count > 1 {
			errText += fmt.Sprintf(" (x%d)", r.count)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", shortID(t.ID, out.noTrunc), r.name, t.Image, t.NodeHostname,
			title(string(t.DesiredState)), currentState(t.Status, now), errText)
	}
	return tw.Flush()
}

// psRow is one row of `service ps`: a task, or the newest of count tasks in a row of
// one slot that ended the same way with the same error.
type psRow struct {
	task  *api.TaskInfo
	name  string
	count int
}

// psRows names the rows, history under the slot's current task ( \_ ), and folds
// the attempts of a slot that keep failing with one error into one row: a task that
// cannot start is retried for as long as the service exists, and one line per
// distinct error says as much as a screenful of the same.
func psRows(tasks []*api.TaskInfo) []psRow {
	var rows []psRow
	prev := ""
	for _, t := range tasks {
		name, group := t.Name, taskGroup(t)
		if group == prev {
			if last := &rows[len(rows)-1]; sameFailure(last.task, t) {
				last.count++
				continue
			}
			name = " \\_ " + name
		}
		prev = group
		rows = append(rows, psRow{task: t, name: name, count: 1})
	}
	return rows
}

// sameFailure reports whether a and b, of one image, ended the same way with the
// same error: the attempts of an image that an update replaced stay a row of their own.
func sameFailure(a, b *api.TaskInfo) bool {
	return a.Status.Err != "" && a.Status.Err == b.Status.Err &&
		a.Status.State == b.Status.State && a.DesiredState == b.DesiredState && a.Image == b.Image
}

// currentState is "Running 5 minutes ago", as Docker writes it.
func currentState(s model.TaskStatus, now time.Time) string {
	out := title(string(s.State))
	if !s.Timestamp.IsZero() {
		out += " " + units.HumanDuration(now.Sub(s.Timestamp)) + " ago"
	}
	return out
}

func newServiceInspectCommand(host *hostFlag) *cobra.Command {
	var (
		tmpl   string
		pretty bool
	)
	cmd := &cobra.Command{
		Use:   "inspect [--pretty] [-f FORMAT] SERVICE...",
		Short: "Show services in detail",
		Long: `Show services (by ID, ID prefix or name) as a JSON array, like 'docker service inspect':
the service row (spec, previous spec, update status) with running/desired and the
reasons tasks wait for a node; --pretty prints a summary for people, -f a Go template
per service. Secret contents are never part of it.`,
		Example: `  berth service inspect -f '{{.Spec.Image}}' web_api`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInspect(cmd, host, args, tmpl, pretty,
				func(ctx context.Context, c *api.Client, ref string) (*api.ServiceStatus, error) {
					o, _, err := c.Service(ctx, ref, api.Query{})
					return o, err
				}, printServicePretty)
		},
	}
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", "Format the output: json (the default) or a Go template over each service")
	cmd.Flags().BoolVar(&pretty, "pretty", false, "Print a summary for people")
	return cmd
}

func printServicePretty(w io.Writer, s *api.ServiceStatus) {
	fmt.Fprintf(w, "ID:\t\t%s\n", s.ID)
	fmt.Fprintf(w, "Name:\t\t%s\n", s.Name)
	fmt.Fprintf(w, "Stack:\t\t%s\n", s.Stack)
	fmt.Fprintf(w, "Mode:\t\t%s\n", modeText(s.Spec.Deploy.Mode))
	fmt.Fprintf(w, "Replicas:\t%s\n", replicasText(s))
	fmt.Fprintf(w, "Image:\t\t%s\n", s.Spec.Image)
	fmt.Fprintf(w, "Spec version:\t%d\n", s.SpecVersion)
	if us := s.UpdateStatus; us.State != "" {
		fmt.Fprintf(w, "Update status:\n State:\t\t%s\n", us.State)
		if !us.StartedAt.IsZero() {
			fmt.Fprintf(w, " Started:\t%s\n", us.StartedAt.Format(time.RFC3339))
		}
		if !us.CompletedAt.IsZero() {
			fmt.Fprintf(w, " Completed:\t%s\n", us.CompletedAt.Format(time.RFC3339))
		}
		if us.Message != "" {
			fmt.Fprintf(w, " Message:\t%s\n", us.Message)
		}
	}
	if c := s.Spec.Deploy.Placement.Constraints; len(c) > 0 {
		fmt.Fprintf(w, "Placement:\n Constraints:\t%s\n", strings.Join(c, ", "))
	}
	if ports := portsText(s.Spec.Ports); ports != "" {
		fmt.Fprintf(w, "Ports:\t\t%s\n", ports)
	}
	for _, v := range s.Endpoint.VIPs {
		fmt.Fprintf(w, "Virtual IP:\t%s (network %s)\n", v.Addr, v.Network)
	}
	for _, p := range s.Pending {
		fmt.Fprintf(w, "Pending:\t%d task(s): %s\n", p.Tasks, p.Reason)
	}
}

func newServiceScaleCommand(host *hostFlag) *cobra.Command {
	var detach bool
	cmd := &cobra.Command{
		Use:   "scale SERVICE=REPLICAS...",
		Short: "Set the replicas of replicated services",
		Long: `Set the replicas of replicated services. Without --detach it shows the progress of each
until its tasks run (exit 0), or one's update fails (exit 2).`,
		Example: `  berth service scale web_nginx=5 web_api=2`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			type scale struct {
				ref string
				n   uint64
			}
			var todo []scale
			for _, a := range args {
				ref, n, ok := strings.Cut(a, "=")
				v, err := strconv.ParseUint(n, 10, 64)
				if !ok || ref == "" || err != nil {
					return fmt.Errorf("invalid scale %q: expected SERVICE=REPLICAS, e.g. web_nginx=5", a)
				}
				todo = append(todo, scale{ref, v})
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			var errs []error
			for _, s := range todo {
				resp, err := c.ScaleService(cmd.Context(), s.ref, s.n)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(w, "%s scaled to %d\n", s.ref, s.n)
				if !detach {
					errs = append(errs, waitService(cmd.Context(), c, w, s.ref, api.ChangeScale, resp.Index))
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "Exit immediately instead of waiting for the services to converge")
	return cmd
}

func newServiceRollbackCommand(host *hostFlag) *cobra.Command {
	var detach bool
	cmd := &cobra.Command{
		Use:   "rollback SERVICE",
		Short: "Return a service to its previous spec",
		Long: `Return a service to the spec it had before its last update; its tasks roll back
according to its rollback_config. Without --detach it shows the progress until the
rollback completed (exit 0) or paused (exit 2).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := host.client()
			if err != nil {
				return err
			}
			resp, err := c.RollbackService(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s: rollback requested\n", args[0])
			if detach {
				return nil
			}
			return waitService(cmd.Context(), c, w, args[0], api.ChangeRollback, resp.Index)
		},
	}
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "Exit immediately instead of waiting for the service to converge")
	return cmd
}
