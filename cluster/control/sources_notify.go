package control

import (
	"context"
	"slices"
	"strings"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
)

// maxCommitStatusToken bounds a commit status API token.
const maxCommitStatusToken = 4096

// commitStatusTokenSuffix names the secret holding a source's commit status token.
const commitStatusTokenSuffix = "commit-status-token"

// checkSourceNotify checks the notification settings `source add` sent, as the
// client may not have: the targets, and a commit status berth can post for the
// source's repository with a token.
func checkSourceNotify(src *model.Source, token string) error {
	if err := model.CheckNotifyTargets(src.Notify); err != nil {
		return badRequest("source %s: %v", src.Name, err)
	}
	if src.CommitStatus == nil {
		if token != "" {
			return badRequest("source %s: --commit-status-token-file is for --commit-status", src.Name)
		}
		return nil
	}
	src.CommitStatus.TokenRef = ""
	if err := checkCommitStatus(src, src.CommitStatus); err != nil {
		return err
	}
	return checkCommitStatusToken(src.Name, token, true)
}

// checkCommitStatus checks that berth can post statuses of the source's commits.
func checkCommitStatus(src *model.Source, cs *model.CommitStatus) error {
	if src.Kind != model.SourceGitPull {
		return badRequest("source %s is a %s source: --commit-status is for --url sources, whose forge has the commits", src.Name, src.Kind)
	}
	if err := cs.Check(); err != nil {
		return badRequest("source %s: %v", src.Name, err)
	}
	if _, err := cs.Endpoint(src.URL, strings.Repeat("0", 40)); err != nil {
		return badRequest("source %s: %v", src.Name, err)
	}
	return nil
}

func checkCommitStatusToken(name, token string, required bool) error {
	switch {
	case token == "" && required:
		return badRequest("source %s: --commit-status needs --commit-status-token-file: the forge's API takes no status without a token", name)
	case len(token) > maxCommitStatusToken:
		return badRequest("source %s: the commit status token is %d bytes, over %d", name, len(token), maxCommitStatusToken)
	case strings.ContainsAny(token, " \t\r\n"):
		return badRequest("source %s: the commit status token holds white space: give the token alone in --commit-status-token-file", name)
	}
	return nil
}

// checkNotifyUpdate checks `source update`'s notification changes on the source as
// it is, and returns the change to write.
func (c *Control) checkNotifyUpdate(cur *model.Source, u *api.SourceNotifyUpdate) (*command.SourceNotifyChange, error) {
	if _, err := changeTargets("source "+cur.Name, "berth source inspect "+cur.Name, cur.Notify, u); err != nil {
		return nil, err
	}
	next := cur.Copy()
	change := &command.SourceNotifyChange{Add: u.Add, Remove: u.Remove, CommitStatus: u.CommitStatus}
	cs := u.CommitStatus
	switch {
	case cs == nil && u.CommitStatusToken != "" && cur.CommitStatus == nil:
		return nil, badRequest("source %s: --commit-status-token-file is for --commit-status", cur.Name)
	case cs == nil && u.CommitStatusToken != "":
		// A new token for the provider the source has.
		cs = cur.CommitStatus
		change.CommitStatus = cur.CommitStatus
	case cs == nil:
		return change, nil
	case cs.Provider == "" && cur.CommitStatus == nil:
		return nil, badRequest("source %s posts no commit statuses: there is none to remove", cur.Name)
	case cs.Provider == "":
		return change, nil
	}
	if err := checkCommitStatus(next, cs); err != nil {
		return nil, err
	}
	hasToken := cur.CommitStatus != nil && cur.CommitStatus.TokenRef != ""
	if err := checkCommitStatusToken(cur.Name, u.CommitStatusToken, !hasToken); err != nil {
		return nil, err
	}
	if u.CommitStatusToken != "" {
		change.Token = c.sourceSecret(cur.Name, commitStatusTokenSuffix, []byte(u.CommitStatusToken))
	}
	return change, nil
}

// sourceSecret is a cluster secret holding one of a source's credentials.
func (c *Control) sourceSecret(source, suffix string, data []byte) *model.Secret {
	return &model.Secret{ID: c.newID(), Name: "source-" + source + "-" + suffix, Version: 1, Data: data,
		Labels: map[string]string{SourceSecretLabel: source}}
}

// setClusterNotify changes where every source's sync results go (`berth swarm
// update --notify URL --notify-rm URL`).
func (c *Control) setClusterNotify(ctx context.Context, u *api.SourceNotifyUpdate) error {
	if u.CommitStatus != nil || u.CommitStatusToken != "" {
		return badRequest("commit statuses are set per source: 'berth source update NAME --commit-status PROVIDER'")
	}
	_, _, err := c.updateCluster(ctx, func(row *model.Cluster) (bool, error) {
		next, err := changeTargets("the cluster", "berth swarm update --help", row.Settings.Notify, u)
		if err != nil {
			return false, err
		}
		row.Settings.Notify = next
		return true, nil
	})
	if err == nil {
		c.logger.Info("cluster-wide notification targets changed", "targets", len(u.Add), "removed", len(u.Remove))
	}
	return err
}

// changeTargets is targets with u's removals and additions (an added URL already
// there replaces it), checked; owner and help say whose targets they are. u.Remove
// becomes the URLs it names: a URL as inspect shows it, masked, names the one target
// it masks.
func changeTargets(owner, help string, targets []model.NotifyTarget, u *api.SourceNotifyUpdate) ([]model.NotifyTarget, error) {
	var remove []string
	for _, url := range u.Remove {
		var found []string
		for _, t := range targets {
			if t.URL == url {
				found = []string{url}
				break
			}
			if model.MaskURL(t.URL) == url {
				found = append(found, t.URL)
			}
		}
		switch len(found) {
		case 0:
			return nil, badRequest("%s has no --notify %s (see '%s')", owner, model.MaskURL(url), help)
		case 1:
			remove = append(remove, found[0])
		default:
			return nil, badRequest("%s: --notify-rm %s matches %d targets: give the whole URL", owner, url, len(found))
		}
	}
	u.Remove = remove
	next := slices.DeleteFunc(slices.Clone(targets), func(t model.NotifyTarget) bool {
		return slices.Contains(remove, t.URL) || slices.ContainsFunc(u.Add, func(a model.NotifyTarget) bool { return a.URL == t.URL })
	})
	next = append(next, u.Add...)
	if err := model.CheckNotifyTargets(next); err != nil {
		return nil, badRequest("%s: %v", owner, err)
	}
	return next, nil
}
