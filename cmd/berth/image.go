package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func newImageCommand(host *hostFlag) *cobra.Command {
	return groupCommand("image", "Manage the images of this node", newImageLoadCommand(host))
}

func newImageLoadCommand(host *hostFlag) *cobra.Command {
	return &cobra.Command{
		Use:   "load FILE",
		Short: "Load an image archive into this node",
		Long: `Import an OCI or Docker image archive (docker save, skopeo copy oci-archive:...) into
this node's containerd, for clusters that cannot reach a registry. Tasks whose image is
already on their node start without pulling it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			c, err := host.client()
			if err != nil {
				return err
			}
			resp, err := c.LoadImage(cmd.Context(), f)
			if err != nil {
				return fmt.Errorf("load %s: %w", args[0], err)
			}
			for _, name := range resp.Images {
				fmt.Fprintf(cmd.OutOrStdout(), "Loaded image: %s\n", name)
			}
			return nil
		},
	}
}
