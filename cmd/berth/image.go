package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/cluster/api"
)

func newImageCommand(host *hostFlag) *cobra.Command {
	return groupCommand("image", "Manage the images of this node", newImageLoadCommand(host))
}

func newImageLoadCommand(host *hostFlag) *cobra.Command {
	var o api.ImageLoadOptions
	cmd := &cobra.Command{
		Use:   "load [--all-nodes] FILE",
		Short: "Load an image archive into this node, or into every node",
		Long: `Import an OCI or Docker image archive (docker save, skopeo copy oci-archive:...) into
this node's containerd, for clusters that cannot reach a registry. Tasks whose image is
already on their node start without pulling it. With --all-nodes, run on a manager, every
node of the cluster imports it: the manager sends it to each through its node port.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("image load: %w", err)
			}
			defer f.Close()
			c, err := host.client()
			if err != nil {
				return err
			}
			resp, err := c.LoadImage(cmd.Context(), f, o)
			if err != nil {
				return fmt.Errorf("image load %s: %w", args[0], err)
			}
			out := cmd.OutOrStdout()
			for _, name := range resp.Images {
				fmt.Fprintf(out, "Loaded image: %s\n", name)
			}
			failed := 0
			for _, nd := range resp.Nodes {
				if nd.Error != "" {
					failed++
					fmt.Fprintf(out, "%s: not loaded: %s\n", nd.Hostname, nd.Error)
					continue
				}
				for _, name := range nd.Images {
					fmt.Fprintf(out, "%s: Loaded image: %s\n", nd.Hostname, name)
				}
			}
			if failed > 0 {
				return fmt.Errorf("image load %s: %d of %d nodes did not load it (their lines above say why)", args[0], failed, len(resp.Nodes))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.AllNodes, "all-nodes", false, "Load the archive into every node of the cluster (on a manager)")
	return cmd
}
