package main

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/spec"
)

// sourceUpdateFlags are the settings `source update` changes as `source add` takes
// them; a flag not given leaves its setting as it is.
type sourceUpdateFlags struct {
	branch, path    string
	interval        time.Duration
	prune, selfHeal bool
}

func (u *sourceUpdateFlags) register(f *pflag.FlagSet) {
	f.StringVar(&u.branch, "branch", "", "Branch to follow")
	f.StringVar(&u.path, "path", "", "Folder inside the repository that holds the stacks ('' for its root)")
	f.DurationVar(&u.interval, "interval", 0, "How often to check the remote, or a folder for drift (0: webhooks, changes and 'source sync' only; at least 10s for a remote)")
	f.BoolVar(&u.prune, "prune", false, "Remove what the source created and its revision no longer has (--prune=false keeps and reports it; not given: unchanged)")
	f.BoolVar(&u.selfHeal, "self-heal", false, "Revert changes made outside Git at the next sync (--self-heal=false stops)")
}

// request is the update of the flags changed says were given.
func (u *sourceUpdateFlags) request(changed func(string) bool) *api.SourceUpdateRequest {
	req := &api.SourceUpdateRequest{}
	if changed("branch") {
		req.Branch = &u.branch
	}
	if changed("path") {
		req.Path = &u.path
	}
	if changed("interval") {
		d := spec.Duration(u.interval)
		req.Interval = &d
	}
	if changed("prune") {
		req.Prune = &u.prune
	}
	if changed("self-heal") {
		req.SelfHeal = &u.selfHeal
	}
	return req
}
