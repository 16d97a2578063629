package control_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

func standalone(name, image string) *spec.Service {
	one := uint64(1)
	return &spec.Service{Name: name, Image: image, Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: &one, EndpointMode: "vip"}}
}

// A created service belongs to no stack, is named as given, and stack ls does not
// show it.
func TestCreateServiceOfNoStack(t *testing.T) {
	_, m := oneManager(t)
	ctx := context.Background()
	resp, err := m.Control.CreateService(ctx, &api.ServiceCreateRequest{Spec: standalone("mydb", "postgres")})
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := m.Control.Service(ctx, "mydb", api.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != resp.ID || s.Stack != "" || s.Name != "mydb" || s.SpecVersion != 1 {
		t.Errorf("service = %s %q in stack %q version %d, want %s mydb of no stack, version 1", s.ID, s.Name, s.Stack, s.SpecVersion, resp.ID)
	}
	stacks, _, err := m.Control.Stacks(ctx, api.Query{})
	if err != nil || len(stacks) != 0 {
		t.Errorf("stacks = %v, %v; want none", stacks, err)
	}
}

func TestCreateServiceRefusals(t *testing.T) {
	_, m := oneManager(t)
	ctx := context.Background()
	if _, err := m.Control.DeployStack(ctx, stack("app:1", "pw")); err != nil {
		t.Fatal(err)
	}
	bad := standalone("mydb", "postgres")
	bad.Deploy.Placement.Constraints = []string{"node.labels.os = linux"}
	withNet := standalone("net", "x")
	withNet.Networks = []spec.ServiceNetwork{{Name: "nope"}}
	withSecret := standalone("sec", "x")
	withSecret.Secrets = []spec.FileReference{{Source: "nope", Target: "/run/secrets/nope"}}
	tests := []struct {
		name     string
		s        *spec.Service
		want     error
		wantText string
	}{
		{"invalid spec", bad, api.ErrBadRequest, "constraints[0]"},
		{"name taken by a stack's service", standalone("web_api", "x"), state.ErrConflict, "already exists in stack web"},
		{"unknown network", withNet, state.ErrNotFound, "network nope"},
		{"unknown secret", withSecret, state.ErrNotFound, "secret nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Control.CreateService(ctx, &api.ServiceCreateRequest{Spec: tt.s})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("err = %v, want %v with %q", err, tt.want, tt.wantText)
			}
		})
	}
}

// service update replaces the spec, keeps the one before for rollback, and holds
// the new one to the same rules.
func TestUpdateServiceSpec(t *testing.T) {
	_, m := oneManager(t)
	ctx := context.Background()
	if _, err := m.Control.CreateService(ctx, &api.ServiceCreateRequest{Spec: standalone("web", "nginx:1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Control.UpdateService(ctx, "web", &api.ServiceUpdateRequest{Spec: standalone("web", "nginx:2")}); err != nil {
		t.Fatal(err)
	}
	s, err := m.Store.State().ReadTxn().ServiceByName(nil, "web")
	if err != nil {
		t.Fatal(err)
	}
	if s.Spec.Image != "nginx:2" || s.PreviousSpec == nil || s.PreviousSpec.Image != "nginx:1" || s.SpecVersion != 2 {
		t.Errorf("after update: %s (previous %v), version %d", s.Spec.Image, s.PreviousSpec, s.SpecVersion)
	}
	bad := standalone("web", "nginx:3")
	bad.Deploy.Mode = "globl"
	if _, err := m.Control.UpdateService(ctx, "web", &api.ServiceUpdateRequest{Spec: bad}); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("invalid spec: err = %v, want a bad request", err)
	}
	if _, err := m.Control.UpdateService(ctx, "web", &api.ServiceUpdateRequest{Spec: standalone("other", "x")}); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("renaming: err = %v, want a bad request", err)
	}
	if _, err := m.Control.RollbackService(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if s, _ = m.Store.State().ReadTxn().ServiceByName(nil, "web"); s.Spec.Image != "nginx:1" {
		t.Errorf("after rollback: %s, want nginx:1", s.Spec.Image)
	}
}

// A stack's service updated by hand is checked against its stack.
func TestUpdateStackServiceSpec(t *testing.T) {
	_, m := oneManager(t)
	ctx := context.Background()
	if _, err := m.Control.DeployStack(ctx, stack("app:1", "pw")); err != nil {
		t.Fatal(err)
	}
	s, _, err := m.Control.Service(ctx, "web_api", api.Query{})
	if err != nil {
		t.Fatal(err)
	}
	next := spec.Clone(&s.Spec)
	next.Networks = []spec.ServiceNetwork{{Name: "default"}}
	if _, err := m.Control.UpdateService(ctx, "web_api", &api.ServiceUpdateRequest{Spec: next}); err != nil {
		t.Fatalf("the stack's network: %v", err)
	}
	next = spec.Clone(next)
	next.Networks = []spec.ServiceNetwork{{Name: "elsewhere"}}
	if _, err := m.Control.UpdateService(ctx, "web_api", &api.ServiceUpdateRequest{Spec: next}); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("a network the stack lacks: err = %v, want a bad request", err)
	}
}

func TestRemoveService(t *testing.T) {
	_, m := oneManager(t)
	ctx := context.Background()
	if _, err := m.Control.DeployStack(ctx, stack("app:1", "pw")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Control.CreateService(ctx, &api.ServiceCreateRequest{Spec: standalone("mydb", "postgres")}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mydb", "web_api"} {
		if _, err := m.Control.RemoveService(ctx, name); err != nil {
			t.Fatalf("rm %s: %v", name, err)
		}
		if _, _, err := m.Control.Service(ctx, name, api.Query{}); !errors.Is(err, state.ErrNotFound) {
			t.Errorf("%s after rm: err = %v, want not found", name, err)
		}
	}
	if _, err := m.Control.RemoveService(ctx, "mydb"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("rm of a removed service: err = %v, want not found", err)
	}
}
