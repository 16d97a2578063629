package command

import (
	"fmt"
	"slices"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// ObjectRemove deletes every version of a secret or config (`berth secret rm`,
// `berth config rm`). Kind is KindSecret or KindConfig.
type ObjectRemove struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// applyObjectRemove refuses an object a service mounts or a source keeps its
// credentials in, as Docker refuses a secret in use: the check is made here, in the
// same transaction as the delete, so that no deploy can start using it in between.
func applyObjectRemove(tx *state.WriteTxn, r *ObjectRemove) error {
	if err := checkObjectUnused(&tx.ReadTxn, r.Kind, r.Name); err != nil {
		return err
	}
	ids, err := objectVersions(&tx.ReadTxn, r.Kind, r.Name)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return fmt.Errorf("%s %s: %w", r.Kind, r.Name, state.ErrNotFound)
	}
	del := tx.DeleteSecret
	if r.Kind == KindConfig {
		del = tx.DeleteConfig
	}
	for _, id := range ids {
		if err := del(id); err != nil {
			return err
		}
	}
	return nil
}

// checkObjectUnused says which service or source still uses the object.
func checkObjectUnused(tx *state.ReadTxn, kind, name string) error {
	services, err := tx.Services(nil)
	if err != nil {
		return err
	}
	key := model.ObjectKey(kind, name)
	for _, s := range services {
		if _, ok := s.Objects[key]; ok {
			return &refusal{state.ErrConflict, fmt.Sprintf("%s %s is in use by service %s: remove it from the service first", kind, name, s.Name)}
		}
	}
	if kind != KindSecret {
		return nil
	}
	sources, err := tx.Sources(nil)
	if err != nil {
		return err
	}
	for _, src := range sources {
		if slices.Contains(src.SecretRefs(), name) {
			return &refusal{state.ErrConflict, fmt.Sprintf("secret %s holds the credentials of source %s: `berth source rm %s` removes both", name, src.Name, src.Name)}
		}
	}
	return nil
}

// objectVersions returns the IDs of every version of the named secret or config.
func objectVersions(tx *state.ReadTxn, kind, name string) ([]string, error) {
	var ids []string
	if kind == KindConfig {
		all, err := tx.Configs(nil)
		for _, c := range all {
			if c.Name == name {
				ids = append(ids, c.ID)
			}
		}
		return ids, err
	}
	all, err := tx.Secrets(nil)
	for _, s := range all {
		if s.Name == name {
			ids = append(ids, s.ID)
		}
	}
	return ids, err
}
