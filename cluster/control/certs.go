package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// issuedCert is a node certificate of the cluster's current root and what the node
// needs beside it while a root rotation is under way.
type issuedCert struct {
	chain   string // the leaf, then the cross-signed new root during a rotation
	serial  string
	root    string // the digest of the root that signed it
	trusted string // the previous root during a rotation
}

// issueNodeCert signs csr for a node under the current root, valid for the cluster's
// certificate expiry.
func issueNodeCert(row *model.Cluster, csr []byte, nodeID string, role ca.Role, addr string) (issuedCert, error) {
	root, err := rootCA(row)
	if err != nil {
		return issuedCert{}, err
	}
	leaf, err := root.IssueNodeCert(csr, nodeID, role, time.Duration(row.Settings.NodeCertExpiry), addr)
	if err != nil {
		return issuedCert{}, err
	}
	out := issuedCert{chain: string(leaf), serial: certSerial(leaf), root: root.Digest()}
	if r := row.RootRotation; r != nil {
		out.chain += r.CrossSigned
		out.trusted = r.PrevCACert
	}
	return out, nil
}

// setCertExpiry is `berth update --cert-expiry`: it applies to certificates issued
// from now on, which every node gets within two thirds of its current one's life.
func (c *Control) setCertExpiry(ctx context.Context, d spec.Duration) error {
	if d <= 0 {
		return badRequest("--cert-expiry must be a positive duration, such as 2160h")
	}
	if err := ca.CheckNodeCertValidity(time.Duration(d)); err != nil {
		return api.BadRequest(err)
	}
	_, _, err := c.updateCluster(ctx, func(row *model.Cluster) (bool, error) {
		if row.Settings.NodeCertExpiry == d {
			return false, nil
		}
		row.Settings.NodeCertExpiry = d
		return true, nil
	})
	return err
}

// rotateCA starts a root CA rotation: a new root for the cluster (the operator's,
// certPEM and keyPEM, or one made here), cross-signed by the current one, and the
// join tokens re-pinned to it (same secrets). Nodes learn of it from their heartbeats
// and renew; command.CmdNodeCert ends the rotation once every node has a certificate
// of the new root. It returns the new root's certificate.
func (c *Control) rotateCA(ctx context.Context, certPEM, keyPEM string) (string, error) {
	row, err := c.st.State().ReadTxn().Cluster(nil)
	if err != nil {
		return "", err
	}
	old, err := rootCA(row)
	if err != nil {
		return "", err
	}
	next, err := nextRoot(row.ID, old, certPEM, keyPEM, c.clock())
	if err != nil {
		return "", err
	}
	cross, err := old.CrossSign(next)
	if err != nil {
		return "", err
	}
	tokens, err := repinTokens(row.JoinTokens, next.Digest())
	if err != nil {
		return "", err
	}
	if _, err := c.apply(ctx, command.CmdCARotate, command.CARotate{
		ExpectRootCACert: row.RootCACert, RootCACert: string(next.CertPEM()), RootCAKey: string(next.KeyPEM()),
		CrossSigned: string(cross), Digest: next.Digest(), JoinTokens: tokens, At: c.clock(),
	}); err != nil {
		return "", err
	}
	c.logger.Info("root CA rotation started", "from", old.Digest(), "to", next.Digest())
	return string(next.CertPEM()), nil
}

// nextRoot is the root a rotation of cluster's root cur moves to: the operator's,
// checked here as the server never trusts the CLI, or a new one.
func nextRoot(cluster string, cur *ca.RootCA, certPEM, keyPEM string, now time.Time) (*ca.RootCA, error) {
	if certPEM == "" && keyPEM == "" {
		return ca.NewRootCA(cluster)
	}
	if certPEM == "" || keyPEM == "" {
		return nil, api.BadRequest(errors.New("--ca-cert and --ca-key go together: give both, or neither for a root the cluster makes"))
	}
	next, err := ca.ParseRootCA([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		return nil, api.BadRequest(fmt.Errorf("--ca-cert/--ca-key: %w (a self-signed CA certificate whose subject is O=%s, and its key)", err, cluster))
	}
	switch cert := next.Cert(); {
	case next.ClusterID() != cluster:
		return nil, api.BadRequest(fmt.Errorf("--ca-cert names cluster %s in its subject, and this cluster is %s: make it with the subject O=%s", next.ClusterID(), cluster, cluster))
	case next.Digest() == cur.Digest():
		return nil, api.BadRequest(errors.New("--ca-cert is the cluster's current root CA: give a new one, or none for a root the cluster makes"))
	case now.Before(cert.NotBefore) || !now.Before(cert.NotAfter):
		return nil, api.BadRequest(fmt.Errorf("--ca-cert is valid from %s to %s, not now", cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339)))
	}
	return next, nil
}

func repinTokens(t model.JoinTokens, digest string) (model.JoinTokens, error) {
	var out model.JoinTokens
	for _, p := range []struct{ from, to *string }{{&t.Worker, &out.Worker}, {&t.Manager, &out.Manager}} {
		tok, err := ca.ParseJoinToken(*p.from)
		if err != nil {
			return model.JoinTokens{}, fmt.Errorf("the cluster's join token: %w", err)
		}
		if tok, err = tok.Repin(digest); err != nil {
			return model.JoinTokens{}, err
		}
		*p.to = tok.Encode()
	}
	return out, nil
}

// recordCert writes down which root the certificate just issued to a node chains
// to: what tells a rotation's progress and end.
// While a manager still runs a berth that cannot apply the record (a rolling
// upgrade), the certificate is issued without it: no rotation can be under way then,
// as starting one is of the same protocol, and a renewal must not wait for the upgrade.
func (c *Control) recordCert(ctx context.Context, nodeID string, cert issuedCert) error {
	if c.requireProtocol(command.CmdNodeCert.Since(), command.CmdNodeCert.String()) != nil {
		return nil
	}
	_, err := c.apply(ctx, command.CmdNodeCert, command.NodeCert{ID: nodeID, Serial: cert.serial, Root: cert.root})
	return err
}

// certResponse is the answer to a renewal.
func certResponse(nd *model.Node, cert issuedCert, row *model.Cluster) *api.CertificateResponse {
	return &api.CertificateResponse{Role: nd.Role, Certificate: cert.chain, CACertificate: row.RootCACert, TrustedCACertificates: cert.trusted}
}

// RootCA returns the digest of the cluster's root CA and whether a rotation to it
// is under way, for heartbeat answers.
func (c *Control) RootCA() (digest string, rotating bool, err error) {
	row, err := c.st.State().ReadTxn().Cluster(nil)
	if err != nil {
		return "", false, err
	}
	if row.RootRotation != nil {
		return row.RootRotation.Digest, true, nil
	}
	cert, err := ca.ParseCACert([]byte(row.RootCACert))
	if err != nil {
		return "", false, err
	}
	return ca.Digest(cert), false, nil
}
