package applier

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// sopsVector reads a vector of applier/sops, made by the real sops.
func sopsVector(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("sops", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// keyState is a cluster state holding a source's age key, as `source add` writes it.
type keyState struct{ st *state.Store }

func (k keyState) State() (*state.Store, error) { return k.st, nil }

func newKeyState(t *testing.T, src *model.Source, key string) keyState {
	t.Helper()
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(1, func(tx *state.WriteTxn) error {
		return tx.UpsertSecret(&model.Secret{ID: "s1", Name: src.AgeKeyRef, Version: 1, Data: []byte(key)})
	})
	if err != nil {
		t.Fatal(err)
	}
	return keyState{st}
}

const sopsStack = `services:
  app:
    image: nginx
    secrets: [db, password]
    configs: [settings]
secrets:
  db:
    file: ./db.yaml
  password:
    file: ./password.txt
configs:
  settings:
    file: ./settings.json
`

func TestLoadStacksDecryptsSOPSFiles(t *testing.T) {
	src := &model.Source{Name: "infra", AgeKeyRef: "source-infra-age-key", AgeRecipients: []string{"age1test"}}
	fsys := mapFS(map[string]string{
		"app/compose.yaml":  sopsStack,
		"app/db.yaml":       sopsVector(t, "app.enc.yaml"),
		"app/password.txt":  sopsVector(t, "password.enc.txt"),
		"app/settings.json": `{"plain": true}`,
	})
	loaded, err := LoadStacks(context.Background(), fsys, ".", nil, WithSOPS(newKeyState(t, src, sopsVector(t, "test.agekey")), src))
	if err != nil {
		t.Fatal(err)
	}
	st := loaded.Stacks[0]
	if got, want := string(st.Secrets["password"].Data), sopsVector(t, "plain/password.txt"); got != want {
		t.Errorf("password secret = %q, want the plaintext %q", got, want)
	}
	if db := string(st.Secrets["db"].Data); !strings.Contains(db, "password: s3cret-p4ss") || strings.Contains(db, "ENC[") || strings.Contains(db, "sops:") {
		t.Errorf("db secret is not the decrypted document:\n%s", db)
	}
	if got := string(st.Configs["settings"].Data); got != `{"plain": true}` {
		t.Errorf("a plain config changed: %q", got)
	}
}

// Each failure names the stack, the file and what to do; the plaintext is never in it.
func TestLoadStacksSOPSFailures(t *testing.T) {
	withKey := &model.Source{Name: "infra", AgeKeyRef: "source-infra-age-key", AgeRecipients: []string{"age18kwlsf8"}}
	tampered := strings.Replace(sopsVector(t, "app.enc.yaml"), "api_token_unencrypted: visible", "api_token_unencrypted: changed", 1)
	for _, tt := range []struct {
		name     string
		src      *model.Source
		password string
		want     []string
	}{
		{"no age key", &model.Source{Name: "infra"}, sopsVector(t, "password.enc.txt"), []string{
			"stack app, secrets.password.file: cannot use ./password.txt: app/password.txt is encrypted with SOPS, and source infra has no age key",
			"give the source the age identity the file is encrypted for: berth source update infra --age-key-file FILE"}},
		{"encrypted for another recipient", withKey, sopsVector(t, "password.other.txt"), []string{
			"cannot use ./password.txt: app/password.txt is encrypted with SOPS for age10ew8ezms3h228f9u0tvsgvlhlp7rfupad9spf4uwejkv290729gqyas2e7, and the age key of source infra (age18kwlsf8) is not one of them",
			"berth source update infra --age-key-file FILE"}},
		{"tampered", withKey, tampered, []string{
			"cannot use ./password.txt: app/password.txt is a SOPS file that does not decrypt",
			"encrypt it again with sops"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fsys := mapFS(map[string]string{
				"app/compose.yaml": sopsStack, "app/db.yaml": "plain", "app/password.txt": tt.password, "app/settings.json": "{}",
			})
			_, err := LoadStacks(context.Background(), fsys, ".", nil, WithSOPS(newKeyState(t, withKey, sopsVector(t, "test.agekey")), tt.src))
			if err == nil {
				t.Fatal("the stack loaded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error quotes the plaintext: %v", err)
			}
		})
	}
}
