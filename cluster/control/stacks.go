package control

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/go-memdb"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// DeployStack writes a whole stack in one raft command (command.StackDeploy) and says
// what it did.
func (c *Control) DeployStack(ctx context.Context, req *api.StackDeployRequest) (*api.StackDeployResponse, error) {
	cmd, err := StackCommand(req, c.newID)
	if err != nil {
		return nil, err
	}
	st := req.Stack
	if err := c.checkReplicas(st); err != nil {
		return nil, err
	}
	before, err := c.stackObjects(st.Name)
	if err != nil {
		return nil, err
	}
	idx, err := c.apply(ctx, command.CmdStackDeploy, cmd)
	if err != nil {
		return nil, err
	}
	changes, err := c.deployChanges(st, idx, before)
	if err != nil {
		return nil, err
	}
	c.logger.Info("stack deployed", "stack", st.Name, "index", idx, "services", len(st.Services), "prune", req.Prune)
	return &api.StackDeployResponse{Index: idx, Changes: changes}, nil
}

// StackCommand makes the raft command that writes a stack a client sent: it checks
// the request, proposes an ID for everything the stack may create, and hashes what is
// deployed.
func StackCommand(req *api.StackDeployRequest, newID func() string) (*command.StackDeploy, error) {
	if err := checkDeploy(req); err != nil {
		return nil, err
	}
	return stackCommand(req, newID)
}

// LoadedStackCommand is StackCommand for a stack this process loaded itself, as a
// GitOps sync does for each stack of a revision: spec.LoadChecked has run every check
// of spec.Validate, so only what the request adds is checked. A client's stack cannot
// take this path: nothing decoded from a request is a spec.Checked.
func LoadedStackCommand(st spec.Checked, prune bool, newID func() string) (*command.StackDeploy, error) {
	if st.Stack() == nil {
		return nil, badRequest("no checked stack given")
	}
	req := api.NewStackDeployRequest(st.Stack(), prune)
	if err := checkContent(req); err != nil {
		return nil, err
	}
	return stackCommand(req, newID)
}

// stackCommand makes the raft command of a checked request.
func stackCommand(req *api.StackDeployRequest, newID func() string) (*command.StackDeploy, error) {
	st := req.Stack
	// One encoding serves the size check and the hash.
	encoded, err := json.Marshal(st)
	if err != nil {
		return nil, api.BadRequest(fmt.Errorf("stack %s cannot be encoded: %w", st.Name, err))
	}
	if err := spec.CheckStackSize(st.Name, len(encoded)); err != nil {
		return nil, api.BadRequest(err)
	}
	ids := map[string]string{}
	for k := range st.Services {
		ids[command.KindService+"/"+k] = newID()
	}
	for k := range st.Networks {
		ids[command.KindNetwork+"/"+k] = newID()
	}
	for k := range st.Secrets {
		ids[command.KindSecret+"/"+k] = newID()
	}
	for k := range st.Configs {
		ids[command.KindConfig+"/"+k] = newID()
	}
	return &command.StackDeploy{
		Stack:      &model.Stack{Name: st.Name, Spec: st, SpecHash: stackHash(encoded, req)},
		SecretData: req.SecretData,
		ConfigData: req.ConfigData,
		IDs:        ids,
		Prune:      req.Prune,
		Limited:    true,
	}, nil
}

// checkDeploy holds a stack to the rules `berth validate` applies (spec.Validate),
// whatever the client checked, then checks what only the request carries: that the
// content of every secret and config came along, within its size limit. Its errors
// never carry the content.
func checkDeploy(req *api.StackDeployRequest) error {
	st := req.Stack
	if st == nil {
		return badRequest("no stack given")
	}
	if err := spec.Validate(st); err != nil {
		return api.BadRequest(err)
	}
	return checkContent(req)
}

// checkContent checks what a stack that passed spec.Validate may still lack: a
// service, and the content of its secrets and configs.
func checkContent(req *api.StackDeployRequest) error {
	if len(req.Stack.Services) == 0 {
		return badRequest("stack %s has no services", req.Stack.Name)
	}
	return checkObjectData(req)
}

// checkObjectData checks that the request carries the content of the stack's own
// secrets and configs, and none for external or undefined ones.
func checkObjectData(req *api.StackDeployRequest) error {
	st := req.Stack
	check := func(kind string, external map[string]bool, data map[string][]byte) error {
		for k, ext := range external {
			d, ok := data[k]
			switch {
			case ext && ok:
				return badRequest("stack %s: %s %s is external, but content was sent for it", st.Name, kind, k)
			case !ext && !ok:
				return badRequest("stack %s: no content for %s %s", st.Name, kind, k)
			case len(d) > spec.MaxObjectBytes:
				return badRequest("stack %s: %s %s has %d bytes; the limit is %d", st.Name, kind, k, len(d), spec.MaxObjectBytes)
			}
		}
		for k := range data {
			if _, ok := external[k]; !ok {
				return badRequest("stack %s: content for %s %s, which the stack does not define", st.Name, kind, k)
			}
		}
		return nil
	}
	secrets := map[string]bool{}
	for k, s := range st.Secrets {
		secrets[k] = s.External
	}
	configs := map[string]bool{}
	for k, cf := range st.Configs {
		configs[k] = cf.External
	}
	if err := check("secret", secrets, req.SecretData); err != nil {
		return err
	}
	return check("config", configs, req.ConfigData)
}

// stackHash identifies what was deployed: the canonical spec (encoded) and digests of
// the content of its secrets and configs (never the content itself).
func stackHash(encoded []byte, req *api.StackDeployRequest) string {
	h := sha256.New()
	h.Write(encoded)
	for _, part := range []map[string][]byte{req.SecretData, req.ConfigData} {
		for _, k := range slices.Sorted(maps.Keys(part)) {
			sum := sha256.Sum256(part[k])
			h.Write([]byte(k))
			h.Write(sum[:])
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// objectRef is a row a deploy may touch, as it stood before.
type objectRef struct{ kind, name, id string }

// stackObjects lists the services and networks a stack has now, for the changes a
// deploy reports.
func (c *Control) stackObjects(stack string) ([]objectRef, error) {
	tx := c.st.State().ReadTxn()
	svcs, err := tx.ServicesByStack(nil, stack)
	if err != nil {
		return nil, err
	}
	var out []objectRef
	for _, s := range svcs {
		out = append(out, objectRef{command.KindService, s.Name, s.ID})
	}
	nets, err := tx.Networks(nil)
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		if n.Stack == stack {
			out = append(out, objectRef{command.KindNetwork, n.Name, n.ID})
		}
	}
	return out, nil
}

// deployChanges works out what the deploy at index idx did: a row created at idx was
// created, one modified at idx updated, one that was there before and is gone removed.
func (c *Control) deployChanges(st *spec.Stack, idx uint64, before []objectRef) ([]api.ObjectChange, error) {
	tx := c.st.State().ReadTxn()
	action := func(m model.Meta) string {
		switch {
		case m.CreateIndex == idx:
			return api.ActionCreated
		case m.ModifyIndex == idx:
			return api.ActionUpdated
		}
		return api.ActionUnchanged
	}
	var out []api.ObjectChange
	for _, k := range slices.Sorted(maps.Keys(st.Networks)) {
		n := st.Networks[k]
		if n.External {
			continue
		}
		row, err := tx.NetworkByName(nil, n.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, api.ObjectChange{Kind: command.KindNetwork, Name: row.Name, ID: row.ID, Action: action(row.Meta)})
	}
	for _, k := range slices.Sorted(maps.Keys(st.Secrets)) {
		s := st.Secrets[k]
		if s.External {
			continue
		}
		row, err := tx.Secret(nil, s.Name)
		if err != nil {
			return nil, err
		}
		a := action(row.Meta)
		if a == api.ActionCreated && row.Version > 1 {
			a = api.ActionUpdated
		}
		out = append(out, api.ObjectChange{Kind: command.KindSecret, Name: row.Name, ID: row.ID, Action: a, Version: row.Version})
	}
	for _, k := range slices.Sorted(maps.Keys(st.Configs)) {
		cf := st.Configs[k]
		if cf.External {
			continue
		}
		row, err := tx.Config(nil, cf.Name)
		if err != nil {
			return nil, err
		}
		a := action(row.Meta)
		if a == api.ActionCreated && row.Version > 1 {
			a = api.ActionUpdated
		}
		out = append(out, api.ObjectChange{Kind: command.KindConfig, Name: row.Name, ID: row.ID, Action: a, Version: row.Version})
	}
	for _, k := range slices.Sorted(maps.Keys(st.Services)) {
		row, err := tx.ServiceByName(nil, spec.FullName(st.Name, k))
		if err != nil {
			return nil, err
		}
		out = append(out, api.ObjectChange{Kind: command.KindService, Name: row.Name, ID: row.ID, Action: action(row.Meta)})
	}
	for _, o := range before {
		var err error
		switch o.kind {
		case command.KindService:
			_, err = tx.Service(nil, o.id)
		case command.KindNetwork:
			_, err = tx.Network(nil, o.id)
		}
		if errors.Is(err, state.ErrNotFound) {
			out = append(out, api.ObjectChange{Kind: o.kind, Name: o.name, ID: o.id, Action: api.ActionRemoved})
		}
	}
	return out, nil
}

// RemoveStack deletes a stack with its services, networks, secrets and configs; the
// orchestrator stops and deletes the tasks.
func (c *Control) RemoveStack(ctx context.Context, name string) (*api.WriteResponse, error) {
	if name == "" {
		return nil, badRequest("no stack given")
	}
	idx, err := c.apply(ctx, command.CmdStackRemove, &command.StackRemove{Name: name})
	if errors.Is(err, state.ErrNotFound) {
		return nil, &notFoundError{"stack", name}
	}
	if err != nil {
		return nil, err
	}
	c.logger.Info("stack removed", "stack", name, "index", idx)
	return &api.WriteResponse{Index: idx}, nil
}

// Stacks lists the stacks with their number of services, by name.
func (c *Control) Stacks(ctx context.Context, q api.Query) ([]*api.StackSummary, api.QueryMeta, error) {
	var out []*api.StackSummary
	idx, err := c.blocking(ctx, q, []string{state.TableStacks, state.TableServices}, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
		out = nil
		byName := map[string]*api.StackSummary{}
		stacks, err := tx.Stacks(ws)
		if err != nil {
			return 0, err
		}
		for _, s := range stacks {
			byName[s.Name] = &api.StackSummary{Name: s.Name, Source: s.Source, Revision: s.Revision}
		}
		svcs, err := tx.Services(ws)
		if err != nil {
			return 0, err
		}
		for _, s := range svcs {
			if s.Stack == "" {
				continue // `service create`: of no stack
			}
			sum := byName[s.Stack]
			if sum == nil {
				// Services whose stack row is gone still show, so that they can be
				// found and removed.
				sum = &api.StackSummary{Name: s.Stack}
				byName[s.Stack] = sum
			}
			sum.Services++
		}
		for _, k := range slices.Sorted(maps.Keys(byName)) {
			out = append(out, byName[k])
		}
		return tx.Index(state.TableStacks, state.TableServices), nil
	})
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	return out, api.QueryMeta{Index: idx}, nil
}
