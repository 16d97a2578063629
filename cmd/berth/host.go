package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/api/endpoint"
)

// hostFlag is the global -H/--host, --context and --tls* flags: which daemon the
// CLI talks to, and how (cluster/api/endpoint works it out).
type hostFlag struct {
	flags  endpoint.Flags
	set    *pflag.FlagSet
	getenv func(string) string
}

func (h *hostFlag) register(cmd *cobra.Command, getenv func(string) string) {
	h.getenv = getenv
	f := cmd.PersistentFlags()
	f.StringVarP(&h.flags.Host, "host", "H", defaultHost(getenv), "Daemon to talk to: unix:///path/to/berth.sock, ssh://[user@]host[:port] or tcp://MANAGER:4270 (env BERTH_HOST)")
	f.StringVar(&h.flags.Context, "context", "", "Context to use, as 'berth context use' would (env BERTH_CONTEXT)")
	f.StringVar(&h.flags.TLSCACert, "tlscacert", "", "tcp:// hosts: the cluster's CA certificate (env BERTH_CERT_PATH: a folder of ca.pem, cert.pem, key.pem)")
	f.StringVar(&h.flags.TLSCert, "tlscert", "", "tcp:// hosts: the client certificate ('berth ca client-cert')")
	f.StringVar(&h.flags.TLSKey, "tlskey", "", "tcp:// hosts: the client certificate's key")
	h.set = f
}

// endpoint is the daemon the flags, the environment and the current context name,
// and the context used ("" for none).
func (h *hostFlag) endpoint() (endpoint.Endpoint, string, error) {
	h.flags.HostSet = h.set.Changed("host")
	store, err := h.store()
	if err != nil {
		return endpoint.Endpoint{}, "", err
	}
	return endpoint.Resolve(h.flags, h.getenv, store)
}

// store is the user's contexts.
func (h *hostFlag) store() (*endpoint.Store, error) {
	dir, err := endpoint.ConfigDir(h.getenv)
	if err != nil {
		return nil, err
	}
	return endpoint.NewStore(dir), nil
}

func (h *hostFlag) client() (*api.Client, error) {
	e, _, err := h.endpoint()
	if err != nil {
		return nil, err
	}
	return e.Client()
}

// addRemoteCommands adds the commands of remote access: contexts, the far end of
// ssh:// and operators' client certificates.
func addRemoteCommands(root *cobra.Command, host *hostFlag) {
	root.AddCommand(newContextCommand(host), newSystemCommand(host), newCACommand(host))
}
