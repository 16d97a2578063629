package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berthd/berth/spec"
)

// ServiceCreateRequest is `berth service create`: a service of no stack, named
// as its spec is. The manager holds it to a Compose service's rules
// (spec.ValidateService), whatever the client checked.
type ServiceCreateRequest struct {
	Spec *spec.Service `json:"spec"`
}

// ServiceCreateResponse says which service was created, at which index.
type ServiceCreateResponse struct {
	WriteResponse
	ID string `json:"id"`
}

// CreateService creates a service of no stack.
func (c *Client) CreateService(ctx context.Context, req ServiceCreateRequest) (*ServiceCreateResponse, error) {
	var out ServiceCreateResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/services", req, &out)
	return &out, err
}

// RemoveService removes a service, of a stack or of none.
func (c *Client) RemoveService(ctx context.Context, ref string) (*WriteResponse, error) {
	var out WriteResponse
	_, err := c.do(ctx, http.MethodDelete, "/v1/services/"+url.PathEscape(ref), nil, &out)
	return &out, err
}
