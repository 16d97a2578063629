// Package endpoint works out which daemon the CLI talks to, and how, as the Docker
// CLI does: -H or --context, else BERTH_HOST or BERTH_CONTEXT, else the current
// context, else the local socket; the TLS files of a tcp:// host from the --tls*
// flags, the context or BERTH_CERT_PATH; and the contexts kept under the user's
// configuration folder ($BERTH_CONFIG, default ~/.berth).
package endpoint

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
)

// Environment variables the CLI reads.
const (
	EnvHost         = "BERTH_HOST"
	EnvContext      = "BERTH_CONTEXT"
	EnvCertPath     = "BERTH_CERT_PATH"
	EnvConfig       = "BERTH_CONFIG"
	EnvRemoteBinary = "BERTH_REMOTE_BINARY"
)

// Files of a certificate folder (BERTH_CERT_PATH, `berth ca client-cert --out`), as
// Docker names them.
const (
	CAFile   = "ca.pem"
	CertFile = "cert.pem"
	KeyFile  = "key.pem"
)

// Endpoint is a daemon and how to reach it.
type Endpoint struct {
	// Host is unix:///path, ssh://[user@]host[:port] or tcp://host:port.
	Host string `json:"host"`
	// TLS files of a tcp:// host: the cluster's CA and an admin client certificate.
	TLSCACert string `json:"tls_ca_cert,omitempty"`
	TLSCert   string `json:"tls_cert,omitempty"`
	TLSKey    string `json:"tls_key,omitempty"`
	// RemoteBinary is the berth an ssh:// host runs (default: berth on its PATH).
	RemoteBinary string `json:"remote_binary,omitempty"`
}

// Client returns a client of the endpoint.
func (e Endpoint) Client() (*api.Client, error) {
	var opts []api.Option
	switch {
	case strings.HasPrefix(e.Host, "ssh://"):
		if e.RemoteBinary != "" {
			opts = append(opts, api.WithRemoteBinary(e.RemoteBinary))
		}
	case strings.HasPrefix(e.Host, "unix://") || strings.HasPrefix(e.Host, "/"):
	default:
		cfg, err := e.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, api.WithTLS(cfg))
	}
	return api.New(e.Host, opts...)
}

// tlsConfig trusts the cluster's CA alone and presents the client certificate; the
// server must be a manager.
func (e Endpoint) tlsConfig() (*tls.Config, error) {
	if e.TLSCACert == "" || e.TLSCert == "" || e.TLSKey == "" {
		return nil, fmt.Errorf("%s is a manager's TCP port, which takes mutual TLS only: give --tlscacert, --tlscert and --tlskey, or %s=DIR holding %s, %s and %s ('berth ca client-cert --out DIR' on a manager makes them)",
			e.Host, EnvCertPath, CAFile, CertFile, KeyFile)
	}
	caPEM, err := os.ReadFile(e.TLSCACert)
	if err != nil {
		return nil, fmt.Errorf("the cluster's CA certificate: %w", err)
	}
	root, err := ca.ParseCACert(caPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.TLSCACert, err)
	}
	cert, err := tls.LoadX509KeyPair(e.TLSCert, e.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("the client certificate %s and its key %s: %w", e.TLSCert, e.TLSKey, err)
	}
	return ca.ClientTLSConfig(root, cert, ca.ManagerServerName), nil
}

// Flags are the CLI's global connection flags.
type Flags struct {
	Host string
	// HostSet: -H was given (its default is BERTH_HOST's or the local socket).
	HostSet                    bool
	Context                    string
	TLSCACert, TLSCert, TLSKey string
}

// Resolve works out the endpoint of f, getenv and the contexts in store; name is
// the context used, "" when none was.
func Resolve(f Flags, getenv func(string) string, store *Store) (e Endpoint, name string, err error) {
	if f.HostSet && f.Context != "" {
		return Endpoint{}, "", errors.New("give -H or --context, not both: a context names a host")
	}
	switch {
	case f.HostSet:
		e.Host = f.Host
	case f.Context != "":
		name = f.Context
	case getenv(EnvHost) != "":
		e.Host = getenv(EnvHost)
	case getenv(EnvContext) != "":
		name = getenv(EnvContext)
	default:
		if name, err = store.Current(); err != nil {
			return Endpoint{}, "", err
		}
	}
	if name == DefaultContext {
		name = ""
	}
	if name != "" {
		c, err := store.Get(name)
		if err != nil {
			return Endpoint{}, "", err
		}
		e = c.Endpoint
	}
	if e.Host == "" {
		e.Host = api.DefaultHost
	}
	if err := e.overlayTLS(f, getenv(EnvCertPath)); err != nil {
		return Endpoint{}, "", err
	}
	if rb := getenv(EnvRemoteBinary); rb != "" {
		e.RemoteBinary = rb
	}
	return e, name, nil
}

// overlayTLS puts in the TLS files the flags give, else those of certPath when the
// endpoint has none.
func (e *Endpoint) overlayTLS(f Flags, certPath string) error {
	if f.TLSCACert != "" || f.TLSCert != "" || f.TLSKey != "" {
		if f.TLSCACert == "" || f.TLSCert == "" || f.TLSKey == "" {
			return errors.New("give all of --tlscacert, --tlscert and --tlskey, or none")
		}
		e.TLSCACert, e.TLSCert, e.TLSKey = f.TLSCACert, f.TLSCert, f.TLSKey
		return nil
	}
	if certPath != "" && e.TLSCACert == "" {
		e.TLSCACert = filepath.Join(certPath, CAFile)
		e.TLSCert = filepath.Join(certPath, CertFile)
		e.TLSKey = filepath.Join(certPath, KeyFile)
	}
	return nil
}

// ConfigDir is the user's berth configuration folder: $BERTH_CONFIG, else ~/.berth.
func ConfigDir(getenv func(string) string) (string, error) {
	if d := getenv(EnvConfig); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no configuration folder: set %s or HOME: %w", EnvConfig, err)
	}
	return filepath.Join(home, ".berth"), nil
}
