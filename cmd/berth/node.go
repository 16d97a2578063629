package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/cli/filter"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
)

func newNodeCommand(host *hostFlag) *cobra.Command {
	return groupCommand("node", "Manage the cluster's nodes",
		newNodeLsCommand(host),
		newNodeInspectCommand(host),
		newNodeRmCommand(host),
		newNodeRoleCommand(host, model.RoleManager),
		newNodeRoleCommand(host, model.RoleWorker),
		newNodeUpdateCommand(host),
		newNodePsCommand(host),
	)
}

func newNodeLsCommand(host *hostFlag) *cobra.Command {
	var opts listFlags
	cmd := &cobra.Command{
		Use:     "ls [-q] [--filter KEY=VALUE]... [--format FORMAT]",
		Aliases: []string{"list"},
		Short:   "List the nodes",
		Long: `List the cluster's nodes, as a manager sees them. MANAGER STATUS is Leader, Reachable
or Unreachable for managers and empty for workers; * marks the node you talk to.`,
		Example: `  berth node ls --filter role=manager
  berth node ls --filter node.label=os=linux --format '{{.Hostname}}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, filters, err := opts.parse(filter.ParseNodes)
			if err != nil {
				return err
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			nodes, _, err := c.Nodes(cmd.Context(), api.Query{})
			if err != nil {
				return err
			}
			self := ""
			if !opts.quiet {
				if info, err := c.Info(cmd.Context()); err == nil {
					self = info.NodeID
				}
			}
			return nodeListing(self).print(cmd.OutOrStdout(), f, opts.quiet, filter.Nodes(filters, nodes))
		},
	}
	opts.register(cmd, "Print node IDs only", "", filter.NodeKeys)
	return cmd
}

// printNodes is Docker's `node ls` table.
func printNodes(w io.Writer, nodes []*model.Node, self string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOSTNAME\tSTATUS\tAVAILABILITY\tMANAGER STATUS")
	for _, n := range nodes {
		id := n.ID
		if id == self {
			id += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, n.Hostname, title(string(n.Status.State)), title(string(n.Availability)), managerStatusText(n))
	}
	return tw.Flush()
}

func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func newNodeInspectCommand(host *hostFlag) *cobra.Command {
	var (
		tmpl   string
		pretty bool
	)
	cmd := &cobra.Command{
		Use:   "inspect [--pretty] [-f FORMAT] NODE...",
		Short: "Show nodes in detail",
		Long: `Show nodes (by ID, ID prefix or hostname) as a JSON array, like 'docker node inspect',
in a human-readable form with --pretty, or through a Go template with -f.`,
		Example: `  berth node inspect -f '{{.Hostname}} {{.Role}} {{.Labels}}' node-1`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInspect(cmd, host, args, tmpl, pretty,
				func(ctx context.Context, c *api.Client, ref string) (*model.Node, error) {
					o, _, err := c.Node(ctx, ref, api.Query{})
					return o, err
				}, printNodePretty)
		},
	}
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", "Format the output: json (the default) or a Go template over each node")
	cmd.Flags().BoolVar(&pretty, "pretty", false, "Human-readable output")
	return cmd
}

func printNodePretty(w io.Writer, n *model.Node) {
	fmt.Fprintf(w, "ID:\t\t\t%s\n", n.ID)
	fmt.Fprintf(w, "Hostname:\t\t%s\n", n.Hostname)
	fmt.Fprintf(w, "Role:\t\t\t%s\n", n.Role)
	fmt.Fprintf(w, "Availability:\t\t%s\n", title(string(n.Availability)))
	fmt.Fprintf(w, "Status:\t\t\t%s\n", title(string(n.Status.State)))
	if n.Status.Message != "" {
		fmt.Fprintf(w, "  Message:\t\t%s\n", n.Status.Message)
	}
	fmt.Fprintf(w, "Address:\t\t%s\n", n.Addr)
	if n.ManagerStatus != nil {
		fmt.Fprintf(w, "Manager Status:\t\t%s (raft address %s)\n", title(string(n.ManagerStatus.Reachability)), n.ManagerStatus.Addr)
	}
	fmt.Fprintf(w, "Platform:\t\t%s/%s\n", n.Platform.OS, n.Platform.Arch)
	if n.Engine != (model.NodeEngine{}) {
		fmt.Fprintf(w, "Engine Version:\t\t%s (protocol %d)\n", n.Engine.Version, n.Engine.Protocol)
	}
	fmt.Fprintf(w, "Resources:\t\t%s CPUs, %d bytes of memory\n", n.Resources.NanoCPUs, n.Resources.MemoryBytes)
	if len(n.Labels) > 0 {
		fmt.Fprintln(w, "Labels:")
		for _, k := range sortedKeys(n.Labels) {
			fmt.Fprintf(w, "  - %s=%s\n", k, n.Labels[k])
		}
	}
}

func newNodeRmCommand(host *hostFlag) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [--force] NODE...",
		Aliases: []string{"remove"},
		Short:   "Remove nodes from the cluster",
		Long: `Remove nodes from the cluster. A node that is up needs --force, and a manager must be
demoted first (or removed with --force, when the other managers keep raft's majority).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := host.client()
			if err != nil {
				return err
			}
			var errs []error
			for _, ref := range args {
				if err := c.RemoveNode(cmd.Context(), ref, force); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), ref)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Remove a node that is up, or a manager")
	return cmd
}

func newNodeRoleCommand(host *hostFlag, role model.NodeRole) *cobra.Command {
	use, short := "promote NODE...", "Make workers managers"
	if role == model.RoleWorker {
		use, short = "demote NODE...", "Make managers workers"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := host.client()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if role == model.RoleWorker {
				args = selfLast(cmd.Context(), c, args)
			}
			var errs []error
			for _, ref := range args {
				var resp *api.WriteResponse
				if role == model.RoleManager {
					resp, err = c.PromoteNode(cmd.Context(), ref)
				} else {
					resp, err = c.DemoteNode(cmd.Context(), ref)
				}
				switch {
				case err != nil:
					errs = append(errs, err)
				case resp.Unchanged:
					fmt.Fprintf(w, "Node %s is already a %s.\n", ref, role)
				case role == model.RoleManager:
					fmt.Fprintf(w, "Node %s promoted to a manager in the cluster.\n", ref)
				default:
					fmt.Fprintf(w, "Manager %s demoted in the cluster.\n", ref)
				}
			}
			return errors.Join(errs...)
		},
	}
}

// selfLast moves the node the CLI talks to behind the other nodes to demote: once
// demoted it is no manager, and could not take the next requests. A ref that does
// not resolve keeps its place, for its request to say why.
func selfLast(ctx context.Context, c *api.Client, refs []string) []string {
	if len(refs) < 2 {
		return refs
	}
	info, err := c.Info(ctx)
	if err != nil || info.NodeID == "" {
		return refs
	}
	var others, self []string
	for _, ref := range refs {
		if nd, _, err := c.Node(ctx, ref, api.Query{}); err == nil && nd.ID == info.NodeID {
			self = append(self, ref)
		} else {
			others = append(others, ref)
		}
	}
	return append(others, self...)
}

func newNodeUpdateCommand(host *hostFlag) *cobra.Command {
	var (
		add          []string
		rm           []string
		availability string
	)
	cmd := &cobra.Command{
		Use:   "update [--label-add KEY=VALUE]... [--label-rm KEY]... [--availability active|pause|drain] NODE",
		Short: "Change a node's labels or availability",
		Example: `  berth node update --label-add os=linux node-2
  berth node update --availability drain node-3`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.NodeUpdateRequest{LabelsRemove: rm, Availability: model.NodeAvailability(availability)}
			if availability != "" && !req.Availability.Valid() {
				return fmt.Errorf("unknown availability %q: use active, pause or drain", availability)
			}
			for _, kv := range add {
				k, v, _ := strings.Cut(kv, "=")
				if k == "" {
					return fmt.Errorf("invalid label %q: expected KEY=VALUE", kv)
				}
				if req.LabelsAdd == nil {
					req.LabelsAdd = map[string]string{}
				}
				req.LabelsAdd[k] = v
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			if _, err := c.UpdateNode(cmd.Context(), args[0], req); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), args[0])
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&add, "label-add", nil, "Add or change a node label (KEY=VALUE, repeatable)")
	cmd.Flags().StringArrayVar(&rm, "label-rm", nil, "Remove a node label (repeatable)")
	cmd.Flags().StringVar(&availability, "availability", "", "active, pause or drain")
	return cmd
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
