package spec_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/berthd/berth/spec"
)

func replicas(n uint64) *uint64 { return &n }

// baseStack is a small stack built directly, so the diff is tested without the loader.
func baseStack() *spec.Stack {
	return &spec.Stack{
		Name: "web",
		Services: map[string]*spec.Service{
			"api": {
				Name: "api", Image: "nginx:1.25",
				Environment: map[string]string{"MODE": "prod"},
				Networks:    []spec.ServiceNetwork{{Name: "back", Aliases: []string{"api"}}, {Name: "front"}},
				Ports:       []spec.Port{{Target: 80, Published: 8080, Protocol: "tcp", Mode: spec.PortModeIngress}},
				Secrets:     []spec.FileReference{{Source: "token", Target: "/run/secrets/token"}},
				Deploy:      spec.Deploy{Mode: spec.ModeReplicated, Replicas: replicas(3), EndpointMode: "vip"},
			},
			"agent": {Name: "agent", Image: "exporter:1", Deploy: spec.Deploy{Mode: spec.ModeGlobal, EndpointMode: "vip"}},
		},
		Networks: map[string]*spec.Network{
			"back":  {Name: "web_back", Driver: "overlay"},
			"front": {Name: "web_front", Driver: "overlay"},
		},
		Secrets: map[string]*spec.Secret{"token": {FileObject: spec.FileObject{Name: "web_token", File: "token.txt", Data: []byte("hunter2-original")}}},
		Configs: map[string]*spec.Config{"conf": {FileObject: spec.FileObject{Name: "web_conf"}, Digest: "sha256:aa"}},
	}
}

// clone deep-copies through JSON, then restores the secret bytes JSON leaves out.
func clone(t *testing.T, st *spec.Stack) *spec.Stack {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var out spec.Stack
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	for k, s := range st.Secrets {
		out.Secrets[k].Data = s.Data
	}
	return &out
}

func TestDiffServices(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*spec.Stack)
		want    spec.Rollout
		fields  []spec.FieldChange
		reasons []string
	}{
		{
			name:   "replicas only scale",
			edit:   func(s *spec.Stack) { s.Services["api"].Deploy.Replicas = replicas(5) },
			want:   spec.RolloutScale,
			fields: []spec.FieldChange{{Path: "deploy.replicas", Old: "3", New: "5"}},
		},
		{
			name:   "image replaces tasks",
			edit:   func(s *spec.Stack) { s.Services["api"].Image = "nginx:1.27" },
			want:   spec.RolloutReplace,
			fields: []spec.FieldChange{{Path: "image", Old: "nginx:1.25", New: "nginx:1.27"}},
		},
		{
			name: "image and replicas replace",
			edit: func(s *spec.Stack) {
				s.Services["api"].Image = "nginx:1.27"
				s.Services["api"].Deploy.Replicas = replicas(1)
			},
			want: spec.RolloutReplace,
			fields: []spec.FieldChange{
				{Path: "deploy.replicas", Old: "3", New: "1"},
				{Path: "image", Old: "nginx:1.25", New: "nginx:1.27"},
			},
		},
		{
			name:   "environment value",
			edit:   func(s *spec.Stack) { s.Services["api"].Environment["MODE"] = "debug" },
			want:   spec.RolloutReplace,
			fields: []spec.FieldChange{{Path: "environment.MODE", Old: "prod", New: "debug"}},
		},
		{
			name: "update_config leaves tasks alone",
			edit: func(s *spec.Stack) {
				s.Services["api"].Deploy.UpdateConfig = &spec.UpdateConfig{Parallelism: replicas(2)}
			},
			want:   spec.RolloutNone,
			fields: []spec.FieldChange{{Path: "deploy.update_config.parallelism", New: "2"}},
		},
		{
			name:   "ingress port leaves tasks alone",
			edit:   func(s *spec.Stack) { s.Services["api"].Ports[0].Published = 9090 },
			want:   spec.RolloutNone,
			fields: []spec.FieldChange{{Path: "ports[80/tcp].published", Old: "8080", New: "9090"}},
		},
		{
			name:   "unpublished ingress port takes tasks off the ingress network",
			edit:   func(s *spec.Stack) { s.Services["api"].Ports[0].Published = 0 },
			want:   spec.RolloutReplace,
			fields: []spec.FieldChange{{Path: "ports[80/tcp].published", Old: "8080"}},
		},
		{
			name:   "host port is bound by the task",
			edit:   func(s *spec.Stack) { s.Services["api"].Ports[0].Mode = spec.PortModeHost },
			want:   spec.RolloutReplace,
			fields: []spec.FieldChange{{Path: "ports[80/tcp].mode", Old: "ingress", New: "host"}},
		},
		{
			name: "network alias keyed by network name",
			edit: func(s *spec.Stack) {
				s.Services["api"].Networks[0].Aliases = []string{"api", "backend"}
			},
			want:   spec.RolloutReplace,
			fields: []spec.FieldChange{{Path: "networks[back].aliases", Old: "[api]", New: "[api, backend]"}},
		},
		{
			name: "memory shown as a size",
			edit: func(s *spec.Stack) {
				s.Services["api"].Deploy.Resources.Limits = &spec.Resource{MemoryBytes: 128 << 20}
			},
			want:   spec.RolloutReplace,
			fields: []spec.FieldChange{{Path: "deploy.resources.limits.memory", New: "128MiB"}},
		},
		{
			name: "seccomp profile shown by digest",
			edit: func(s *spec.Stack) {
				s.Services["api"].Seccomp = &spec.Seccomp{File: "p.json", Profile: `{"defaultAction":"SCMP_ACT_ALLOW"}`}
			},
			want: spec.RolloutReplace,
			fields: []spec.FieldChange{
				{Path: "seccomp.file", New: "p.json"},
				{Path: "seccomp.profile", New: "sha256:1e91071efd3c (34 bytes)"},
			},
		},
		{
			name:    "secret content rolls the services using it",
			edit:    func(s *spec.Stack) { s.Secrets["token"].Data = []byte("hunter2-rotated") },
			want:    spec.RolloutReplace,
			reasons: []string{"secret token changed"},
		},
		{
			name: "mode change recreates",
			edit: func(s *spec.Stack) {
				s.Services["api"].Deploy.Mode = spec.ModeGlobal
				s.Services["api"].Deploy.Replicas = nil
			},
			want: spec.RolloutReplace,
			fields: []spec.FieldChange{
				{Path: "deploy.mode", Old: "replicated", New: "global"},
				{Path: "deploy.replicas", Old: "3"},
			},
			reasons: []string{"mode changes from replicated to global: the service is recreated"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := baseStack()
			new := clone(t, old)
			tt.edit(new)
			d := spec.Diff(old, new)
			if d.Action != spec.ActionChange || len(d.Services) != 1 {
				t.Fatalf("want one changed service, got %+v", d)
			}
			c := d.Services[0]
			if c.Name != "web_api" || c.Action != spec.ActionChange || c.Rollout != tt.want {
				t.Errorf("got %s %s rollout %s, want web_api change rollout %s", c.Name, c.Action, c.Rollout, tt.want)
			}
			if !reflect.DeepEqual(c.Fields, tt.fields) {
				t.Errorf("fields:\n got %+v\nwant %+v", c.Fields, tt.fields)
			}
			if !reflect.DeepEqual(c.Reasons, tt.reasons) {
				t.Errorf("reasons: got %q, want %q", c.Reasons, tt.reasons)
			}
		})
	}
}

func TestDiffAddRemove(t *testing.T) {
	old := baseStack()
	new := clone(t, old)
	delete(new.Services, "agent")
	new.Services["worker"] = &spec.Service{Name: "worker", Image: "busybox", Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: replicas(2)}}
	delete(new.Networks, "front")
	new.Services["api"].Networks = new.Services["api"].Networks[:1]
	new.Volumes = map[string]*spec.Volume{"data": {Name: "web_data"}}
	new.Configs["conf"].Digest = "sha256:bb"

	d := spec.Diff(old, new)
	var got []string
	for _, s := range d.Services {
		got = append(got, string(s.Action)+" "+s.Name)
	}
	for _, r := range d.Resources {
		got = append(got, string(r.Action)+" "+r.Kind+" "+r.Name)
	}
	want := []string{
		"remove web_agent", "change web_api", "add web_worker",
		"remove network web_front", "add volume web_data", "change config web_conf",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if added := d.Services[2]; !reflect.DeepEqual(added.Fields, []spec.FieldChange{
		{Path: "image", New: "busybox"}, {Path: "deploy.mode", New: "replicated"}, {Path: "deploy.replicas", New: "2"},
	}) {
		t.Errorf("added service summary: %+v", added.Fields)
	}
}

func TestDiffWholeStacks(t *testing.T) {
	st := baseStack()
	if d := spec.Diff(st, clone(t, st)); !d.Empty() {
		t.Fatalf("identical stacks differ: %+v", d)
	}
	added := spec.Diff(nil, st)
	if added.Action != spec.ActionAdd || len(added.Services) != 2 || added.Services[0].Action != spec.ActionAdd {
		t.Errorf("stack added: %+v", added)
	}
	removed := spec.Diff(st, nil)
	if removed.Action != spec.ActionRemove || len(removed.Services) != 2 || removed.Services[0].Action != spec.ActionRemove {
		t.Errorf("stack removed: %+v", removed)
	}

	other := &spec.Stack{Name: "db", Services: map[string]*spec.Service{"pg": {Name: "pg", Image: "postgres:16"}}}
	changed := clone(t, st)
	changed.Services["api"].Image = "nginx:1.27"
	diffs := spec.DiffStacks([]*spec.Stack{st, other}, []*spec.Stack{changed, {Name: "cache"}})
	var names []string
	for _, d := range diffs {
		names = append(names, d.Stack+":"+string(d.Action))
	}
	if want := []string{"cache:add", "db:remove", "web:change"}; !reflect.DeepEqual(names, want) {
		t.Errorf("DiffStacks: got %q, want %q", names, want)
	}
	if d := spec.DiffStacks([]*spec.Stack{st}, []*spec.Stack{clone(t, st)}); len(d) != 0 {
		t.Errorf("unchanged revision: got %d diffs", len(d))
	}
}

func TestDiffNeverShowsSecrets(t *testing.T) {
	old := baseStack()
	new := clone(t, old)
	new.Secrets["token"].Data = []byte("hunter2-rotated")
	new.Secrets["token"].File = "token2.txt"
	out, err := json.Marshal(spec.Diff(old, new))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "hunter2") {
		t.Fatalf("secret value in diff: %s", out)
	}
	if !strings.Contains(string(out), "token2.txt") || !strings.Contains(string(out), "hidden, changed") {
		t.Fatalf("diff does not say the secret changed: %s", out)
	}
}
