package command

import (
	"slices"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// SourceNotifyChange changes where a source's sync results go (`source update
// --notify`, `--notify-rm`, `--commit-status`), as checked by the manager that wrote it.
type SourceNotifyChange struct {
	// Add are targets to add; one whose URL the source has already replaces it.
	Add []model.NotifyTarget `json:"add,omitempty"`
	// Remove are the URLs of targets to remove.
	Remove []string `json:"remove,omitempty"`
	// CommitStatus replaces the source's commit status setting; a zero Provider
	// removes it, with its token.
	CommitStatus *model.CommitStatus `json:"commit_status,omitempty"`
	// Token becomes the next version of the commit status token's secret, which
	// CommitStatus.TokenRef then names.
	Token *model.Secret `json:"token,omitempty"`
}

func applySourceNotify(tx *state.WriteTxn, src *model.Source, c *SourceNotifyChange) error {
	src.Notify = slices.DeleteFunc(src.Notify, func(t model.NotifyTarget) bool {
		return slices.Contains(c.Remove, t.URL) || slices.ContainsFunc(c.Add, func(a model.NotifyTarget) bool { return a.URL == t.URL })
	})
	src.Notify = append(src.Notify, c.Add...)
	if c.CommitStatus == nil {
		return nil
	}
	var oldRef string
	if src.CommitStatus != nil {
		oldRef = src.CommitStatus.TokenRef
	}
	if c.CommitStatus.Provider == "" {
		src.CommitStatus = nil
		return deleteSecrets(tx, oldRef)
	}
	next := *c.CommitStatus
	next.TokenRef = oldRef
	if c.Token != nil {
		if err := upsertSourceSecret(tx, src, oldRef, *c.Token); err != nil {
			return err
		}
		next.TokenRef = c.Token.Name
	}
	src.CommitStatus = &next
	return nil
}
