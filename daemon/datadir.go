package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/model"
)

// Data dir layout. Everything is created 0700 (directories) and 0600 (files).
const (
	nodeFileName = "node.json"
	lockFileName = "daemon.lock"
	certsDir     = "certs"
	raftDir      = "raft"
	sourcesDir   = "sources"
	caCertFile   = "ca.pem"
	// trustedFile holds the previous root while a root rotation is under way.
	trustedFile  = "trusted-ca.pem"
	nodeCertFile = "node.pem"
	nodeKeyFile  = "node-key.pem"
)

// nodeFile is DIR/node.json: who this node is. Its presence means the node is part of
// a cluster. It holds no secret.
type nodeFile struct {
	NodeID    string `json:"node_id"`
	ClusterID string `json:"cluster_id"`
	// Role is the role of the node's current certificate, which is what the node
	// runs as.
	Role          model.NodeRole `json:"role"`
	AdvertiseAddr string         `json:"advertise_addr"`
	// Managers are the managers' addresses as last heard: where a restarted node
	// sends its heartbeats before it learns who leads.
	Managers []string `json:"managers,omitempty"`
	// KeyringGeneration is the cluster's unlock key generation this manager's
	// keyring follows. A restarted manager replays old cluster rows before it
	// catches up; only a newer generation may rewrap the keyring, so that replaying
	// an old "autolock off" never writes the key-encryption key to disk.
	KeyringGeneration uint64 `json:"keyring_generation,omitempty"`
}

type dataDir string

func (d dataDir) path(parts ...string) string {
	return filepath.Join(append([]string{string(d)}, parts...)...)
}

func (d dataDir) raft() string { return d.path(raftDir) }

// sources holds the GitOps sources' repositories (mirrors, pushed repositories).
func (d dataDir) sources() string { return d.path(sourcesDir) }

// lock takes an exclusive lock on the data dir, so that two daemons never share one.
// The lock goes with the process: it needs no cleanup after a crash.
func (d dataDir) lock() (*os.File, error) {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := os.Chmod(string(d), 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	f, err := os.OpenFile(d.path(lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another berth daemon is using the data dir %s", d)
		}
		return nil, fmt.Errorf("lock data dir %s: %w", d, err)
	}
	return f, nil
}

// readNodeFile returns nil, nil when the node is not part of a cluster.
func (d dataDir) readNodeFile() (*nodeFile, error) {
	b, err := os.ReadFile(d.path(nodeFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read node state: %w", err)
	}
	var nf nodeFile
	if err := json.Unmarshal(b, &nf); err != nil {
		return nil, fmt.Errorf("read %s: %w", d.path(nodeFileName), err)
	}
	if nf.NodeID == "" || nf.ClusterID == "" || !nf.Role.Valid() {
		return nil, fmt.Errorf("%s is incomplete (node %q, cluster %q, role %q): remove the data dir to start over",
			d.path(nodeFileName), nf.NodeID, nf.ClusterID, nf.Role)
	}
	return &nf, nil
}

func (d dataDir) writeNodeFile(nf *nodeFile) error {
	b, err := json.MarshalIndent(nf, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(d.path(nodeFileName), append(b, '\n'))
}

// writeFileAtomic replaces path with data (mode 0600) so that a crash leaves the old
// or the new file, never half of one.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// identity is the node's TLS identity: the cluster CA it trusts and its own
// certificate. It is replaced as a whole when the certificate changes.
type identity struct {
	root   *x509.Certificate
	cert   tls.Certificate
	id     ca.Identity
	leaf   *x509.Certificate
	caPEM  []byte
	certPM []byte
	// trusted are more roots trusted beside root: the previous one during a
	// root rotation.
	trusted    []*x509.Certificate
	trustedPEM []byte
}

// newTrustedIdentity is newIdentity also trusting the roots in trustedPEM.
func newTrustedIdentity(caPEM, trustedPEM, certPEM, keyPEM []byte) (*identity, error) {
	id, err := newIdentity(caPEM, certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return id.trusting(trustedPEM)
}

// saveIdentity stores id (with its key) as writeTrusted and writeCerts do.
func (d dataDir) saveIdentity(id *identity, keyPEM []byte) error {
	if err := d.writeTrusted(id.trustedPEM); err != nil {
		return err
	}
	return d.writeCerts(id.caPEM, id.certPM, keyPEM)
}

// trusting returns id also trusting the roots in trustedPEM (none when empty).
func (id *identity) trusting(trustedPEM []byte) (*identity, error) {
	certs, err := ca.ParseCACerts(trustedPEM)
	if err != nil {
		return nil, err
	}
	out := *id
	out.trusted, out.trustedPEM = certs, trustedPEM
	return &out, nil
}

// newIdentity checks that the certificate is a node certificate of the CA's cluster
// that verifies against the CA and belongs to the key.
func newIdentity(caPEM, certPEM, keyPEM []byte) (*identity, error) {
	root, err := ca.ParseCACert(caPEM)
	if err != nil {
		return nil, err
	}
	clusterID, err := ca.ClusterIDOf(root)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("node certificate does not verify against the cluster CA: %w", err)
	}
	id, err := ca.ParseNodeIdentity(leaf, clusterID)
	if err != nil {
		return nil, err
	}
	cert.Leaf = leaf
	return &identity{root: root, cert: cert, id: id, leaf: leaf, caPEM: caPEM, certPM: certPEM}, nil
}

func (d dataDir) readIdentity() (*identity, error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(d.path(certsDir, name))
		if err != nil {
			return nil, fmt.Errorf("read node certificates: %w (remove %s to start over)", err, d.path(nodeFileName))
		}
		return b, nil
	}
	caPEM, err := read(caCertFile)
	if err != nil {
		return nil, err
	}
	certPEM, err := read(nodeCertFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := read(nodeKeyFile)
	if err != nil {
		return nil, err
	}
	trustedPEM, err := os.ReadFile(d.path(certsDir, trustedFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read the roots trusted during a rotation: %w", err)
	}
	return newTrustedIdentity(caPEM, trustedPEM, certPEM, keyPEM)
}

// writeTrusted stores the roots trusted beside the cluster's (none: the file goes).
// It is written before the certificate they come with, as writeCerts writes the key.
func (d dataDir) writeTrusted(trustedPEM []byte) error {
	p := d.path(certsDir, trustedFile)
	if len(trustedPEM) == 0 {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove the roots trusted during a rotation: %w", err)
		}
		return nil
	}
	if err := writeFileAtomic(p, trustedPEM); err != nil {
		return fmt.Errorf("write the roots trusted during a rotation: %w", err)
	}
	return nil
}

// writeCerts stores the CA certificate and the node's certificate and key. The key is
// written first and the certificate last, each atomically, so a crash leaves a pair
// that newIdentity either accepts or refuses, never a wrong one accepted.
func (d dataDir) writeCerts(caPEM, certPEM, keyPEM []byte) error {
	if err := writeFileAtomic(d.path(certsDir, caCertFile), caPEM); err != nil {
		return fmt.Errorf("write CA certificate: %w", err)
	}
	if err := writeFileAtomic(d.path(certsDir, nodeKeyFile), keyPEM); err != nil {
		return fmt.Errorf("write node key: %w", err)
	}
	if err := writeFileAtomic(d.path(certsDir, nodeCertFile), certPEM); err != nil {
		return fmt.Errorf("write node certificate: %w", err)
	}
	return nil
}

// leftovers reports state of an earlier membership that node.json no longer vouches
// for: init and join refuse to build on it.
func (d dataDir) leftovers() error {
	for _, name := range []string{raftDir, certsDir} {
		if _, err := os.Stat(d.path(name)); err == nil {
			return fmt.Errorf("%s exists but %s does not: it is left from an earlier cluster; remove it to start over",
				d.path(name), d.path(nodeFileName))
		}
	}
	return nil
}

// wipe removes the node's cluster state: raft (with its keyring), certificates, then
// node.json.
func (d dataDir) wipe() error {
	var errs []error
	for _, name := range []string{sourcesDir, raftDir, certsDir, nodeFileName} {
		if err := os.RemoveAll(d.path(name)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
