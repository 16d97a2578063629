package control_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
)

func newAgeKey(t *testing.T) (file []byte, recipient string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return []byte("# created by a test\n" + id.String() + "\n"), id.Recipient().String()
}

// secretVersions counts the versions of the named secret.
func secretVersions(t *testing.T, ctl *control.Control, name string) int {
	t.Helper()
	secrets, _, err := ctl.Secrets(t.Context(), api.Query{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range secrets {
		if s.Name == name {
			n++
		}
	}
	return n
}

// A source answers with its age recipient and the secret's name, never the identity,
// and ignores a reference and recipients the client made up.
func TestAddSourceAgeKeyShowsOnlyTheRecipient(t *testing.T) {
	_, m := oneManager(t)
	ctl := control.New(control.Config{Store: m.Store})
	key, recipient := newAgeKey(t)
	for _, src := range []*model.Source{
		{Name: "sealed", Kind: model.SourceGitPush},
		{Name: "forged", Kind: model.SourceGitPush, AgeKeyRef: "source-sealed-age-key", AgeRecipients: []string{"age1forged"}},
	} {
		req := &api.SourceAddRequest{Source: src}
		if src.Name == "sealed" {
			req.AgeKey = key
		}
		if _, err := ctl.AddSource(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}
	got, _, err := ctl.Source(t.Context(), "sealed", api.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.AgeRecipients, []string{recipient}) || got.AgeKeyRef != "source-sealed-age-key" {
		t.Errorf("age recipients %v in %q, want [%s] in source-sealed-age-key", got.AgeRecipients, got.AgeKeyRef, recipient)
	}
	if b, _ := json.Marshal(got); strings.Contains(string(b), "AGE-SECRET-KEY") {
		t.Errorf("the source's answer holds its identity: %s", b)
	}
	if n := secretVersions(t, ctl, got.AgeKeyRef); n != 1 {
		t.Errorf("%d versions of the age key secret, want 1", n)
	}
	forged, _, err := ctl.Source(t.Context(), "forged", api.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if forged.AgeKeyRef != "" || forged.AgeRecipients != nil {
		t.Errorf("a source added without a key refers to %q %v", forged.AgeKeyRef, forged.AgeRecipients)
	}
	if _, err := ctl.RemoveSource(t.Context(), "sealed", false); err != nil {
		t.Fatal(err)
	}
	if n := secretVersions(t, ctl, got.AgeKeyRef); n != 0 {
		t.Errorf("source rm left %d versions of its age key", n)
	}
}

// `source update --age-key-file` makes a new version and asks for a sync;
// --no-age-key deletes every version, as `source rm` does.
func TestUpdateSourceAgeKeyReplacesAndRemoves(t *testing.T) {
	ctx, ctl := sourcesToUpdate(t)
	const ref = "source-infra-age-key"
	for i := range 2 {
		key, recipient := newAgeKey(t)
		before, _, err := ctl.Source(ctx, "infra", api.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ctl.UpdateSource(ctx, "infra", &api.SourceUpdateRequest{AgeKey: key}); err != nil {
			t.Fatal(err)
		}
		got, _, err := ctl.Source(ctx, "infra", api.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if got.AgeKeyRef != ref || !slices.Equal(got.AgeRecipients, []string{recipient}) || secretVersions(t, ctl, ref) != i+1 {
			t.Fatalf("after update %d: %q %v with %d versions", i+1, got.AgeKeyRef, got.AgeRecipients, secretVersions(t, ctl, ref))
		}
		if got.SyncRequests <= before.SyncRequests {
			t.Errorf("a new age key must be synced at once: sync requests %d -> %d", before.SyncRequests, got.SyncRequests)
		}
	}
	if _, err := ctl.UpdateSource(ctx, "infra", &api.SourceUpdateRequest{RemoveAgeKey: true}); err != nil {
		t.Fatal(err)
	}
	got, _, err := ctl.Source(ctx, "infra", api.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if got.AgeKeyRef != "" || got.AgeRecipients != nil || secretVersions(t, ctl, ref) != 0 {
		t.Errorf("after --no-age-key: %q %v, %d versions left", got.AgeKeyRef, got.AgeRecipients, secretVersions(t, ctl, ref))
	}
}

func TestSourceAgeKeyRefusals(t *testing.T) {
	ctx, ctl := sourcesToUpdate(t)
	key, _ := newAgeKey(t)
	notKey := []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")
	for _, tt := range []struct {
		name string
		call func() error
		want string
	}{
		{"add with an SSH key", func() error {
			_, err := ctl.AddSource(ctx, &api.SourceAddRequest{Source: &model.Source{Name: "x", Kind: model.SourceGitPush}, AgeKey: notKey})
			return err
		}, "source x: --age-key-file holds no age identity (error at line 1: unknown identity type): give the file age-keygen wrote, whose key line starts with AGE-SECRET-KEY-1"},
		{"update with a public key", func() error {
			_, err := ctl.UpdateSource(ctx, "infra", &api.SourceUpdateRequest{AgeKey: []byte("age1qqqq\n")})
			return err
		}, "source infra: --age-key-file holds no age identity (error at line 1: unknown identity type): give the file age-keygen wrote, whose key line starts with AGE-SECRET-KEY-1"},
		{"a key and its removal", func() error {
			_, err := ctl.UpdateSource(ctx, "infra", &api.SourceUpdateRequest{AgeKey: key, RemoveAgeKey: true})
			return err
		}, "source infra: give --age-key-file FILE or --no-age-key, not both"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || err.Error() != tt.want || !errors.Is(err, api.ErrBadRequest) {
				t.Fatalf("err = %v\nwant the bad request %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "b3BlbnNzaC1rZXk") {
				t.Fatal("the error quotes the key file")
			}
		})
	}
}
