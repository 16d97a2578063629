package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// Secrets and configs are versioned objects: each create writes the next version of
// the name.

// CreateSecret writes the next version of a secret.
func (c *Control) CreateSecret(ctx context.Context, req *api.ObjectCreateRequest) (*api.ObjectCreateResponse, error) {
	return c.createObject(ctx, "secret", req, func(tx *state.ReadTxn) (uint64, error) {
		s, err := tx.Secret(nil, req.Name)
		if err != nil {
			return 0, err
		}
		return s.Version, ownedByStack("secret", s.Name, s.Stack)
	}, func(id string, v uint64) (uint64, error) {
		return c.apply(ctx, command.CmdSecretUpsert, &model.Secret{ID: id, Name: req.Name, Version: v, Data: req.Data, Labels: req.Labels})
	})
}

// Secrets lists every version of every secret.
func (c *Control) Secrets(ctx context.Context, q api.Query) ([]*model.Secret, api.QueryMeta, error) {
	var out []*model.Secret
	idx, err := c.blocking(ctx, q, []string{state.TableSecrets}, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
		var err error
		out, err = tx.Secrets(ws)
		return tx.Index(state.TableSecrets), err
	})
	return out, api.QueryMeta{Index: idx}, err
}

// CreateConfig writes the next version of a config.
func (c *Control) CreateConfig(ctx context.Context, req *api.ObjectCreateRequest) (*api.ObjectCreateResponse, error) {
	return c.createObject(ctx, "config", req, func(tx *state.ReadTxn) (uint64, error) {
		cf, err := tx.Config(nil, req.Name)
		if err != nil {
			return 0, err
		}
		return cf.Version, ownedByStack("config", cf.Name, cf.Stack)
	}, func(id string, v uint64) (uint64, error) {
		return c.apply(ctx, command.CmdConfigUpsert, &model.Config{ID: id, Name: req.Name, Version: v, Data: req.Data, Labels: req.Labels})
	})
}

// Configs lists every version of every config, without data.
func (c *Control) Configs(ctx context.Context, q api.Query) ([]*model.Config, api.QueryMeta, error) {
	var out []*model.Config
	idx, err := c.blocking(ctx, q, []string{state.TableConfigs}, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
		all, err := tx.Configs(ws)
		out = make([]*model.Config, len(all))
		for i, cf := range all {
			cp := cf.Copy()
			cp.Data = nil
			out[i] = cp
		}
		return tx.Index(state.TableConfigs), err
	})
	return out, api.QueryMeta{Index: idx}, err
}

// createObject checks req and writes version latest+1 of the object, retrying when
// another writer took that version first.
func (c *Control) createObject(ctx context.Context, kind string, req *api.ObjectCreateRequest, latest func(tx *state.ReadTxn) (uint64, error),
	write func(id string, version uint64) (uint64, error)) (*api.ObjectCreateResponse, error) {
	if err := checkObject(kind, req); err != nil {
		return nil, err
	}
	var lastErr error
	for range 5 {
		v, err := latest(c.st.State().ReadTxn())
		if err != nil && !errors.Is(err, state.ErrNotFound) {
			return nil, err
		}
		id := c.newID()
		idx, err := write(id, v+1)
		if errors.Is(err, state.ErrConflict) {
			lastErr = err
			if sleepCtx(ctx, 50*time.Millisecond); ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		return &api.ObjectCreateResponse{ID: id, Name: req.Name, Version: v + 1, Index: idx}, nil
	}
	return nil, lastErr
}

// ownedByStack refuses a new version of an object a stack deploys: the stack's next
// deploy would refuse it as someone else's, and its services would never mount it.
func ownedByStack(kind, name, stack string) error {
	if stack == "" {
		return nil
	}
	return badRequest("%s %s belongs to stack %s: change it in the stack's Compose file", kind, name, stack)
}

func checkObject(kind string, req *api.ObjectCreateRequest) error {
	if err := spec.CheckObjectName(kind, req.Name); err != nil {
		return api.BadRequest(err)
	}
	if len(req.Data) == 0 {
		return badRequest("%s %s is empty", kind, req.Name)
	}
	if len(req.Data) > spec.MaxObjectBytes {
		return badRequest("%s %s has %d bytes; the limit is %d", kind, req.Name, len(req.Data), spec.MaxObjectBytes)
	}
	if err := spec.ValidateLabels("labels", req.Labels); err != nil {
		return api.BadRequest(fmt.Errorf("%s %s: %w", kind, req.Name, err))
	}
	return nil
}

// Secret is the latest version of the secret named ref, or the version whose ID (or
// unique ID prefix) is ref, without its data.
func (c *Control) Secret(ctx context.Context, ref string) (*model.Secret, error) {
	s, err := resolveObject(c.st.State().ReadTxn(), command.KindSecret, ref,
		func(tx *state.ReadTxn, id string) (*model.Secret, error) { return tx.SecretByID(nil, id) },
		func(tx *state.ReadTxn, name string) (*model.Secret, error) { return tx.Secret(nil, name) },
		func(tx *state.ReadTxn) ([]*model.Secret, error) { return tx.Secrets(nil) },
		func(s *model.Secret) string { return s.ID })
	if err != nil {
		return nil, err
	}
	return s.Redacted(), nil
}

// Config is the latest version of the config named ref, or the version whose ID (or
// unique ID prefix) is ref, data included: a config is not confidential.
func (c *Control) Config(ctx context.Context, ref string) (*model.Config, error) {
	return resolveObject(c.st.State().ReadTxn(), command.KindConfig, ref,
		func(tx *state.ReadTxn, id string) (*model.Config, error) { return tx.ConfigByID(nil, id) },
		func(tx *state.ReadTxn, name string) (*model.Config, error) { return tx.Config(nil, name) },
		func(tx *state.ReadTxn) ([]*model.Config, error) { return tx.Configs(nil) },
		func(cf *model.Config) string { return cf.ID })
}

// RemoveSecret deletes every version of the secret ref names (by name, or by the ID of
// one of its versions), unless a service or a source uses it.
func (c *Control) RemoveSecret(ctx context.Context, ref string) (*api.WriteResponse, error) {
	s, err := c.Secret(ctx, ref)
	if err != nil {
		return nil, err
	}
	return c.removeObject(ctx, command.KindSecret, s.Name)
}

// RemoveConfig deletes every version of the config ref names, unless a service uses it.
func (c *Control) RemoveConfig(ctx context.Context, ref string) (*api.WriteResponse, error) {
	cf, err := c.Config(ctx, ref)
	if err != nil {
		return nil, err
	}
	return c.removeObject(ctx, command.KindConfig, cf.Name)
}

func (c *Control) removeObject(ctx context.Context, kind, name string) (*api.WriteResponse, error) {
	idx, err := c.apply(ctx, command.CmdObjectRemove, &command.ObjectRemove{Kind: kind, Name: name})
	if err != nil {
		return nil, err
	}
	return &api.WriteResponse{Index: idx}, nil
}

// resolveObject finds a secret or config version by ID, name (the latest version) or
// unique ID prefix, as Docker does.
func resolveObject[T any](tx *state.ReadTxn, kind, ref string, byID, byName func(*state.ReadTxn, string) (T, error),
	all func(*state.ReadTxn) ([]T, error), id func(T) string) (T, error) {
	var zero T
	if ref == "" {
		return zero, badRequest("no %s given", kind)
	}
	o, n, err := state.LookupRef(ref,
		func(s string) (T, error) { return byID(tx, s) },
		func(s string) (T, error) { return byName(tx, s) },
		func() ([]T, error) { return all(tx) },
		id)
	switch {
	case err != nil:
		return zero, err
	case n == 0:
		return zero, &notFoundError{kind, ref}
	case n > 1:
		return zero, badRequest("%s %q is ambiguous: %d %s IDs start with it; give more of the ID", kind, ref, n, kind)
	}
	return o, nil
}
