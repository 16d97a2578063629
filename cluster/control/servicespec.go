package control

import (
	"context"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// CreateService creates a service of no stack (`berth service create`), held to a
// Compose service's rules whatever the client checked.
func (c *Control) CreateService(ctx context.Context, req *api.ServiceCreateRequest) (*api.ServiceCreateResponse, error) {
	if req.Spec == nil {
		return nil, badRequest("no service spec given")
	}
	if err := spec.ValidateService(nil, req.Spec); err != nil {
		return nil, api.BadRequest(err)
	}
	if err := command.CheckReplicas(c.st.State().ReadTxn(), "", req.Spec); err != nil {
		return nil, err
	}
	id := c.newID()
	idx, err := c.apply(ctx, command.CmdServiceCreate, &command.ServiceCreate{ID: id, Spec: req.Spec})
	if err != nil {
		return nil, err
	}
	c.logger.Info("service created", "service", req.Spec.Name, "id", id, "index", idx)
	return &api.ServiceCreateResponse{WriteResponse: api.WriteResponse{Index: idx}, ID: id}, nil
}

// updateServiceSpec gives a service a new spec (`service update` with flags; force
// replaces its tasks even if the spec is the same), held to
// a Compose service's rules against the service's stack. Of a stack's service it is
// drift, which the stack's source reports (or heals).
func (c *Control) updateServiceSpec(ctx context.Context, s *model.Service, next *spec.Service, force bool) (*api.WriteResponse, error) {
	if next.Name != s.Spec.Name {
		return nil, badRequest("service %s cannot be renamed (to %s): create a service of that name instead", s.Name, next.Name)
	}
	tx := c.st.State().ReadTxn()
	var stack *spec.Stack
	if s.Stack != "" {
		var err error
		if stack, err = command.ServiceStack(tx, s, next); err != nil {
			return nil, err
		}
	}
	if err := spec.ValidateService(stack, next); err != nil {
		return nil, api.BadRequest(err)
	}
	if err := command.CheckReplicas(tx, s.Stack, next); err != nil {
		return nil, err
	}
	idx, err := c.apply(ctx, command.CmdServiceUpdate, &command.ServiceUpdate{ID: s.ID, Spec: next, Force: force})
	if err != nil {
		return nil, err
	}
	c.logger.Info("service updated", "service", s.Name, "index", idx)
	return &api.WriteResponse{Index: idx}, nil
}

// RemoveService removes a service (`berth service rm`), of a stack or of none. Of a
// stack's service it is drift: the stack's next deploy creates it again.
func (c *Control) RemoveService(ctx context.Context, ref string) (*api.WriteResponse, error) {
	s, err := resolveService(c.st.State().ReadTxn(), ref)
	if err != nil {
		return nil, err
	}
	idx, err := c.apply(ctx, command.CmdServiceRemove, &command.ServiceRemove{ID: s.ID})
	if err != nil {
		return nil, err
	}
	c.logger.Info("service removed", "service", s.Name, "stack", s.Stack, "index", idx)
	return &api.WriteResponse{Index: idx}, nil
}
