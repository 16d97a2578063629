package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
)

func TestNotifyFlagsUpdate(t *testing.T) {
	slack := "https://hooks.slack.com/services/T/B/K"
	for _, tc := range []struct {
		name  string
		flags notifyFlags
		want  *api.SourceNotifyUpdate
		err   string
	}{
		{name: "nothing", flags: notifyFlags{}},
		{name: "add and remove", flags: notifyFlags{notify: []string{"slack=" + slack}, notifyRm: []string{"generic=https://x.example/h"}},
			want: &api.SourceNotifyUpdate{Add: []model.NotifyTarget{{Format: model.NotifySlack, URL: slack}}, Remove: []string{"https://x.example/h"}}},
		{name: "commit status", flags: notifyFlags{commitStatus: "gitlab", commitStatusURL: "https://gl.example/api/v4"},
			want: &api.SourceNotifyUpdate{CommitStatus: &model.CommitStatus{Provider: model.CommitStatusGitLab, URL: "https://gl.example/api/v4"}}},
		{name: "no commit status", flags: notifyFlags{noCommitStatus: true}, want: &api.SourceNotifyUpdate{CommitStatus: &model.CommitStatus{}}},
		{name: "both", flags: notifyFlags{noCommitStatus: true, commitStatus: "github"}, err: "not both"},
		{name: "url alone", flags: notifyFlags{commitStatusURL: "https://x"}, err: "needs --commit-status"},
		{name: "unknown provider", flags: notifyFlags{commitStatus: "bitbucket"}, err: "github, gitlab or gitea"},
		{name: "bad target", flags: notifyFlags{notify: []string{"hooks.example.com"}}, err: "http:// or https://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.flags.update()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error saying %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
