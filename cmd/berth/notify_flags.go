package main

import (
	"errors"

	"github.com/spf13/pflag"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
)

// notifyFlags are where `source add` and `source update` send a source's sync
// results: notification targets and the forge's commit statuses.
type notifyFlags struct {
	notify, notifyRm              []string
	commitStatus, commitStatusURL string
	tokenFile                     string
	noCommitStatus                bool
}

func (n *notifyFlags) register(f *pflag.FlagSet, update bool) {
	f.StringArrayVar(&n.notify, "notify", nil, "POST sync results to URL: berth's JSON document, or slack=URL for a Slack incoming webhook (repeatable)")
	f.StringVar(&n.commitStatus, "commit-status", "", "Post commit statuses of the revisions applied to the forge: github, gitlab or gitea (also Forgejo)")
	f.StringVar(&n.commitStatusURL, "commit-status-url", "", "The forge API's base URL, when not derived from --url (https://HOST/api/v1 for Gitea)")
	f.StringVar(&n.tokenFile, "commit-status-token-file", "", "File holding the forge's API token for --commit-status")
	if update {
		f.StringArrayVar(&n.notifyRm, "notify-rm", nil, "Stop sending sync results to URL (repeatable)")
		f.BoolVar(&n.noCommitStatus, "no-commit-status", false, "Stop posting commit statuses, and forget the token")
	}
}

// registerClusterWide registers the flags of `swarm update`: targets for every source.
func (n *notifyFlags) registerClusterWide(f *pflag.FlagSet) {
	f.StringArrayVar(&n.notify, "notify", nil, "POST every source's sync results to URL: berth's JSON document, or slack=URL (repeatable)")
	f.StringArrayVar(&n.notifyRm, "notify-rm", nil, "Stop sending every source's sync results to URL (repeatable)")
}

// addTo puts the settings of `source add` into req.
func (n *notifyFlags) addTo(req *api.SourceAddRequest) error {
	targets, err := parseTargets(n.notify)
	if err != nil {
		return err
	}
	req.Source.Notify = targets
	cs, token, err := n.commitStatusSetting()
	if err != nil {
		return err
	}
	req.Source.CommitStatus, req.CommitStatusToken = cs, token
	return nil
}

// update is the change `source update` asks for, nil when it asks for none.
func (n *notifyFlags) update() (*api.SourceNotifyUpdate, error) {
	u := &api.SourceNotifyUpdate{}
	var err error
	if u.Add, err = parseTargets(n.notify); err != nil {
		return nil, err
	}
	rm, err := parseTargets(n.notifyRm)
	if err != nil {
		return nil, err
	}
	for _, t := range rm {
		u.Remove = append(u.Remove, t.URL)
	}
	if u.CommitStatus, u.CommitStatusToken, err = n.commitStatusSetting(); err != nil {
		return nil, err
	}
	if n.noCommitStatus {
		if u.CommitStatus != nil || u.CommitStatusToken != "" {
			return nil, errors.New("give --commit-status or --no-commit-status, not both")
		}
		u.CommitStatus = &model.CommitStatus{}
	}
	if u.Add == nil && u.Remove == nil && u.CommitStatus == nil && u.CommitStatusToken == "" {
		return nil, nil
	}
	return u, nil
}

// commitStatusSetting reads --commit-status and its token; a token alone replaces the
// source's token.
func (n *notifyFlags) commitStatusSetting() (*model.CommitStatus, string, error) {
	var token string
	if n.tokenFile != "" {
		b, err := readSecretFile("--commit-status-token-file", n.tokenFile)
		if err != nil {
			return nil, "", err
		}
		token = string(b)
	}
	if n.commitStatus == "" {
		if n.commitStatusURL != "" {
			return nil, "", errors.New("--commit-status-url needs --commit-status github|gitlab|gitea")
		}
		return nil, token, nil
	}
	cs := &model.CommitStatus{Provider: model.CommitStatusProvider(n.commitStatus), URL: n.commitStatusURL}
	return cs, token, cs.Check()
}

func parseTargets(values []string) ([]model.NotifyTarget, error) {
	var out []model.NotifyTarget
	for _, v := range values {
		t, err := model.ParseNotifyTarget(v)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}
