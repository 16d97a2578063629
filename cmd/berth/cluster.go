package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berthd/berth/cli/format"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/store/sealed"
	"github.com/berthd/berth/spec"
)

func newInitCommand(host *hostFlag) *cobra.Command {
	var (
		req        api.InitRequest
		certExpiry time.Duration
	)
	cmd := &cobra.Command{
		Use:   "init [--advertise-addr ADDR] [--autolock] [--default-addr-pool CIDR] [--cert-expiry DURATION] [--force-new-cluster]",
		Short: "Create a cluster with this node as its first manager",
		Long: `Create a new cluster with the local daemon's node as its first manager, and print the
commands that add workers and managers. With --autolock the managers' raft state needs
the unlock key after every restart; it is printed once.

With --force-new-cluster, on a surviving manager of a cluster that lost its quorum (most
of its managers gone for good): the manager becomes the cluster's only manager and keeps
its state (services, tasks, sources, secrets), as Docker's. The lost managers stay in
'berth node ls', down: remove them with 'berth node rm --force', and join new managers
with the manager join token printed. A manager restored from a backup on a machine
with another address takes that address (--advertise-addr, else the daemon's).`,
		Example: `  berth init --advertise-addr 10.0.0.1
  berth init --autolock`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("cert-expiry") {
				req.CertExpiry = spec.Duration(certExpiry)
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			resp, err := c.Init(cmd.Context(), req)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if req.ForceNewCluster {
				fmt.Fprintf(w, "Cluster recovered: current node (%s) is now its only manager.\n\n", resp.NodeID)
			} else {
				fmt.Fprintf(w, "Cluster initialized: current node (%s) is now a manager.\n\n", resp.NodeID)
			}
			printJoinCommand(w, model.RoleWorker, resp.WorkerToken, resp.ManagerAddr)
			fmt.Fprintln(w)
			printJoinCommand(w, model.RoleManager, resp.ManagerToken, resp.ManagerAddr)
			if resp.UnlockKey != "" {
				fmt.Fprintln(w)
				printUnlockKey(w, resp.UnlockKey)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.AdvertiseAddr, "advertise-addr", "", "Address other nodes reach this one at (HOST or HOST:PORT)")
	f.BoolVar(&req.Autolock, "autolock", false, "Require the unlock key to start a restarted manager")
	f.StringSliceVar(&req.DefaultAddrPool, "default-addr-pool", nil, "Address pool(s) overlay networks are carved from, in CIDR form (default 10.0.0.0/8)")
	f.DurationVar(&certExpiry, "cert-expiry", ca.DefaultNodeCertValidity, "Validity period for node certificates")
	f.BoolVar(&req.ForceNewCluster, "force-new-cluster", false, "On a surviving manager of a cluster that lost its quorum: make it the only manager, keeping the cluster's state")
	return cmd
}

func printJoinCommand(w io.Writer, role model.NodeRole, token, addr string) {
	fmt.Fprintf(w, "To add a %s to this cluster, run the following command:\n\n    berth join --token %s %s\n", role, token, addr)
}

func printUnlockKey(w io.Writer, key string) {
	fmt.Fprintf(w, "To unlock a manager after it restarts, run `berth unlock` and provide the following key:\n\n    %s\n\n"+
		"Store this key in a password manager: without it a restarted manager cannot read its state.\n", key)
}

func newJoinCommand(host *hostFlag) *cobra.Command {
	var req api.JoinRequest
	cmd := &cobra.Command{
		Use:   "join --token TOKEN [--advertise-addr ADDR] MANAGER_ADDR",
		Short: "Join this node to a cluster",
		Long: `Join the local daemon's node to the cluster of the manager at MANAGER_ADDR (HOST:PORT,
default port 4270). The token says which role the node gets. The node checks the
manager's CA against the digest in the token before it sends anything.`,
		Example: `  berth join --token BERTH-1-... 10.0.0.1:4270`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("join needs the address of one manager (HOST:PORT); see '%s --help'", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			req.RemoteAddr = args[0]
			c, err := host.client()
			if err != nil {
				return err
			}
			resp, err := c.Join(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "This node joined a cluster as a %s.\n", resp.Role)
			return nil
		},
	}
	cmd.Flags().StringVar(&req.Token, "token", "", "Join token (from 'berth join-token worker|manager' on a manager)")
	cmd.Flags().StringVar(&req.AdvertiseAddr, "advertise-addr", "", "Address other nodes reach this one at (HOST or HOST:PORT)")
	_ = cmd.MarkFlagRequired("token")
	return cmd
}

func newLeaveCommand(host *hostFlag) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "leave [--force]",
		Short: "Leave the cluster",
		Long: `Make the local daemon's node leave its cluster and forget its cluster state. A manager
leaves only with --force: demote it first to keep the cluster's majority safe.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := host.client()
			if err != nil {
				return err
			}
			if err := c.Leave(cmd.Context(), force); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Node left the cluster.")
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Leave even as a manager")
	return cmd
}

func newInfoCommand(host *hostFlag) *cobra.Command {
	var tmpl string
	cmd := &cobra.Command{
		Use:     "info [--format FORMAT]",
		Short:   "Show the node and its cluster",
		Example: `  berth info --format '{{.NodeID}} {{.Role}}'`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := format.Parse(tmpl)
			if err != nil {
				return err
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			info, err := c.Info(cmd.Context())
			if err != nil {
				return err
			}
			switch f.Kind() {
			case format.JSON:
				return printJSON(cmd.OutOrStdout(), info)
			case format.Default:
				printInfo(cmd.OutOrStdout(), info)
				return nil
			}
			return f.WriteObject(cmd.OutOrStdout(), info)
		},
	}
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", "Format the output: json or a Go template over the info")
	return cmd
}

func printInfo(w io.Writer, info *api.Info) {
	phase := "active"
	switch info.Phase {
	case api.PhaseInactive:
		phase = "inactive"
	case api.PhaseLocked:
		phase = "locked"
	}
	fmt.Fprintf(w, "Cluster: %s\n", phase)
	fmt.Fprintf(w, " Hostname: %s\n", info.Hostname)
	if info.Phase == api.PhaseInactive {
		return
	}
	fmt.Fprintf(w, " Node ID: %s\n", info.NodeID)
	fmt.Fprintf(w, " Cluster ID: %s\n", info.ClusterID)
	fmt.Fprintf(w, " Role: %s\n", info.Role)
	fmt.Fprintf(w, " Node Address: %s\n", info.NodeAddr)
	fmt.Fprintf(w, " Locked: %t\n", info.Locked)
	switch info.Phase {
	case api.PhaseLocked:
		fmt.Fprintln(w, " (run `berth unlock` to start this manager)")
	case api.PhaseWorker:
		fmt.Fprintf(w, " Manager Addresses: %s\n", strings.Join(info.ManagerAddrs, ", "))
	case api.PhaseManager:
		fmt.Fprintf(w, " Autolock: %t\n", info.Autolock)
		if info.MaxReplicas > 0 {
			fmt.Fprintf(w, " Max Replicas per Service: %d\n", info.MaxReplicas)
		}
		if info.Leader != nil {
			fmt.Fprintf(w, " Leader: %s (%s) at %s\n", info.Leader.Hostname, info.Leader.NodeID, info.Leader.Addr)
		} else {
			fmt.Fprintln(w, " Leader: none")
		}
		fmt.Fprintf(w, " Managers: %d\n", info.Managers)
		fmt.Fprintf(w, " Nodes: %d\n", info.Nodes)
		fmt.Fprintf(w, " Raft Index: %d\n", info.RaftIndex)
	}
}

func newUpdateCommand(host *hostFlag) *cobra.Command {
	var (
		autolock    bool
		maxReplicas uint64
		nf          notifyFlags
		certExpiry  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "update [--autolock=true|false] [--max-replicas N] [--cert-expiry DURATION] [--notify URL] [--notify-rm URL]",
		Short: "Change cluster settings",
		Long: `Change cluster settings, like 'docker swarm update'. Turning autolock on prints the
unlock key, once; turning it off stores the key-encryption key beside the data keys again.
--max-replicas sets the most replicas a service may ask for (default 10000, at most
1000000); deploys, syncs and scales above it are refused. Swarm has no such limit.
--cert-expiry sets how long node certificates are valid (default 2160h, at least 1m);
every node renews its own after two thirds of its life.
--notify sends every source's sync results to URL, as 'source add --notify' does for one.`,
		Example: `  berth update --autolock=true
  berth update --max-replicas 20000
  berth update --notify slack=https://hooks.slack.com/services/T0/B0/XXX`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var req api.ClusterUpdateRequest
			if cmd.Flags().Changed("autolock") {
				req.Autolock = &autolock
			}
			if cmd.Flags().Changed("max-replicas") {
				if err := spec.CheckMaxReplicas(maxReplicas); err != nil {
					return err
				}
				req.MaxReplicas = &maxReplicas
			}
			var err error
			if req.Notify, err = nf.update(); err != nil {
				return err
			}
			if cmd.Flags().Changed("cert-expiry") {
				d := spec.Duration(certExpiry)
				req.CertExpiry = &d
			}
			if req.Autolock == nil && req.MaxReplicas == nil && req.Notify == nil && req.CertExpiry == nil {
				return errors.New("nothing to update: give --autolock=true|false, --max-replicas N, --cert-expiry DURATION or --notify URL")
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			resp, err := c.UpdateCluster(cmd.Context(), req)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintln(w, "Cluster updated.")
			if resp.UnlockKey != "" {
				fmt.Fprintln(w)
				printUnlockKey(w, resp.UnlockKey)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&autolock, "autolock", false, "Require the unlock key to start a restarted manager")
	cmd.Flags().Uint64Var(&maxReplicas, "max-replicas", 0, "The most replicas a service may ask for")
	cmd.Flags().DurationVar(&certExpiry, "cert-expiry", ca.DefaultNodeCertValidity, "Validity period for node certificates")
	nf.registerClusterWide(cmd.Flags())
	return cmd
}

func newUnlockCommand(host *hostFlag) *cobra.Command {
	return &cobra.Command{
		Use:   "unlock",
		Short: "Unlock a manager after a restart (autolock)",
		Long: `Give a restarted, autolocked manager its unlock key. The key is read from the terminal
(without echo) or from standard input.`,
		Example: `  berth unlock
  berth unlock < key.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := readUnlockKey(cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			// Say what is wrong with a mistyped key before bothering the daemon.
			if err := sealed.ValidateUnlockKey(key); err != nil {
				return err
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			return c.Unlock(cmd.Context(), key)
		},
	}
}

// readUnlockKey prompts on a terminal without echo, or reads the first line of a pipe.
func readUnlockKey(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Enter unlock key: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read the unlock key: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the unlock key: %w", err)
	}
	if strings.TrimSpace(line) == "" {
		return "", errors.New("no unlock key given on standard input")
	}
	return strings.TrimSpace(line), nil
}

func newUnlockKeyCommand(host *hostFlag) *cobra.Command {
	var quiet, rotate bool
	cmd := &cobra.Command{
		Use:   "unlock-key [-q] [--rotate]",
		Short: "Show or rotate the unlock key",
		Long: `Show the cluster's unlock key, or replace it with a new one. After a rotation the old
key no longer unlocks any manager that was running during the rotation.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := host.client()
			if err != nil {
				return err
			}
			key, err := c.UnlockKey(cmd.Context(), rotate)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if quiet {
				fmt.Fprintln(w, key)
				return nil
			}
			if rotate {
				fmt.Fprint(w, "Successfully rotated the unlock key.\n\n")
			}
			printUnlockKey(w, key)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Print the key only")
	cmd.Flags().BoolVar(&rotate, "rotate", false, "Replace the unlock key with a new one")
	return cmd
}

func newJoinTokenCommand(host *hostFlag) *cobra.Command {
	var quiet, rotate bool
	cmd := &cobra.Command{
		Use:   "join-token [-q] [--rotate] worker|manager",
		Short: "Show or rotate a join token",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return errors.New("join-token needs a role: worker or manager")
			}
			return nil
		},
		ValidArgs: []string{"worker", "manager"},
		RunE: func(cmd *cobra.Command, args []string) error {
			role := model.NodeRole(args[0])
			if !role.Valid() {
				return fmt.Errorf("unknown role %q: use worker or manager", args[0])
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			resp, err := c.JoinToken(cmd.Context(), role, rotate)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if quiet {
				fmt.Fprintln(w, resp.Token)
				return nil
			}
			if rotate {
				fmt.Fprintf(w, "Successfully rotated the %s join token.\n\n", role)
			}
			printJoinCommand(w, role, resp.Token, resp.ManagerAddr)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Print the token only")
	cmd.Flags().BoolVar(&rotate, "rotate", false, "Replace the token with a new one (the old one stops working)")
	return cmd
}
