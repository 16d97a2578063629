package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/api/server"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/model"
)

// A worker opens the node port too, for what only it can do for the managers: read
// the logs of its tasks and import images into its containerd. Its handler is the
// managers' (server.NewRemoteHandler): every endpoint that needs the cluster state
// refuses with ErrNotManager, the others take manager certificates only.

// openWorkerPort opens the port of a worker. A worker whose port cannot be opened
// still runs its tasks: it only cannot serve the managers.
func (n *Node) openWorkerPort() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.wport != nil || n.meta == nil {
		return
	}
	logger := n.logger.With("role", "worker")
	p, err := openPort(n.cfg.ListenAddr, n.meta.ClusterID, n.ident.Load,
		server.NewRemoteHandler(n, server.WithLogger(logger.With("api", "remote"))), logger)
	if err != nil {
		logger.Error("the node port cannot be opened (--listen-addr): managers cannot read this node's task logs or load images into it",
			"listen", n.cfg.ListenAddr, "error", err)
		return
	}
	n.wport = p
}

// closeWorkerPort closes the worker's port, if it is open.
func (n *Node) closeWorkerPort() {
	n.mu.Lock()
	p := n.wport
	n.wport = nil
	n.mu.Unlock()
	if p != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.close(ctx)
	}
}

// nodeClient returns a client for the node port of nd, over mutual TLS, that accepts
// no certificate but nd's own, and a function to call when done with it.
func (n *Node) nodeClient(nd *model.Node) (*api.Client, func(), error) {
	id := n.ident.Load()
	if id == nil {
		return nil, nil, api.ErrNotInCluster
	}
	if nd.Addr == "" {
		return nil, nil, fmt.Errorf("node %s has no address", nd.Hostname)
	}
	role := ca.Role(nd.Role)
	cfg := n.clientTLS(id)
	cfg.ServerName = role.ServerName()
	clusterID := id.id.ClusterID
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		peer, err := ca.RequireConnIdentity(cs, clusterID, role)
		if err != nil {
			return err
		}
		if peer.NodeID != nd.ID {
			return fmt.Errorf("%w: %s answers with the certificate of node %s, not %s", ca.ErrForbidden, nd.Addr, peer.NodeID, nd.ID)
		}
		return nil
	}
	hc := api.NewTLSHTTPClient(cfg)
	c, err := api.New(nd.Addr, api.WithHTTPClient(hc))
	if err != nil {
		return nil, nil, err
	}
	return c, hc.CloseIdleConnections, nil
}
