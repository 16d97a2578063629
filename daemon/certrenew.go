package daemon

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
)

// Bounds of certLoop's sleep: it looks again at least every maxCertWait (a clock
// that jumps, a suspended machine), and retries a failed renewal after a backoff
// from minCertRetry up to maxCertRetry.
const (
	maxCertWait  = time.Hour
	minCertRetry = time.Second
	maxCertRetry = 30 * time.Second
)

// certWait is how long certLoop sleeps before it looks at leaf again: until the
// certificate is due for renewal (ca.RenewAt), or a backoff after failures.
func certWait(now time.Time, leaf *x509.Certificate, failures int) time.Duration {
	if failures > 0 {
		return min(minCertRetry<<min(failures-1, 5), maxCertRetry)
	}
	if leaf == nil {
		return maxCertWait
	}
	return min(max(ca.RenewAt(leaf).Sub(now), 0), maxCertWait)
}

// certWanted says why a heartbeat answer calls for a new certificate, or "": the
// cluster's root is not the one this node's certificate chains to (a rotation
// started), or the node still trusts a previous root that the cluster no longer
// does (the rotation ended). An answer of a manager that predates rotation says
// nothing of roots and asks for nothing.
func certWanted(id *identity, resp *api.HeartbeatResponse) string {
	switch {
	case id == nil || resp.RootCA == "":
		return ""
	case ca.Digest(id.root) != resp.RootCA:
		return "the cluster's root CA was rotated"
	case !resp.RotatingCA && len(id.trusted) > 0:
		return "the root CA rotation is over"
	}
	return ""
}

// wantCert asks certLoop for a new certificate now; a request already waiting
// covers this one.
func (n *Node) wantCert(reason string) {
	select {
	case n.certKick <- reason:
	default:
	}
}

// certLoop keeps the node's certificate valid: it renews it, with a fresh key, once
// two thirds of its life have passed, and when a heartbeat says the root changed.
func (n *Node) certLoop(ctx context.Context) {
	failures := 0
	var retry string
	for {
		var leaf *x509.Certificate
		if id := n.ident.Load(); id != nil {
			leaf = id.leaf
		}
		reason := retry
		t := time.NewTimer(certWait(time.Now(), leaf, failures))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case reason = <-n.certKick:
			t.Stop()
		case now := <-t.C:
			if reason == "" && leaf != nil && ca.NeedsRenewal(leaf, now) {
				reason = fmt.Sprintf("it expires at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
			}
		}
		if reason == "" {
			continue
		}
		if err := n.renewCert(ctx, reason); err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			retry = reason
			n.logger.Warn("could not renew the node certificate", "reason", reason, "failures", failures, "error", err)
			continue
		}
		failures, retry = 0, ""
		// A heartbeat that raced with this renewal asked for what it just did.
		select {
		case <-n.certKick:
		default:
		}
	}
}

// renewCert replaces the node's certificate and key with new ones of the same role,
// issued under the cluster's current root, and swaps them in without a restart: the
// node port and every dialler read the identity at each handshake.
func (n *Node) renewCert(ctx context.Context, reason string) error {
	if err := n.lock(ctx); err != nil {
		return err
	}
	defer n.unlock()
	meta := n.metaCopy()
	if meta == nil || n.ident.Load() == nil {
		return api.ErrNotInCluster
	}
	resp, keyPEM, err := n.requestCert(ctx, meta.NodeID)
	if err != nil {
		return err
	}
	if resp.Role != meta.Role {
		// A promotion or demotion: changeRole gets the certificate of the new role
		// and does what else the change needs.
		n.logger.Info("certificate renewal left to the role change under way", "from", meta.Role, "to", resp.Role)
		return nil
	}
	id, err := newTrustedIdentity([]byte(resp.CACertificate), []byte(resp.TrustedCACertificates), []byte(resp.Certificate), keyPEM)
	if err != nil {
		return fmt.Errorf("the certificate the cluster issued: %w", err)
	}
	if err := n.dir.saveIdentity(id, keyPEM); err != nil {
		return err
	}
	n.setIdentity(id)
	n.logger.Info("node certificate renewed", "reason", reason, "serial", id.leaf.SerialNumber.Text(16),
		"not_after", id.leaf.NotAfter.UTC().Format(time.RFC3339), "root", ca.Digest(id.root))
	return nil
}

// requestCert makes a fresh key and has the cluster sign it.
func (n *Node) requestCert(ctx context.Context, nodeID string) (*api.CertificateResponse, []byte, error) {
	keyPEM, csr, err := ca.NewNodeKeyAndCSR(nodeID)
	if err != nil {
		return nil, nil, err
	}
	resp, err := n.renew(ctx, csr)
	return resp, keyPEM, err
}
