package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// sourcesToUpdate is a manager with a pull source "infra" and a push source "apps".
func sourcesToUpdate(t *testing.T) (context.Context, *control.Control) {
	t.Helper()
	_, m := oneManager(t)
	ctx := context.Background()
	ctl := control.New(control.Config{Store: m.Store})
	for _, src := range []*model.Source{
		{Name: "infra", Kind: model.SourceGitPull, URL: "https://git.example.com/ops/stacks.git", Branch: "main", Prune: true,
			Interval: spec.Duration(time.Minute)},
		{Name: "apps", Kind: model.SourceGitPush},
	} {
		if _, err := ctl.AddSource(ctx, &api.SourceAddRequest{Source: src}); err != nil {
			t.Fatal(err)
		}
	}
	return ctx, ctl
}

func TestUpdateSourceChangesSettingsAndSyncs(t *testing.T) {
	ctx, ctl := sourcesToUpdate(t)
	before, _, err := ctl.Source(ctx, "infra", api.Query{})
	if err != nil {
		t.Fatal(err)
	}
	branch, path, interval, no, yes := "release", "./stacks/", spec.Duration(30*time.Second), false, true
	if _, err := ctl.UpdateSource(ctx, "infra", &api.SourceUpdateRequest{Branch: &branch, Path: &path, Interval: &interval,
		Prune: &no, SelfHeal: &yes}); err != nil {
		t.Fatal(err)
	}
	got, _, err := ctl.Source(ctx, "infra", api.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Branch != "release" || got.Path != "stacks" || got.Interval != interval || got.Prune || !got.SelfHeal {
		t.Errorf("source after update: branch %q path %q interval %s prune %v self-heal %v",
			got.Branch, got.Path, time.Duration(got.Interval), got.Prune, got.SelfHeal)
	}
	if got.SyncRequests <= before.SyncRequests {
		t.Errorf("sync requests %d -> %d: new settings must be synced at once", before.SyncRequests, got.SyncRequests)
	}
	if got.URL != before.URL || got.Kind != before.Kind {
		t.Errorf("update changed what it was not asked to: %s %s", got.Kind, got.URL)
	}
}

func TestUpdateSourceCredentialsMakeANewSecretVersion(t *testing.T) {
	ctx, ctl := sourcesToUpdate(t)
	for i, tok := range []string{"first", "second"} {
		if _, err := ctl.UpdateSource(ctx, "infra", &api.SourceUpdateRequest{Credentials: &api.SourceCredentials{Token: tok}}); err != nil {
			t.Fatal(err)
		}
		src, _, err := ctl.Source(ctx, "infra", api.Query{})
		if err != nil {
			t.Fatal(err)
		}
		secrets, _, err := ctl.Secrets(ctx, api.Query{})
		if err != nil {
			t.Fatal(err)
		}
		versions := 0
		for _, s := range secrets {
			if s.Name == src.AuthRef {
				versions++
			}
		}
		if src.AuthRef == "" || versions != i+1 {
			t.Fatalf("after update %d: auth ref %q with %d versions, want %d", i+1, src.AuthRef, versions, i+1)
		}
	}
}

func TestUpdateSourceRemovesTheCA(t *testing.T) {
	ctx, ctl := sourcesToUpdate(t)
	root, err := ca.NewRootCA("test-cluster")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{string(root.CertPEM()), ""} {
		if _, err := ctl.UpdateSource(ctx, "infra", &api.SourceUpdateRequest{CA: &want}); err != nil {
			t.Fatal(err)
		}
		src, _, err := ctl.Source(ctx, "infra", api.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if src.CA != want {
			t.Fatalf("CA = %q, want %q", src.CA, want)
		}
	}
}

func TestUpdateSourceRefusals(t *testing.T) {
	ctx, ctl := sourcesToUpdate(t)
	short, outside, other := spec.Duration(time.Second), "../x", "other"
	for _, tt := range []struct {
		name, source string
		req          *api.SourceUpdateRequest
		want         string
	}{
		{"interval under the minimum", "infra", &api.SourceUpdateRequest{Interval: &short},
			"--interval 1s is shorter than 10s: use a webhook for faster syncs"},
		{"path outside the repository", "infra", &api.SourceUpdateRequest{Path: &outside},
			`--path "../x" must be a folder inside the repository, relative to its root`},
		{"SSH key without known_hosts", "infra", &api.SourceUpdateRequest{Credentials: &api.SourceCredentials{SSHKey: []byte("k")}},
			"source infra: --ssh-key needs --known-hosts: berth always checks the server's host key"},
		{"credentials for a push source", "apps", &api.SourceUpdateRequest{Credentials: &api.SourceCredentials{Token: "t"}},
			"source apps: a push source has no URL and no credentials: the cluster is its remote"},
		{"another branch for a push source", "apps", &api.SourceUpdateRequest{Branch: &other},
			"source apps is a push source: its branch, where pushes go, is chosen when it is added; remove it and add it again for another"},
		{"a source that is not", "nosuch", &api.SourceUpdateRequest{Branch: &other},
			"no such source: nosuch (berth source ls lists them)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ctl.UpdateSource(ctx, tt.source, tt.req)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v\nwant %q", err, tt.want)
			}
			if !errors.Is(err, api.ErrBadRequest) && !strings.HasPrefix(tt.want, "no such") {
				t.Fatalf("err = %v, want a bad request", err)
			}
		})
	}
}

// The credentials never come back in a source's answer, only the secret's name.
func TestUpdateSourceAnswersNoCredentials(t *testing.T) {
	ctx, ctl := sourcesToUpdate(t)
	if _, err := ctl.UpdateSource(ctx, "infra", &api.SourceUpdateRequest{Credentials: &api.SourceCredentials{Token: "s3cret-token"}}); err != nil {
		t.Fatal(err)
	}
	src, _, err := ctl.Source(ctx, "infra", api.Query{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(src)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "s3cret-token") {
		t.Fatalf("the source's answer holds its token: %s", b)
	}
}
