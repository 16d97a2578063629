package control

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// JoinToken returns the join token of role, rotating it first with rotate.
func (c *Control) JoinToken(ctx context.Context, role model.NodeRole, rotate bool) (*api.JoinTokenResponse, error) {
	pick := func(row *model.Cluster) *string {
		if role == model.RoleManager {
			return &row.JoinTokens.Manager
		}
		return &row.JoinTokens.Worker
	}
	row, err := c.st.State().ReadTxn().Cluster(nil)
	if err != nil {
		return nil, err
	}
	if rotate {
		row, _, err = c.updateCluster(ctx, func(row *model.Cluster) (bool, error) {
			old, err := ca.ParseJoinToken(*pick(row))
			if err != nil {
				return false, err
			}
			t, err := ca.RotateJoinToken(old)
			if err != nil {
				return false, err
			}
			*pick(row) = t.Encode()
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		c.logger.Info("join token rotated", "role", role)
	}
	_, addr := c.peers.Self()
	return &api.JoinTokenResponse{Role: role, Token: *pick(row), ManagerAddr: addr}, nil
}

// RequestJoin admits a node: the token decides the role; the node ID is made here.
func (c *Control) RequestJoin(ctx context.Context, req *api.NodeJoinRequest) (*api.NodeJoinResponse, error) {
	tx := c.st.State().ReadTxn()
	row, err := tx.Cluster(nil)
	if err != nil {
		return nil, err
	}
	role, err := checkJoin(row, req)
	if err != nil {
		return nil, err
	}
	if err := c.replaceDownNode(ctx, tx, req.Hostname); err != nil {
		return nil, err
	}
	id := c.newID()
	cert, err := issueNodeCert(row, req.CSR, id, role, req.Addr)
	if err != nil {
		return nil, err
	}
	nd := &model.Node{
		ID: id, Hostname: req.Hostname, Role: model.NodeRole(role), Availability: model.AvailabilityActive,
		Platform: req.Platform, Resources: req.Resources, Addr: req.Addr,
		Status:     model.NodeStatus{State: model.NodeReady, Timestamp: c.clock()},
		CertSerial: cert.serial, CertRoot: cert.root,
		Engine: req.Engine,
	}
	if role == ca.RoleManager {
		nd.ManagerStatus = &model.ManagerStatus{Reachability: model.ReachabilityReachable, Addr: req.Addr}
	}
	if _, err := c.apply(ctx, command.CmdNodeUpsert, nd); err != nil {
		return nil, err
	}
	resp := &api.NodeJoinResponse{
		NodeID: id, Role: nd.Role, Certificate: cert.chain, CACertificate: row.RootCACert,
		TrustedCACertificates: cert.trusted, Managers: c.ManagerAddrs(),
	}
	if role == ca.RoleManager {
		resp.UnlockKeyGeneration = row.UnlockKeyGeneration
		if row.Autolock {
			resp.UnlockKey = row.UnlockKey
		}
	}
	c.logger.Info("node joined", "node", id, "hostname", req.Hostname, "role", role, "addr", req.Addr)
	return resp, nil
}

// checkJoin verifies a join request's token against the cluster row and returns the
// role it grants.
func checkJoin(row *model.Cluster, req *api.NodeJoinRequest) (ca.Role, error) {
	worker, err := ca.ParseJoinToken(row.JoinTokens.Worker)
	if err != nil {
		return "", fmt.Errorf("the cluster's worker token: %w", err)
	}
	manager, err := ca.ParseJoinToken(row.JoinTokens.Manager)
	if err != nil {
		return "", fmt.Errorf("the cluster's manager token: %w", err)
	}
	role, err := ca.VerifyJoinToken(req.Token, worker, manager)
	if err != nil {
		return "", err
	}
	if req.Hostname == "" || strings.ContainsRune(req.Hostname, 0) {
		return "", badRequest("the joining node gave no hostname")
	}
	if _, _, err := net.SplitHostPort(req.Addr); err != nil {
		return "", badRequest("the joining node's address %q is not host:port", req.Addr)
	}
	return role, nil
}

// replaceDownNode removes the record of a node named hostname that is down: the same
// machine coming back after `berth leave`. One that is up is a conflict.
func (c *Control) replaceDownNode(ctx context.Context, tx *state.ReadTxn, hostname string) error {
	old, err := tx.NodeByHostname(nil, hostname)
	if err != nil {
		return nil
	}
	if old.Status.State == model.NodeReady || c.IsVoter(old.ID) {
		return fmt.Errorf("%w: a node named %s is already in the cluster and up (%s): give the new node another --hostname, or remove the old one with `berth node rm`",
			state.ErrConflict, hostname, old.ID)
	}
	if _, err := c.apply(ctx, command.CmdNodeRemove, command.NodeRemove{ID: old.ID}); err != nil {
		return err
	}
	c.logger.Info("replaced the record of a node that was down", "node", old.ID, "hostname", old.Hostname)
	return nil
}

// RenewCertificate issues the caller a new certificate. The role is the cluster's
// record of the node, whatever the node holds now: this is how promotions and
// demotions reach it.
func (c *Control) RenewCertificate(ctx context.Context, caller ca.Identity, req *api.CertificateRequest) (*api.CertificateResponse, error) {
	tx := c.st.State().ReadTxn()
	nd, err := tx.Node(nil, caller.NodeID)
	if err != nil {
		return nil, err
	}
	row, err := tx.Cluster(nil)
	if err != nil {
		return nil, err
	}
	cert, err := issueNodeCert(row, req.CSR, nd.ID, ca.Role(nd.Role), nd.Addr)
	if err != nil {
		return nil, err
	}
	if err := c.recordCert(ctx, nd.ID, cert); err != nil {
		return nil, err
	}
	resp := certResponse(nd, cert, row)
	if nd.Role == model.RoleManager {
		resp.UnlockKeyGeneration = row.UnlockKeyGeneration
		if row.Autolock {
			resp.UnlockKey = row.UnlockKey
		}
	}
	c.logger.Info("certificate issued", "node", nd.ID, "hostname", nd.Hostname, "role", nd.Role, "serial", cert.serial, "root", cert.root)
	return resp, nil
}

// Member checks that a node whose certificate verified is still in the cluster, so
// that removing a node revokes its certificate.
func (c *Control) Member(nodeID string) error {
	if _, err := c.st.State().ReadTxn().Node(nil, nodeID); err != nil {
		if errors.Is(err, state.ErrNotFound) {
			return fmt.Errorf("%w: node %s is not a member of this cluster (was it removed?)", ca.ErrForbidden, nodeID)
		}
		return err
	}
	return nil
}

func rootCA(row *model.Cluster) (*ca.RootCA, error) {
	if row.RootCAKey == "" {
		return nil, errors.New("the cluster row holds no CA key")
	}
	return ca.ParseRootCA([]byte(row.RootCACert), []byte(row.RootCAKey))
}

func certSerial(certPEM []byte) string {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return ""
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return ""
	}
	return cert.SerialNumber.Text(16)
}
