package api

import (
	"context"
	"net/http"
)

// IssueClientCert asks a manager, on its local socket, for an operator's client
// certificate for the key whose CSR req carries.
func (c *Client) IssueClientCert(ctx context.Context, req ClientCertRequest) (*ClientCertResponse, error) {
	var out ClientCertResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/ca/client-cert", req, &out)
	return &out, err
}
