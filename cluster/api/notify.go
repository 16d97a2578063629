package api

import "github.com/berthd/berth/cluster/model"

// SourceNotifyUpdate changes where a source's sync results go (`source update
// --notify URL --notify-rm URL --commit-status PROVIDER`).
type SourceNotifyUpdate struct {
	// Add are targets to add (or replace, by URL); Remove the URLs of targets to remove.
	Add    []model.NotifyTarget `json:"add,omitempty"`
	Remove []string             `json:"remove,omitempty"`
	// CommitStatus replaces the commit status setting; a zero Provider removes it.
	CommitStatus *model.CommitStatus `json:"commit_status,omitempty"`
	// CommitStatusToken replaces the commit status API token.
	CommitStatusToken string `json:"commit_status_token,omitempty"`
}
