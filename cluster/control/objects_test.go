package control_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/state"
)

func TestSecretInspectFindsNameIDAndPrefixWithoutData(t *testing.T) {
	_, m := oneManager(t)
	ctx := context.Background()
	v1, err := m.Control.CreateSecret(ctx, &api.ObjectCreateRequest{Name: "db", Data: []byte("one")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Control.CreateSecret(ctx, &api.ObjectCreateRequest{Name: "db", Data: []byte("two")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref     string
		version uint64
	}{{"db", 2}, {v1.ID, 1}, {v1.ID[:8], 1}} {
		s, err := m.Control.Secret(ctx, tc.ref)
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		if s.Name != "db" || s.Version != tc.version || s.Data != nil {
			t.Errorf("%s: got %s version %d with %d bytes of data", tc.ref, s.Name, s.Version, len(s.Data))
		}
	}
	if _, err := m.Control.Secret(ctx, "nope"); !errors.Is(err, state.ErrNotFound) || !strings.Contains(err.Error(), "no such secret: nope") {
		t.Errorf("unknown secret: %v", err)
	}
}

func TestRemoveConfigRemovesEveryVersion(t *testing.T) {
	_, m := oneManager(t)
	ctx := context.Background()
	for _, data := range []string{"a", "b"} {
		if _, err := m.Control.CreateConfig(ctx, &api.ObjectCreateRequest{Name: "conf", Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Control.RemoveConfig(ctx, "conf"); err != nil {
		t.Fatal(err)
	}
	if all, _, err := m.Control.Configs(ctx, api.Query{}); err != nil || len(all) != 0 {
		t.Errorf("after rm: %v %v", all, err)
	}
	if _, err := m.Control.RemoveConfig(ctx, "conf"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("second rm: %v", err)
	}
}

func TestRemoveSecretInUseNamesTheService(t *testing.T) {
	_, m := oneManager(t)
	ctx := context.Background()
	if _, err := m.Control.DeployStack(ctx, stack("app:1", "hunter2")); err != nil {
		t.Fatal(err)
	}
	_, err := m.Control.RemoveSecret(ctx, "web_pw")
	if !errors.Is(err, state.ErrConflict) || !strings.Contains(err.Error(), "secret web_pw is in use by service web_api") {
		t.Errorf("rm of a secret in use: %v", err)
	}
	if _, err := m.Control.Secret(ctx, "web_pw"); err != nil {
		t.Errorf("the refused rm removed the secret: %v", err)
	}
}

func TestCreateSecretRefusesAStacksName(t *testing.T) {
	_, m := oneManager(t)
	ctx := context.Background()
	if _, err := m.Control.DeployStack(ctx, stack("app:1", "hunter2")); err != nil {
		t.Fatal(err)
	}
	_, err := m.Control.CreateSecret(ctx, &api.ObjectCreateRequest{Name: "web_pw", Data: []byte("x")})
	if !errors.Is(err, api.ErrBadRequest) || !strings.Contains(err.Error(), "secret web_pw belongs to stack web") {
		t.Errorf("create over a stack's secret: %v", err)
	}
}
