package command

import (
	"bytes"
	"errors"
	"fmt"
	"maps"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// ServiceCreate writes a service of no stack (`berth service create`): its name is
// the one given, and what it names (networks, secrets, configs) is the cluster's
// (spec.StandaloneStack). The proposer checked the spec (spec.ValidateService).
type ServiceCreate struct {
	ID   string        `json:"id"`
	Spec *spec.Service `json:"spec"`
}

// ServiceUpdate replaces a service's spec (`berth service update` with flags): the
// spec before it becomes the previous spec, which a rollback returns to, and its
// tasks roll to the new one. The proposer checked the spec against the service's
// stack (or spec.ValidateService for one of no stack).
type ServiceUpdate struct {
	ID   string        `json:"id"`
	Spec *spec.Service `json:"spec"`
	// Force replaces every task even when the spec is the same (--force).
	Force bool `json:"force,omitempty"`
}

// ServiceRemove deletes a service (`berth service rm`); its tasks are the
// orchestrator's to stop and reap, as for StackRemove.
type ServiceRemove struct {
	ID string `json:"id"`
}

// ServiceStack returns the stack spec svc's names resolve against: its stack's,
// or, for a service of no stack, spec.StandaloneStack of the spec given.
func ServiceStack(tx *state.ReadTxn, svc *model.Service, s *spec.Service) (*spec.Stack, error) {
	if svc.Stack == "" {
		return spec.StandaloneStack(s), nil
	}
	stack, err := tx.Stack(nil, svc.Stack)
	if err != nil {
		return nil, fmt.Errorf("service %s: stack %s: %w", svc.Name, svc.Stack, err)
	}
	if stack.Spec == nil {
		return nil, fmt.Errorf("%w: service %s: stack %s has no spec", state.ErrInvalid, svc.Name, svc.Stack)
	}
	return stack.Spec, nil
}

func applyServiceCreate(tx *state.WriteTxn, c *ServiceCreate) error {
	if c.Spec == nil || c.Spec.Name == "" {
		return fmt.Errorf("%w: service create without a spec", state.ErrInvalid)
	}
	if cur, err := tx.ServiceByName(nil, c.Spec.Name); err == nil {
		return fmt.Errorf("%w: a service named %s already exists%s: choose another name, or change it with `berth service update`",
			state.ErrConflict, c.Spec.Name, owner(cur.Stack))
	} else if !errors.Is(err, state.ErrNotFound) {
		return err
	}
	next := &model.Service{ID: c.ID, Name: c.Spec.Name, Spec: *c.Spec, SpecVersion: 1}
	if err := respec(tx, next, nil); err != nil {
		return err
	}
	return tx.UpsertService(next)
}

func applyServiceUpdate(tx *state.WriteTxn, c *ServiceUpdate) error {
	cur, err := tx.Service(nil, c.ID)
	if err != nil {
		return err
	}
	if c.Spec == nil || c.Spec.Name != cur.Spec.Name {
		return fmt.Errorf("%w: service update of %s without its spec", state.ErrInvalid, cur.Name)
	}
	next := cur.Copy()
	next.Spec = *c.Spec
	if err := respec(tx, next, cur.Endpoint.VIPs); err != nil {
		return err
	}
	if !c.Force && bytes.Equal(cur.Spec.Canonical(), next.Spec.Canonical()) && maps.Equal(cur.Objects, next.Objects) {
		return nil
	}
	if c.Force {
		next.ForceUpdate++
	}
	keepPrevious(next, cur)
	next.SpecVersion++
	next.UpdateStatus = model.UpdateStatus{}
	return tx.UpsertService(next)
}

// respec gives next, whose spec is set, what follows from the spec: the replica
// limit checked, the versions of its secrets and configs pinned (the newest) and
// its VIPs, keeping those of vips on networks it stays on.
func respec(tx *state.WriteTxn, next *model.Service, vips []model.VIP) error {
	s := &next.Spec
	if err := CheckReplicas(&tx.ReadTxn, next.Stack, s); err != nil {
		return err
	}
	sp, err := ServiceStack(&tx.ReadTxn, next, s)
	if err != nil {
		return err
	}
	if next.Objects, err = newestPins(&tx.ReadTxn, sp, s); err != nil {
		return err
	}
	space := newAddrSpace(tx)
	if s.PublishesIngress() {
		if err := ensureIngress(tx, space, next.Stack); err != nil {
			return err
		}
	}
	nets, err := ServiceNetworks(&tx.ReadTxn, sp, s)
	if err != nil {
		return err
	}
	next.Endpoint.VIPs, err = serviceVIPs(space, vips, s, nets)
	return err
}

// newestPins pins the newest version of every secret and config s mounts.
func newestPins(tx *state.ReadTxn, sp *spec.Stack, s *spec.Service) (map[string]uint64, error) {
	pins := map[string]uint64{}
	secrets := func(key string) *spec.FileObject {
		if o := sp.Secrets[key]; o != nil {
			return &o.FileObject
		}
		return nil
	}
	configs := func(key string) *spec.FileObject {
		if o := sp.Configs[key]; o != nil {
			return &o.FileObject
		}
		return nil
	}
	err := pinNewest(pins, s.Name, KindSecret, s.Secrets, secrets, func(name string) (uint64, error) {
		row, err := tx.Secret(nil, name)
		if err != nil {
			return 0, err
		}
		return row.Version, nil
	})
	if err == nil {
		err = pinNewest(pins, s.Name, KindConfig, s.Configs, configs, func(name string) (uint64, error) {
			row, err := tx.Config(nil, name)
			if err != nil {
				return 0, err
			}
			return row.Version, nil
		})
	}
	if err != nil || len(pins) == 0 {
		return nil, err
	}
	return pins, nil
}

// pinNewest pins the newest version of each object of kind that refs name.
func pinNewest(pins map[string]uint64, svc, kind string, refs []spec.FileReference,
	object func(key string) *spec.FileObject, newest func(name string) (uint64, error)) error {
	for _, r := range refs {
		o := object(r.Source)
		if o == nil {
			return fmt.Errorf("%w: service %s: %s %s is not defined", state.ErrNotFound, svc, kind, r.Source)
		}
		v, err := newest(o.Name)
		if err != nil {
			return fmt.Errorf("service %s: %s %s: %w (create it first with `berth %s create`)", svc, kind, o.Name, err, kind)
		}
		pins[model.ObjectKey(kind, o.Name)] = v
	}
	return nil
}

func applyServiceRemove(tx *state.WriteTxn, c *ServiceRemove) error {
	if _, err := tx.Service(nil, c.ID); err != nil {
		return err
	}
	return tx.DeleteService(c.ID)
}
