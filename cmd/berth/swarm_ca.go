package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/spec"
)

func newSwarmCACommand(host *hostFlag) *cobra.Command {
	var (
		rotate, detach bool
		certExpiry     time.Duration
		caCert, caKey  string
	)
	cmd := &cobra.Command{
		Use:   "ca [--rotate [--ca-cert FILE --ca-key FILE] [--cert-expiry DURATION] [--detach]]",
		Short: "Print or rotate the cluster's root CA certificate",
		Long: `Print the cluster's root CA certificate (PEM), as 'docker swarm ca'.

--rotate makes a new root CA, cross-signed by the current one, and moves every node to
a certificate of it without downtime: nodes trust both roots until every node has
rotated, then only the new one. It waits, showing 'Progress: n/m nodes rotated' on
standard error, then prints the new root; --detach returns at once. A node that is
down holds the rotation up until it comes back or is removed ('berth node rm').
The join tokens keep their secrets but pin the new root: 'berth join-token worker'
shows them. --cert-expiry also sets how long node certificates are valid.
--ca-cert and --ca-key (PEM files) give the new root instead: a self-signed CA
certificate whose subject is O=<cluster ID> ('berth info' shows it), and its key.`,
		Example: `  berth swarm ca > ca.pem
  berth swarm ca --rotate
  berth swarm ca --rotate --cert-expiry 720h --detach
  berth swarm ca --rotate --ca-cert root.pem --ca-key root-key.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !rotate && cmd.Flags().Changed("cert-expiry") {
				return errors.New("--cert-expiry needs --rotate here; to change only the expiry of node certificates, use `berth update --cert-expiry`")
			}
			if !rotate && detach {
				return errors.New("--detach needs --rotate: there is nothing to wait for when printing the root CA")
			}
			if !rotate && (caCert != "" || caKey != "") {
				return errors.New("--ca-cert and --ca-key name the root of a rotation: give them with --rotate")
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			if !rotate {
				return printRootCA(cmd, c)
			}
			req := api.ClusterUpdateRequest{RotateCA: true}
			if req.NewRootCACert, req.NewRootCAKey, err = readRootCA(caCert, caKey); err != nil {
				return err
			}
			if cmd.Flags().Changed("cert-expiry") {
				d := spec.Duration(certExpiry)
				req.CertExpiry = &d
			}
			resp, err := c.UpdateCluster(cmd.Context(), req)
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			if detach {
				fmt.Fprintln(cmd.OutOrStdout(), "Root CA rotation started: nodes move to the new root within a few heartbeats; `berth swarm ca` prints it, `berth join-token worker|manager` the new join tokens.")
				return nil
			}
			root, err := ca.ParseCACert([]byte(resp.RootCACert))
			if err != nil {
				return fmt.Errorf("the manager answered the rotation with a root CA that does not parse: %w", err)
			}
			if err := c.WaitCARotation(cmd.Context(), ca.Digest(root), func(p api.CARotation) { printCARotation(stderr, p) }); err != nil {
				return fmt.Errorf("the rotation goes on without this command: %w", err)
			}
			fmt.Fprintln(stderr, "Every node has a certificate of the new root CA. The join tokens changed: see `berth join-token worker|manager`.")
			fmt.Fprintln(cmd.OutOrStdout(), strings.TrimSpace(resp.RootCACert))
			return nil
		},
	}
	cmd.Flags().BoolVar(&rotate, "rotate", false, "Rotate the root CA: a new root, and every node moved to a certificate of it")
	cmd.Flags().DurationVar(&certExpiry, "cert-expiry", ca.DefaultNodeCertValidity, "Validity period for node certificates")
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "Exit immediately instead of waiting for every node to rotate")
	cmd.Flags().StringVar(&caCert, "ca-cert", "", "PEM file of the new root CA certificate (with --rotate)")
	cmd.Flags().StringVar(&caKey, "ca-key", "", "PEM file of the new root CA key (with --rotate)")
	return cmd
}

// readRootCA reads the files of --ca-cert and --ca-key, when given.
func readRootCA(certFile, keyFile string) (certPEM, keyPEM string, err error) {
	if certFile == "" && keyFile == "" {
		return "", "", nil
	}
	if certFile == "" || keyFile == "" {
		return "", "", errors.New("--ca-cert and --ca-key go together: give both, or neither for a root the cluster makes")
	}
	c, err := os.ReadFile(certFile)
	if err != nil {
		return "", "", fmt.Errorf("--ca-cert: %w", err)
	}
	k, err := os.ReadFile(keyFile)
	if err != nil {
		return "", "", fmt.Errorf("--ca-key: %w", err)
	}
	return string(c), string(k), nil
}

func printRootCA(cmd *cobra.Command, c *api.Client) error {
	cl, err := c.Cluster(cmd.Context())
	if err != nil {
		return err
	}
	if cl.RootCACert == "" {
		return fmt.Errorf("cluster %s has no root CA certificate: this is a bug in berth, please report it", cl.ID)
	}
	fmt.Fprintln(cmd.OutOrStdout(), strings.TrimSpace(cl.RootCACert))
	return nil
}

func printCARotation(w io.Writer, p api.CARotation) {
	fmt.Fprintf(w, "Progress: %d/%d nodes rotated\n", p.Rotated, p.Nodes)
}
