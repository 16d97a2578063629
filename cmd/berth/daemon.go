package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/daemon"
	"github.com/berthd/berth/runtime/agent"
	"github.com/berthd/berth/runtime/executor"
	"github.com/berthd/berth/runtime/logdriver"
)

func newDaemonCommand() *cobra.Command {
	var (
		cfg        daemon.Config
		logLevel   string
		configFile string
		validate   bool
		simAgent   func(*daemon.Config) bool
		dp         agent.DataPlaneConfig
	)
	cmd := &cobra.Command{
		Use:   "daemon [--data-dir DIR] [--socket PATH] [--listen-addr HOST:PORT] [--advertise-addr HOST[:PORT]] [--hostname NAME]",
		Short: "Run a berth node",
		Long: `Run one berth node. Until 'berth init' or 'berth join' it serves only its unix socket;
then managers also listen on --listen-addr (mutual TLS: raft and the API share the port).
The daemon stops cleanly on SIGTERM and SIGINT. Logs go to standard error.

Settings come from --config (default /etc/berth/daemon.yaml, if it exists), a YAML
mapping whose keys are the flags below without their dashes; a flag on the command
line wins over the file, and an unknown key is an error.`,
		Example: `  berth daemon
  berth daemon --data-dir /tmp/b1 --socket /tmp/b1.sock --listen-addr 127.0.0.1:4271 --hostname node-1
  berth daemon --config /etc/berth/daemon.yaml --validate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := daemon.ApplyConfigFile(cmd.Flags(), configFile, cmd.Flags().Changed("config"), "config", "validate"); err != nil {
				return err
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("unknown log level %q: use debug, info, warn or error", logLevel)
			}
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			cfg.Version = versionString()
			if validate {
				if _, err := daemon.New(cfg); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "configuration OK")
				return nil
			}
			if !simAgent(&cfg) {
				dp.DataDir = cfg.DataDir
				dp.Metrics = agent.NewMetrics()
				cfg.Collectors = append(cfg.Collectors, dp.Metrics.Collectors()...)
				dp.Logger = cfg.Logger.With("component", "agent")
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("find berth's own executable, the tasks' log driver: %w", err)
				}
				var dedicated bool
				dp.LogDriver, dedicated = logdriver.Find(exe)
				if !dedicated {
					dp.Logger.Info("tasks' log driver: berth itself; " + logdriver.BinaryName +
						" beside it would start each container's driver faster (make build puts it there)")
				}
				plane, err := agent.NewDataPlane(cmd.Context(), dp)
				if err != nil {
					return fmt.Errorf("data plane: %w (is containerd running? start it, or point --containerd at its socket)", err)
				}
				defer plane.Close()
				cfg.Agent = func(ctx context.Context, a daemon.AgentAPI) error {
					return plane.RunAgent(ctx, a, a.NodeID())
				}
				cfg.AgentCleanup = plane.Cleanup
				cfg.LoadImage = plane.LoadImage
				cfg.TaskLogs = plane.TaskLogs
			}
			n, err := daemon.New(cfg)
			if err != nil {
				return err
			}
			return n.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", daemon.DefaultConfigFile, "YAML file of settings: the keys are these flags' names; a flag given here wins")
	f.BoolVar(&validate, "validate", false, "Check the settings (file and flags) and exit")
	f.StringVar(&cfg.DataDir, "data-dir", daemon.DefaultDataDir, "Directory of the node's state")
	f.StringVar(&cfg.Socket, "socket", api.DefaultSocket, "Unix socket the CLI talks to (created mode 0600)")
	f.StringVar(&cfg.ListenAddr, "listen-addr", daemon.DefaultListenAddr, "TCP address of the node port (managers: raft and the API over mutual TLS)")
	f.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "Address other nodes reach this one at (default: worked out from --listen-addr)")
	f.StringVar(&cfg.Hostname, "hostname", "", "Node name in the cluster (default: the machine's hostname)")
	f.StringVar(&logLevel, "log-level", "info", "Log level: debug, info, warn or error")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "Serve Prometheus metrics at http://HOST:PORT/metrics, without TLS (default: not served)")
	// Tuning for tests and benchmarks; clusters use the cluster's settings.
	f.DurationVar(&cfg.HeartbeatPeriod, "heartbeat-period", 0, "Override the cluster's heartbeat period on this node")
	f.DurationVar(&cfg.ApplyTimeout, "apply-timeout", 10*time.Second, "How long a write waits for a leader")
	f.DurationVar(&cfg.RaftHeartbeatTimeout, "raft-heartbeat-timeout", 0, "Raft heartbeat timeout (default 1s)")
	f.DurationVar(&cfg.RaftElectionTimeout, "raft-election-timeout", 0, "Raft election timeout (default 1s)")
	f.Uint64Var(&cfg.RaftSnapshotThreshold, "raft-snapshot-threshold", 0, "Raft entries between snapshots (default 8192)")
	f.DurationVar(&cfg.RaftSnapshotInterval, "raft-snapshot-interval", 0, "How often raft checks whether to snapshot (default 2m)")
	f.StringVar(&dp.Containerd, "containerd", executor.DefaultAddress, "containerd's socket")
	f.StringVar(&dp.RegistryConfig, "registry-config", "", "A docker config.json with registry credentials for image pulls (auths, credHelpers, credsStore: docker-credential-* helpers on PATH)")
	f.StringVar(&dp.Namespace, "containerd-namespace", executor.DefaultNamespace, "containerd namespace of the node's containers and images")
	simAgent = simAgentFlag(cmd)
	for _, name := range []string{"heartbeat-period", "apply-timeout", "raft-heartbeat-timeout", "raft-election-timeout",
		"raft-snapshot-threshold", "raft-snapshot-interval", "containerd-namespace"} {
		_ = f.MarkHidden(name)
	}
	return cmd
}
