package command

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// SourceAdd creates a GitOps source; the name must be free. Secrets holds the
// credentials its AuthRef and WebhookSecretRef name, written in the same entry.
type SourceAdd struct {
	Source  *model.Source   `json:"source"`
	Secrets []*model.Secret `json:"secrets,omitempty"`
}

// SourceUpdate changes what an operator may change on a source. Nil fields stay.
type SourceUpdate struct {
	Name      string `json:"name"`
	Suspended *bool  `json:"suspended,omitempty"`
	// Pin sets PinnedRevision (`source rollback`); an empty string clears it.
	Pin *string `json:"pin,omitempty"`
	// RequestSync asks the leader's applier for a sync now.
	RequestSync bool `json:"request_sync,omitempty"`
	// CA replaces the source's CA certificates.
	CA *string `json:"ca,omitempty"`
	// Settings changes what and how the source syncs (`source update`), checked
	// by the manager that wrote the command.
	Settings *SourceSettings `json:"settings,omitempty"`
}

// SourceSettings are a source's settings that `source update` changes. Nil fields stay.
type SourceSettings struct {
	Branch   *string        `json:"branch,omitempty"`
	Path     *string        `json:"path,omitempty"`
	Interval *spec.Duration `json:"interval,omitempty"`
	Prune    *bool          `json:"prune,omitempty"`
	SelfHeal *bool          `json:"self_heal,omitempty"`
	// Credentials becomes the next version of the source's credentials secret
	// (its Version is decided here), which the source then refers to.
	Credentials *model.Secret `json:"credentials,omitempty"`
	// AgeKey is the next version of the source's age key secret, AgeRecipients its
	// public keys; RemoveAgeKey deletes the key (sourceagekey.go).
	AgeKey        *model.Secret `json:"age_key,omitempty"`
	AgeRecipients []string      `json:"age_recipients,omitempty"`
	RemoveAgeKey  bool          `json:"remove_age_key,omitempty"`
	// Notify changes where the source's sync results go (source_notify.go).
	Notify *SourceNotifyChange `json:"notify,omitempty"`
}

// SourceRemove deletes a source. With Prune its stacks go too; without, they stay
// running as stacks of no source, which `stack rm` removes.
type SourceRemove struct {
	Name  string `json:"name"`
	Prune bool   `json:"prune,omitempty"`
}

// SourceSync records one sync of a source, and when it applied a revision, writes that
// revision's stacks in the same entry: a revision is applied whole or not at all.
type SourceSync struct {
	Name string    `json:"name"`
	Now  time.Time `json:"now"`
	// Fetched is the revision the source's remote or folder had, when the sync read it.
	Fetched string `json:"fetched,omitempty"`
	// Record is the sync's history entry; its Revision is the revision synced.
	Record model.SyncRecord `json:"record"`
	Status model.SyncState  `json:"status"`
	// Answered is the source's SyncRequests count the sync answered.
	Answered uint64 `json:"answered"`
	// Apply is set when the sync writes the revision: Stacks then holds every stack of
	// it, and with Prune the source's stacks that it no longer has are removed.
	Apply  bool           `json:"apply,omitempty"`
	Stacks []*StackDeploy `json:"stacks,omitempty"`
	Prune  bool           `json:"prune,omitempty"`
}

func applySourceAdd(tx *state.WriteTxn, a *SourceAdd) error {
	if a.Source == nil {
		return fmt.Errorf("%w: source add without a source", state.ErrInvalid)
	}
	if _, err := tx.Source(nil, a.Source.Name); err == nil {
		return &refusal{state.ErrConflict, fmt.Sprintf("source %s already exists; remove it first (berth source rm %s) or choose another name", a.Source.Name, a.Source.Name)}
	} else if !errors.Is(err, state.ErrNotFound) {
		return err
	}
	for _, sec := range a.Secrets {
		if sec == nil || !slices.Contains(a.Source.SecretRefs(), sec.Name) {
			return fmt.Errorf("%w: source %s: a secret it does not refer to", state.ErrInvalid, a.Source.Name)
		}
		if _, err := tx.Secret(nil, sec.Name); err == nil {
			return &refusal{state.ErrConflict, fmt.Sprintf("secret %s, which source %s would keep its credentials in, already exists; choose another name for the source", sec.Name, a.Source.Name)}
		}
		if err := tx.UpsertSecret(sec); err != nil {
			return err
		}
	}
	return tx.UpsertSource(a.Source)
}

func applySourceUpdate(tx *state.WriteTxn, u *SourceUpdate) error {
	cur, err := tx.Source(nil, u.Name)
	if err != nil {
		return err
	}
	next := cur.Copy()
	if u.Suspended != nil {
		next.Suspended = *u.Suspended
		if !next.Suspended {
			// Resuming follows the branch again, as the rollback's pin promises.
			next.PinnedRevision = ""
		}
	}
	if u.Pin != nil {
		next.PinnedRevision = *u.Pin
	}
	if u.RequestSync {
		next.SyncRequests++
	}
	if u.CA != nil {
		next.CA = *u.CA
	}
	if u.Settings != nil {
		if err := applySourceSettings(tx, next, u.Settings); err != nil {
			return err
		}
	}
	return tx.UpsertSource(next)
}

func applySourceSettings(tx *state.WriteTxn, src *model.Source, s *SourceSettings) error {
	setIf(&src.Branch, s.Branch)
	setIf(&src.Path, s.Path)
	setIf(&src.Interval, s.Interval)
	setIf(&src.Prune, s.Prune)
	setIf(&src.SelfHeal, s.SelfHeal)
	if err := applyAgeKey(tx, src, s); err != nil {
		return err
	}
	if s.Notify != nil {
		if err := applySourceNotify(tx, src, s.Notify); err != nil {
			return err
		}
	}
	if s.Credentials == nil {
		return nil
	}
	if err := upsertSourceSecret(tx, src, src.AuthRef, *s.Credentials); err != nil {
		return err
	}
	src.AuthRef = s.Credentials.Name
	return nil
}

// upsertSourceSecret writes sec as the next version of a secret of the source: ref,
// what the source calls it now, must be its name if it exists already.
func upsertSourceSecret(tx *state.WriteTxn, src *model.Source, ref string, sec model.Secret) error {
	sec.Version = 1
	if cur, err := tx.Secret(nil, sec.Name); err == nil {
		if ref != sec.Name {
			return &refusal{state.ErrConflict, fmt.Sprintf("secret %s, which source %s would keep its credentials in, already exists and is not the source's; remove it first", sec.Name, src.Name)}
		}
		sec.Version = cur.Version + 1
	} else if !errors.Is(err, state.ErrNotFound) {
		return err
	}
	return tx.UpsertSecret(&sec)
}

// setIf sets *dst to *v when v is given.
func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func applySourceRemove(tx *state.WriteTxn, r *SourceRemove) error {
	src, err := tx.Source(nil, r.Name)
	if err != nil {
		return err
	}
	if err := deleteSecrets(tx, src.SecretRefs()...); err != nil {
		return err
	}
	stacks, err := tx.StacksBySource(nil, r.Name)
	if err != nil {
		return err
	}
	for _, st := range stacks {
		if r.Prune {
			if err := applyStackRemove(tx, &StackRemove{Name: st.Name}); err != nil {
				return err
			}
			continue
		}
		kept := st.Copy()
		kept.Source, kept.Revision = "", ""
		if err := tx.UpsertStack(kept); err != nil {
			return err
		}
	}
	return tx.DeleteSource(r.Name)
}

func applySourceSync(tx *state.WriteTxn, s *SourceSync) error {
	cur, err := tx.Source(nil, s.Name)
	if err != nil {
		return err
	}
	if s.Apply {
		if err := applyRevision(tx, s); err != nil {
			return err
		}
	}
	next := cur.Copy()
	if s.Fetched != "" {
		next.LastFetchedRevision, next.LastFetchedAt = s.Fetched, s.Now
	}
	if s.Apply {
		next.LastAppliedRevision, next.LastAppliedAt = s.Record.Revision, s.Now
	}
	next.Status, next.Message = s.Status, s.Record.Message
	next.AnsweredRequests = max(next.AnsweredRequests, s.Answered)
	rec := s.Record
	rec.Time = s.Now
	next.History = append(next.History, rec)
	return tx.UpsertSource(next)
}

// applyRevision writes every stack of the revision, owned by the source, and prunes
// the source's stacks the revision no longer has.
func applyRevision(tx *state.WriteTxn, s *SourceSync) error {
	keep := map[string]bool{}
	for _, d := range s.Stacks {
		if d == nil || d.Stack == nil {
			return fmt.Errorf("%w: source %s: a stack of revision %s has no row", state.ErrInvalid, s.Name, s.Record.Revision)
		}
		name := d.Stack.Name
		if keep[name] {
			return fmt.Errorf("%w: source %s: stack %s appears twice in revision %s", state.ErrInvalid, s.Name, name, s.Record.Revision)
		}
		keep[name] = true
		if cur, err := tx.Stack(nil, name); err == nil && cur.Source != "" && cur.Source != s.Name {
			return fmt.Errorf("stack %s belongs to source %s: rename the stack, or remove it from that source first: %w", name, cur.Source, state.ErrConflict)
		} else if err != nil && !errors.Is(err, state.ErrNotFound) {
			return err
		}
		if d.Stack.Source != s.Name || d.Stack.Revision != s.Record.Revision {
			return fmt.Errorf("%w: source %s: stack %s is not marked as revision %s of the source", state.ErrInvalid, s.Name, name, s.Record.Revision)
		}
		if err := applyStackDeploy(tx, d); err != nil {
			return fmt.Errorf("stack %s: %w", name, err)
		}
	}
	if !s.Prune {
		return nil
	}
	owned, err := tx.StacksBySource(nil, s.Name)
	if err != nil {
		return err
	}
	for _, st := range owned {
		if !keep[st.Name] {
			if err := applyStackRemove(tx, &StackRemove{Name: st.Name}); err != nil {
				return fmt.Errorf("prune stack %s: %w", st.Name, err)
			}
		}
	}
	return nil
}

// deleteSecrets deletes every version of the named secrets.
func deleteSecrets(tx *state.WriteTxn, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	all, err := tx.Secrets(nil)
	if err != nil {
		return err
	}
	for _, sec := range all {
		if slices.Contains(names, sec.Name) {
			if err := tx.DeleteSecret(sec.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// refusal is a command refused for what its user asked: the message is a sentence for
// them, with no sentinel's name after it, and it still matches the sentinel.
type refusal struct {
	sentinel error
	msg      string
}

func (r *refusal) Error() string        { return r.msg }
func (r *refusal) Is(target error) bool { return target == r.sentinel }
