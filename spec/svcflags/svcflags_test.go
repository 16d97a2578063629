package svcflags

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/spec"
)

func given(flags ...string) map[string]bool {
	out := map[string]bool{}
	for _, f := range flags {
		out[f] = true
	}
	return out
}

func u64(n uint64) *uint64 { return &n }

// The course's lines become what their Compose equivalents become, and pass the
// checks a Compose service does.
func TestCreateCourseLines(t *testing.T) {
	base := func(name string) *spec.Service {
		return &spec.Service{Name: name, Image: "img", Deploy: spec.Deploy{Mode: spec.ModeReplicated, EndpointMode: "vip", Replicas: u64(1)}}
	}
	tests := []struct {
		name  string
		opts  Options
		lists Lists
		want  func() *spec.Service
	}{
		{"constraint", Options{}, Lists{Constraints: []string{"node.labels.os == linux"}}, func() *spec.Service {
			s := base("mydb")
			s.Deploy.Placement.Constraints = []string{"node.labels.os == linux"}
			return s
		}},
		{"volume mount", Options{}, Lists{Mounts: []string{"type=volume,source=mydbdata,target=/var/lib/postgresql/data"}}, func() *spec.Service {
			s := base("mydb")
			s.Mounts = []spec.Mount{{Type: spec.MountVolume, Source: "mydbdata", Target: "/var/lib/postgresql/data"}}
			return s
		}},
		{"global", Options{Given: given("mode"), Mode: spec.ModeGlobal}, Lists{}, func() *spec.Service {
			s := base("mydb")
			s.Deploy.Mode, s.Deploy.Replicas = spec.ModeGlobal, nil
			return s
		}},
		{"max per node", Options{Given: given("replicas-max-per-node"), MaxPerNode: 1}, Lists{}, func() *spec.Service {
			s := base("mydb")
			s.Deploy.Placement.MaxReplicasPerNode = 1
			return s
		}},
		{"command and env", Options{Args: []string{"sleep", "60"}}, Lists{Env: []string{"A=1", "B="}}, func() *spec.Service {
			s := base("mydb")
			s.Command = []string{"sleep", "60"}
			s.Environment = map[string]string{"A": "1", "B": ""}
			return s
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Image = "img"
			got, err := Create("mydb", &tt.opts, tt.lists)
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(); !reflect.DeepEqual(got, want) {
				t.Errorf("Create = %+v, want %+v", got, want)
			}
			if err := spec.ValidateService(nil, got); err != nil {
				t.Errorf("ValidateService: %v", err)
			}
		})
	}
}

func TestCreateRefusesReplicasOfGlobal(t *testing.T) {
	_, err := Create("p", &Options{Given: given("mode", "replicas"), Mode: spec.ModeGlobal, Replicas: 2}, Lists{})
	if err == nil || !strings.Contains(err.Error(), "--replicas") {
		t.Errorf("err = %v, want one naming --replicas", err)
	}
}

func TestParseMount(t *testing.T) {
	tests := []struct {
		in      string
		want    spec.Mount
		wantErr string
	}{
		{in: "type=bind,src=/srv,dst=/data,readonly", want: spec.Mount{Type: "bind", Source: "/srv", Target: "/data", ReadOnly: true}},
		{in: "source=v,target=/d,ro=false,volume-opt=type=nfs", want: spec.Mount{Type: "volume", Source: "v", Target: "/d", DriverOpts: map[string]string{"type": "nfs"}}},
		{in: "type=tmpfs,target=/t,tmpfs-size=64M,tmpfs-mode=1770", want: spec.Mount{Type: "tmpfs", Target: "/t", TmpfsSize: 64 << 20, TmpfsMode: 0o1770}},
		{in: "source=v", wantErr: "give target=PATH"},
		{in: "target=/d,colour=blue", wantErr: `unknown key "colour"`},
		{in: "target=/d,volume-driver=rexray", wantErr: "no volume plugins"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseMount(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseMount = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParsePort(t *testing.T) {
	tests := []struct {
		in      string
		want    spec.Port
		wantErr bool
	}{
		{in: "8080:80", want: spec.Port{Published: 8080, Target: 80, Protocol: "tcp", Mode: "ingress"}},
		{in: "53:53/udp", want: spec.Port{Published: 53, Target: 53, Protocol: "udp", Mode: "ingress"}},
		{in: "80", want: spec.Port{Target: 80, Protocol: "tcp", Mode: "ingress"}},
		{in: "published=8080,target=80,mode=host,protocol=udp", want: spec.Port{Published: 8080, Target: 80, Protocol: "udp", Mode: "host"}},
		{in: "eighty:80", wantErr: true},
		{in: "published=8080", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parsePort(tt.in)
			if (err != nil) != tt.wantErr || !tt.wantErr && got != tt.want {
				t.Errorf("parsePort = %+v, %v; want %+v (error %t)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseFileRef(t *testing.T) {
	mode := spec.FileMode(0o440)
	tests := []struct {
		kind, in, dir string
		want          spec.FileReference
	}{
		{"secret", "db_pass", "/run/secrets/", spec.FileReference{Source: "db_pass", Target: "/run/secrets/db_pass"}},
		{"secret", "source=db_pass,target=pw,mode=0440", "/run/secrets/", spec.FileReference{Source: "db_pass", Target: "/run/secrets/pw", Mode: &mode}},
		{"config", "source=nginx,target=/etc/nginx.conf,uid=101", "/", spec.FileReference{Source: "nginx", Target: "/etc/nginx.conf", UID: "101"}},
	}
	for _, tt := range tests {
		got, err := parseFileRef(tt.kind, tt.in, tt.dir)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseFileRef(%s) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// Update changes only what its flags name: the single flags given, removals, then
// additions, and leaves the current spec untouched.
func TestUpdate(t *testing.T) {
	cur := &spec.Service{Name: "web", Image: "nginx:1", Environment: map[string]string{"A": "1", "B": "2"},
		Ports:  []spec.Port{{Published: 8080, Target: 80, Protocol: "tcp", Mode: "ingress"}},
		Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: u64(1), Placement: spec.Placement{Constraints: []string{"node.role == manager"}}}}
	opts := &Options{Given: given("image", "replicas", "update-delay", "health-cmd", "limit-memory"),
		Image: "nginx:2", Replicas: 3, Update: UpdateFlags{Delay: 10 * time.Second}, Health: HealthFlags{Cmd: "true"}, LimitMemory: "64M"}
	rm := Lists{Env: []string{"A", "ZZ"}, Constraints: []string{"node.role==manager"}, Publish: []string{"80"}}
	add := Lists{Env: []string{"C=3"}, Publish: []string{"9090:90"}, Labels: []string{"team=web"}}
	got, err := Update(cur, opts, rm, add)
	if err != nil {
		t.Fatal(err)
	}
	want := &spec.Service{Name: "web", Image: "nginx:2", Environment: map[string]string{"B": "2", "C": "3"},
		Ports:       []spec.Port{{Published: 9090, Target: 90, Protocol: "tcp", Mode: "ingress"}},
		Healthcheck: &spec.Healthcheck{Test: []string{"CMD-SHELL", "true"}},
		Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: u64(3), Labels: map[string]string{"team": "web"},
			Placement:    spec.Placement{Constraints: []string{}},
			Resources:    spec.Resources{Limits: &spec.Resource{MemoryBytes: 64 << 20}},
			UpdateConfig: &spec.UpdateConfig{Delay: spec.Duration(10 * time.Second)}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Update =\n%+v\nwant\n%+v", got, want)
	}
	if cur.Image != "nginx:1" || len(cur.Environment) != 2 || len(cur.Deploy.Placement.Constraints) != 1 {
		t.Errorf("Update changed the current spec: %+v", cur)
	}
}

func TestUpdateRefusals(t *testing.T) {
	global := &spec.Service{Name: "p", Deploy: spec.Deploy{Mode: spec.ModeGlobal}}
	if _, err := Update(global, &Options{Given: given("replicas"), Replicas: 2}, Lists{}, Lists{}); err == nil {
		t.Error("--replicas of a global service: no error")
	}
	both := &Options{Given: given("no-healthcheck", "health-cmd"), Health: HealthFlags{None: true, Cmd: "true"}}
	if _, err := Update(global, both, Lists{}, Lists{}); err == nil {
		t.Error("--no-healthcheck with --health-cmd: no error")
	}
}

func TestSplitWords(t *testing.T) {
	if got := splitWords(`sh -c 'echo hi there'  x`); !reflect.DeepEqual(got, []string{"sh", "-c", "echo hi there", "x"}) {
		t.Errorf("splitWords = %q", got)
	}
}
