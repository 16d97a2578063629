package control

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
)

// IssueClientCert signs an operator's client certificate (role admin) for the
// manager's TCP port. The cluster keeps no record of it: it ends when it expires.
func (c *Control) IssueClientCert(_ context.Context, req *api.ClientCertRequest) (*api.ClientCertResponse, error) {
	ttl := time.Duration(req.TTL)
	if ttl < 0 || ttl > ca.MaxClientCertValidity {
		return nil, badRequest("--ttl %s: a client certificate lasts at most %s; ask for a new one when it expires", ttl, ca.MaxClientCertValidity)
	}
	row, err := c.st.State().ReadTxn().Cluster(nil)
	if err != nil {
		return nil, err
	}
	root, err := rootCA(row)
	if err != nil {
		return nil, err
	}
	name := "admin-" + c.newID()
	certPEM, err := root.IssueClientCert(req.CSR, name, ttl)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read the client certificate just issued: %w", err)
	}
	c.logger.Info("client certificate issued", "name", name, "expires", cert.NotAfter)
	return &api.ClientCertResponse{Name: name, Certificate: string(certPEM), CACertificate: row.RootCACert, NotAfter: cert.NotAfter}, nil
}
