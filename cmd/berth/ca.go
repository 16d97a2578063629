package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/api/endpoint"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/spec"
)

func newCACommand(host *hostFlag) *cobra.Command {
	return groupCommand("ca", "Certificates of the cluster's CA for operators",
		newCAClientCertCommand(host),
	)
}

func newCAClientCertCommand(host *hostFlag) *cobra.Command {
	var (
		out string
		ttl time.Duration
	)
	cmd := &cobra.Command{
		Use:   "client-cert --out DIR [--ttl 24h]",
		Short: "Make a client certificate for a manager's TCP port (role admin)",
		Long: `Make an operator's client certificate, signed by the cluster's CA, for -H
tcp://MANAGER:4270 from another machine. Run it on a manager (it is served on the local
socket only). DIR receives ca.pem (the cluster's CA), cert.pem and key.pem (made here,
never sent anywhere): point BERTH_CERT_PATH at DIR, or give --tlscacert, --tlscert and
--tlskey. The certificate may do what the local socket may, except init, join, leave
and unlock; the cluster keeps no list of these certificates, so it ends only when it
expires (--ttl, at most 720h): keep it short.`,
		Example: `  berth ca client-cert --out ~/.berth/certs/prod --ttl 8h
  BERTH_CERT_PATH=~/.berth/certs/prod berth -H tcp://manager-1:4270 node ls`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("ca client-cert needs --out DIR: the folder to write ca.pem, cert.pem and key.pem in")
			}
			if ttl <= 0 || ttl > ca.MaxClientCertValidity {
				return fmt.Errorf("--ttl %s: a client certificate lasts more than 0 and at most %s", ttl, ca.MaxClientCertValidity)
			}
			key, csr, err := ca.NewNodeKeyAndCSR("admin")
			if err != nil {
				return err
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			resp, err := c.IssueClientCert(cmd.Context(), api.ClientCertRequest{CSR: csr, TTL: spec.Duration(ttl)})
			if err != nil {
				return err
			}
			if err := writeCertDir(out, resp, key); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Client certificate %s written to %s, valid until %s.\nUse it with: BERTH_CERT_PATH=%s berth -H tcp://MANAGER:4270 ...\n",
				resp.Name, out, resp.NotAfter.Local().Format(time.DateTime), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "Folder to write ca.pem, cert.pem and key.pem in (created 0700)")
	cmd.Flags().DurationVar(&ttl, "ttl", ca.DefaultClientCertValidity, "How long the certificate is valid")
	return cmd
}

// writeCertDir writes a client certificate's folder; the key is the user's alone.
func writeCertDir(dir string, resp *api.ClientCertResponse, key []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{endpoint.CAFile, []byte(resp.CACertificate), 0o644},
		{endpoint.CertFile, []byte(resp.Certificate), 0o644},
		{endpoint.KeyFile, key, 0o600},
	} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	return nil
}
