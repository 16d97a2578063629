package command

import (
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// applyAgeKey gives the source its new age key or removes it (`source update
// --age-key-file`, `--no-age-key`).
func applyAgeKey(tx *state.WriteTxn, src *model.Source, s *SourceSettings) error {
	switch {
	case s.RemoveAgeKey:
		if err := deleteSecrets(tx, src.AgeKeyRef); err != nil {
			return err
		}
		src.AgeKeyRef, src.AgeRecipients = "", nil
	case s.AgeKey != nil:
		if err := upsertSourceSecret(tx, src, src.AgeKeyRef, *s.AgeKey); err != nil {
			return err
		}
		src.AgeKeyRef, src.AgeRecipients = s.AgeKey.Name, s.AgeRecipients
	}
	return nil
}
