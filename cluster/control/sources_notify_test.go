package control_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
)

// The manager checks notification settings itself: a client that skips the CLI's
// checks gets the same refusals.
func TestNotifySettingsRefusedByTheServer(t *testing.T) {
	ctx, ctl := sourcesToUpdate(t)
	gitea := &model.CommitStatus{Provider: model.CommitStatusGitea}
	for _, tc := range []struct {
		name   string
		source string
		req    *api.SourceNotifyUpdate
		want   string
	}{
		{"bad scheme", "infra", &api.SourceNotifyUpdate{Add: []model.NotifyTarget{{Format: model.NotifyGeneric, URL: "ftp://x/y"}}}, "http:// or https://"},
		{"unknown format", "infra", &api.SourceNotifyUpdate{Add: []model.NotifyTarget{{Format: "teams", URL: "https://x/y"}}}, "unknown format"},
		{"removing what is not there", "infra", &api.SourceNotifyUpdate{Remove: []string{"https://x/y"}}, "has no --notify"},
		{"status without a token", "infra", &api.SourceNotifyUpdate{CommitStatus: gitea}, "--commit-status-token-file"},
		{"unknown provider", "infra", &api.SourceNotifyUpdate{CommitStatus: &model.CommitStatus{Provider: "bitbucket"}, CommitStatusToken: "t"}, "github, gitlab or gitea"},
		{"status of a push source", "apps", &api.SourceNotifyUpdate{CommitStatus: gitea, CommitStatusToken: "t"}, "--url sources"},
		{"token with a newline", "infra", &api.SourceNotifyUpdate{CommitStatus: gitea, CommitStatusToken: "a\nb"}, "white space"},
		{"removing no status", "infra", &api.SourceNotifyUpdate{CommitStatus: &model.CommitStatus{}}, "no commit statuses"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ctl.UpdateSource(ctx, tc.source, &api.SourceUpdateRequest{Notify: tc.req})
			if !errors.Is(err, api.ErrBadRequest) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want a bad request saying %q", err, tc.want)
			}
		})
	}
}

// The commit status token is stored as a secret the source refers to, and inspect
// shows targets with their secret parts masked.
func TestNotifySettingsStoredAndMasked(t *testing.T) {
	ctx, ctl := sourcesToUpdate(t)
	slack := "https://hooks.slack.com/services/T0/B0/KEY"
	if _, err := ctl.UpdateSource(ctx, "infra", &api.SourceUpdateRequest{Notify: &api.SourceNotifyUpdate{
		Add:          []model.NotifyTarget{{Format: model.NotifySlack, URL: slack}},
		CommitStatus: &model.CommitStatus{Provider: model.CommitStatusGitHub}, CommitStatusToken: "ghp_secret"}}); err != nil {
		t.Fatal(err)
	}
	got, _, err := ctl.Source(ctx, "infra", api.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Notify) != 1 || got.Notify[0].URL != "https://hooks.slack.com/services/***" {
		t.Errorf("targets as clients see them: %+v, want the Slack key masked", got.Notify)
	}
	if got.CommitStatus == nil || got.CommitStatus.TokenRef != "source-infra-commit-status-token" {
		t.Fatalf("commit status: %+v, want its token in secret source-infra-commit-status-token", got.CommitStatus)
	}
	if !hasSecret(t, ctl, "source-infra-commit-status-token") {
		t.Fatal("no secret holds the commit status token")
	}
	// A target is removed by its URL as inspect shows it; removing the commit status
	// setting removes its token.
	if _, err := ctl.UpdateSource(ctx, "infra", &api.SourceUpdateRequest{Notify: &api.SourceNotifyUpdate{
		Remove: []string{got.Notify[0].URL}, CommitStatus: &model.CommitStatus{}}}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ = ctl.Source(ctx, "infra", api.Query{}); len(got.Notify) != 0 || got.CommitStatus != nil {
		t.Errorf("after removal: targets %+v, commit status %+v", got.Notify, got.CommitStatus)
	}
	if hasSecret(t, ctl, "source-infra-commit-status-token") {
		t.Errorf("the token's secret outlived its setting")
	}
}

func hasSecret(t *testing.T, ctl *control.Control, name string) bool {
	t.Helper()
	secrets, _, err := ctl.Secrets(context.Background(), api.Query{})
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(secrets, func(s *model.Secret) bool { return s.Name == name })
}
