package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/cluster/api"
)

func newStackCommand(host *hostFlag) *cobra.Command {
	return groupCommand("stack", "Deploy and manage stacks",
		newStackDeployCommand(host),
		newStackLsCommand(host),
		newStackPsCommand(host),
		newStackRmCommand(host),
		newStackConfigCommand(),
		newStackServicesCommand(host),
	)
}

func newStackDeployCommand(host *hostFlag) *cobra.Command {
	var (
		compose composeFlags
		prune   bool
		detach  bool
		timeout time.Duration
		dryRun  bool
		output  string
	)
	cmd := &cobra.Command{
		Use:     "deploy -c FILE [-c FILE]... [--prune] [--detach=false] [--env-file FILE]... STACK",
		Aliases: []string{"up"},
		Short:   "Deploy a stack, or update it",
		Long: `Deploy a stack from Compose files, like 'docker stack deploy': the files are read
exactly as 'berth stack config' reads them, and the whole stack (services, networks, secrets,
configs) is written in one raft command, so it is applied whole or not at all. Changed
services roll according to their update_config; a secret or config whose content
changed gets a new version, and the services using it roll to it.

With --detach=false, deploy then shows running/desired per service it created or
updated until each of them has converged, an update failed (paused or rolled back), or
--timeout passed; services the deploy left unchanged are not waited for.

With --dry-run nothing changes: deploy shows what it would change, field by field, and
where the new tasks would land (or why they cannot be placed), as 'berth diff' does,
with its exit codes: 0 no differences, 1 differences, 2 error.`,
		Example: `  berth stack deploy -c compose.yaml web
  berth stack deploy -c compose.yaml --dry-run web
  berth stack deploy -c compose.yaml -c compose.prod.yaml --env-file prod.env --prune --detach=false web`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return errors.New("stack deploy needs the stack's name; see 'berth stack deploy --help'")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outputText, outputJSON); err != nil {
				return err
			}
			if output != outputText && !dryRun {
				return errors.New("--format (-o) applies to --dry-run only: add --dry-run to see the plan as JSON")
			}
			stack, warnings, err := loadCompose(cmd.Context(), cmd.InOrStdin(), compose.files, compose.envFiles, args[0])
			printProblems(cmd.ErrOrStderr(), "warning", warnings)
			if err != nil {
				return err
			}
			req := api.NewStackDeployRequest(stack, prune)
			if dryRun {
				return livePlan(cmd, host, &api.PlanRequest{Stacks: []*api.StackDeployRequest{req}}, output)
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			resp, err := c.DeployStack(cmd.Context(), req)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			printDeploy(w, stack.Name, resp)
			if detach {
				return nil
			}
			return waitConverged(cmd.Context(), c, w, stack.Name, resp, timeout)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&compose.files, "compose-file", "c", nil, "Compose file (repeatable, merged in order; - reads standard input)")
	f.StringArrayVar(&compose.envFiles, "env-file", nil, "Read interpolation variables from a dotenv file (repeatable, later wins; the process environment wins over all files)")
	f.BoolVar(&prune, "prune", false, "Remove the stack's services and networks that the files no longer have")
	f.BoolVarP(&detach, "detach", "d", true, "Return once the stack is written; --detach=false waits until its services converge")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "With --detach=false: how long to wait for convergence")
	f.BoolVar(&dryRun, "dry-run", false, "Change nothing: show what the deploy would change and where tasks would land")
	formatFlag(cmd, &output, outputText, "Output format of --dry-run: text or json")
	_ = cmd.MarkFlagRequired("compose-file")
	return cmd
}

// printDeploy says what the deploy did, as 'docker stack deploy' does.
func printDeploy(w io.Writer, stack string, resp *api.StackDeployResponse) {
	changed := false
	for _, ch := range resp.Changes {
		verb := ""
		switch ch.Action {
		case api.ActionCreated:
			verb = "Creating"
		case api.ActionUpdated:
			verb = "Updating"
		case api.ActionRemoved:
			verb = "Removing"
		default:
			continue
		}
		changed = true
		switch {
		case ch.Kind == "secret" || ch.Kind == "config":
			fmt.Fprintf(w, "%s %s %s (version %d)\n", verb, ch.Kind, ch.Name, ch.Version)
		case ch.Action == api.ActionUpdated:
			fmt.Fprintf(w, "%s %s %s (id: %s)\n", verb, ch.Kind, ch.Name, ch.ID)
		default:
			fmt.Fprintf(w, "%s %s %s\n", verb, ch.Kind, ch.Name)
		}
	}
	if !changed {
		fmt.Fprintf(w, "Stack %s is up to date.\n", stack)
	}
}

// serviceWatcher is what waitConverged needs of the API client.
type serviceWatcher interface {
	WatchServices(ctx context.Context, stack string, fn func([]*api.ServiceStatus) (bool, error)) error
}

// changedServices names the services a deploy created or updated: the only ones it
// waits for, as 'docker stack deploy --detach=false' does. A service the deploy left
// alone may be pending for reasons of its own (no node qualifies) and is not this
// deploy's to wait for.
func changedServices(changes []api.ObjectChange) map[string]bool {
	out := map[string]bool{}
	for _, ch := range changes {
		if ch.Kind == "service" && (ch.Action == api.ActionCreated || ch.Action == api.ActionUpdated) {
			out[ch.Name] = true
		}
	}
	return out
}

// waitConverged shows running/desired per service the deploy changed as it changes,
// until each of them converged, one failed, or the timeout passed.
func waitConverged(ctx context.Context, c serviceWatcher, w io.Writer, stack string, resp *api.StackDeployResponse, timeout time.Duration) error {
	changed := changedServices(resp.Changes)
	if len(changed) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	shown := map[string]string{}
	var last []*api.ServiceStatus
	var failed []string
	err := c.WatchServices(ctx, stack, func(svcs []*api.ServiceStatus) (bool, error) {
		last = last[:0]
		failed = failed[:0]
		// A read from before the deploy (a stale follower) lacks what it created.
		done := true
		for _, s := range svcs {
			if !changed[s.Name] {
				continue
			}
			last = append(last, s)
			conv := api.ConvergenceOf(s, true)
			line := progressLine(s, conv)
			if shown[s.Name] != line {
				fmt.Fprintf(w, "%s: %s\n", s.Name, line)
				shown[s.Name] = line
			}
			switch conv {
			case api.Failed:
				failed = append(failed, s.Name)
			case api.Converging:
				done = false
			}
		}
		done = done && len(last) == len(changed)
		return done || len(failed) > 0, nil
	})
	switch {
	case len(failed) > 0:
		return fmt.Errorf("stack %s did not converge: the update of %s failed (see `berth service ps`)", stack, strings.Join(failed, ", "))
	case errors.Is(err, context.DeadlineExceeded):
		var waiting []string
		for _, s := range last {
			if api.ConvergenceOf(s, true) != api.Converged {
				line := fmt.Sprintf("%s %s running", s.Name, replicasText(s))
				for _, p := range s.Pending {
					line += fmt.Sprintf(", %d pending: %s", p.Tasks, p.Reason)
				}
				waiting = append(waiting, line)
			}
		}
		return fmt.Errorf("stack %s did not converge within %s: %s (see `berth service ps`)", stack, timeout, strings.Join(waiting, "; "))
	case err != nil:
		return err
	}
	fmt.Fprintf(w, "Stack %s converged.\n", stack)
	return nil
}

func progressLine(s *api.ServiceStatus, conv api.Convergence) string {
	line := replicasText(s) + " running"
	if s.Spec.Deploy.Job() {
		line = fmt.Sprintf("%d/%d completed", s.Completed, s.Desired)
	} else if s.UpToDate < s.Running {
		line += fmt.Sprintf(" (%d updated)", s.UpToDate)
	}
	if why := s.StuckReasons(); why != "" {
		line += "; " + why
	}
	switch {
	case conv == api.Failed:
		line += "; " + strings.ReplaceAll(string(s.UpdateStatus.State), "_", " ") + ": " + s.UpdateStatus.Message
	case s.UpdateStatus.State != "" && conv == api.Converging:
		line += "; " + strings.ReplaceAll(string(s.UpdateStatus.State), "_", " ")
	case conv == api.Converged:
		line += "; converged"
	}
	return line
}

func newStackLsCommand(host *hostFlag) *cobra.Command {
	var opts listFlags
	cmd := &cobra.Command{
		Use:     "ls [--format FORMAT]",
		Aliases: []string{"list"},
		Short:   "List the stacks",
		Example: `  berth stack ls --format '{{.Name}}'`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runListing(cmd, host, opts, stackListing(), func(ctx context.Context, c *api.Client) ([]*api.StackSummary, error) {
				stacks, _, err := c.Stacks(ctx, api.Query{})
				return stacks, err
			})
		},
	}
	cmd.Flags().StringVar(&opts.format, "format", "", formatUsage)
	return cmd
}

// printStacks is Docker's `stack ls` table.
func printStacks(w io.Writer, stacks []*api.StackSummary) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSERVICES")
	for _, s := range stacks {
		fmt.Fprintf(tw, "%s\t%d\n", s.Name, s.Services)
	}
	return tw.Flush()
}

func newStackPsCommand(host *hostFlag) *cobra.Command {
	var opts psOptions
	cmd := &cobra.Command{
		Use:   "ps [--no-trunc] [-q] [--filter KEY=VALUE]... [--format FORMAT] STACK",
		Short: "List the tasks of a stack",
		Long: `List the tasks of a stack's services, per slot: the current task first, its history
below it (\_), with the node, the desired and current state, and the error text (why a
task failed, or why it waits for a node; cut to 30 characters unless --no-trunc).`,
		Example: `  berth stack ps --filter desired-state=running --filter node=node-2 web`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := opts.output()
			if err != nil {
				return err
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			tasks, _, err := c.Tasks(cmd.Context(), api.TaskFilter{Stack: args[0]}, api.Query{})
			if err != nil {
				return err
			}
			return printTasks(cmd.OutOrStdout(), tasks, out, time.Now())
		},
	}
	opts.register(cmd)
	return cmd
}

func newStackRmCommand(host *hostFlag) *cobra.Command {
	var detach bool
	cmd := &cobra.Command{
		Use:     "rm [--detach=false] STACK...",
		Aliases: []string{"remove", "down"},
		Short:   "Remove stacks",
		Long: `Remove stacks: their services, networks, secrets and configs. The services' tasks are
stopped and removed by the orchestrator; with --detach=false the command waits until
they have stopped.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := host.client()
			if err != nil {
				return err
			}
			var errs []error
			for _, name := range args {
				if err := removeStack(cmd.Context(), c, cmd.OutOrStdout(), name, detach); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&detach, "detach", "d", true, "Return once the stack is removed; --detach=false waits until its tasks have stopped")
	return cmd
}
