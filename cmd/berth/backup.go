package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/daemon"
)

func newSwarmBackupCommand(host *hostFlag) *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE|-",
		Short: "Write a backup of this manager: its state, keys and certificates",
		Long: `Write a backup of the manager behind the local socket, while it runs: a gzipped tar of
its node identity, certificates and key, its keyring and a raft snapshot of the whole
cluster state (services, tasks, stacks, sources, secrets, configs), sealed as on disk.
With autolock the unlock key is needed to use it. The file is made mode 0600: it holds
the node's key. Restore it with 'berth swarm restore'.`,
		Example: `  berth swarm backup /root/berth-backup.tgz`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := host.client()
			if err != nil {
				return err
			}
			if args[0] == "-" {
				return c.Backup(cmd.Context(), cmd.OutOrStdout())
			}
			f, err := os.OpenFile(args[0], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("backup: %w (give a file that does not exist yet)", err)
			}
			if err := c.Backup(cmd.Context(), f); err != nil {
				f.Close()
				os.Remove(args[0])
				return err
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Backup written to %s.\n", args[0])
			return nil
		},
	}
}

func newSwarmRestoreCommand() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "restore --data-dir DIR FILE|-",
		Short: "Unpack a backup into a data dir, for a daemon to start from",
		Long: `Unpack a backup made by 'berth swarm backup' into an empty data dir; no daemon is
needed. Then start 'berth daemon --data-dir DIR' on the backed-up manager's machine or
a replacement, 'berth swarm unlock' it if autolock was on, and run 'berth swarm init
--force-new-cluster': it becomes the only manager of its cluster with the state of the
backup, at the daemon's address (or the one --advertise-addr gives) if the machine has
another. The cluster's other nodes join it again.`,
		Example: `  berth swarm restore --data-dir /var/lib/berth /root/berth-backup.tgz`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("restore: %w", err)
				}
				defer f.Close()
				r = f
			}
			if err := daemon.RestoreBackup(r, dataDir); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Backup restored into %s. Start 'berth daemon --data-dir %s', then run 'berth swarm init --force-new-cluster'.\n", dataDir, dataDir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", daemon.DefaultDataDir, "The data dir to restore into: it must hold no node")
	return cmd
}
