package spec_test

import (
	"strings"
	"testing"

	"github.com/berthd/berth/spec"
)

// A service of no stack names the cluster's objects, so only its own fields can be
// wrong; a stack's service is checked against its stack.
func TestValidateService(t *testing.T) {
	one := uint64(1)
	svc := func(edit func(*spec.Service)) *spec.Service {
		s := &spec.Service{Name: "mydb", Image: "postgres:latest", Deploy: spec.Deploy{Mode: spec.ModeReplicated, EndpointMode: "vip", Replicas: &one}}
		edit(s)
		return s
	}
	stack := &spec.Stack{Name: "web", Networks: map[string]*spec.Network{"front": {Name: "web_front", Driver: "overlay"}}}
	tests := []struct {
		name    string
		stack   *spec.Stack
		s       *spec.Service
		wantErr string
	}{
		{"cluster's objects", nil, svc(func(s *spec.Service) {
			s.Networks = []spec.ServiceNetwork{{Name: "backend"}}
			s.Mounts = []spec.Mount{{Type: spec.MountVolume, Source: "mydbdata", Target: "/data"}}
			s.Secrets = []spec.FileReference{{Source: "pw", Target: "/run/secrets/pw"}}
		}), ""},
		{"bad constraint", nil, svc(func(s *spec.Service) { s.Deploy.Placement.Constraints = []string{"node.labels.os = linux"} }), "constraints[0]"},
		{"bad mode", nil, svc(func(s *spec.Service) { s.Deploy.Mode = "globl" }), `did you mean "global"`},
		{"bad name", nil, svc(func(s *spec.Service) { s.Name = "my db" }), `invalid service name "my db"`},
		{"name too long", nil, svc(func(s *spec.Service) { s.Name = strings.Repeat("a", 64) }), "the limit is 63"},
		{"stack's network", stack, svc(func(s *spec.Service) { s.Networks = []spec.ServiceNetwork{{Name: "front"}} }), ""},
		{"network the stack lacks", stack, svc(func(s *spec.Service) { s.Networks = []spec.ServiceNetwork{{Name: "back"}} }), `network "back" is not defined`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := spec.ValidateService(tt.stack, tt.s)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateServiceCanonicalizes(t *testing.T) {
	s := &spec.Service{Name: "a", Image: "x", Deploy: spec.Deploy{Mode: spec.ModeReplicated, EndpointMode: "vip",
		Placement: spec.Placement{Constraints: []string{"node.role==manager"}}}}
	if err := spec.ValidateService(nil, s); err != nil {
		t.Fatal(err)
	}
	if got := s.Deploy.Placement.Constraints[0]; got != "node.role == manager" {
		t.Errorf("constraint = %q, want the canonical text", got)
	}
}
