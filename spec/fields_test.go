package spec_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/berthd/berth/spec"
)

// goodStack is a stack as the CLI sends it: converted and canonical.
func goodStack() *spec.Stack {
	one := uint64(1)
	return &spec.Stack{Name: "web",
		Services: map[string]*spec.Service{"api": {Name: "api", Image: "registry.example.com/team/api:1.2",
			WorkingDir: "/srv",
			Mounts:     []spec.Mount{{Type: spec.MountVolume, Source: "data", Target: "/var/lib/api"}},
			Secrets:    []spec.FileReference{{Source: "pw", Target: "/run/secrets/pw"}},
			Configs:    []spec.FileReference{{Source: "conf", Target: "/etc/api.conf"}},
			Labels:     map[string]string{"traefik.enable": "true"},
			Deploy:     spec.Deploy{Mode: spec.ModeReplicated, Replicas: &one, EndpointMode: "vip"}}},
		Networks: map[string]*spec.Network{"default": {Name: "web_default", Driver: "overlay"}},
		Volumes:  map[string]*spec.Volume{"data": {Name: "web_data"}},
		Secrets:  map[string]*spec.Secret{"pw": {FileObject: spec.FileObject{Name: "web_pw", File: "pw.txt"}}},
		Configs:  map[string]*spec.Config{"conf": {FileObject: spec.FileObject{Name: "web_conf", File: "api.conf"}}},
	}
}

func manyLabels(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("l%d", i)] = "v"
	}
	return m
}

// TestValidateConvertedStack runs on stacks as a client may send them to a manager,
// bypassing Load: each case is one of the bad requests of issue 15.
func TestValidateConvertedStack(t *testing.T) {
	rlo := "api\u202egnp.exe"
	for _, c := range []struct {
		name   string
		change func(st *spec.Stack)
		want   want // Service, Field, and text in the message
	}{
		{"mode typo", func(st *spec.Stack) { st.Services["api"].Deploy.Mode = "globl" },
			want{"api", "deploy.mode", `mode "globl" is not valid; did you mean "global"?`}},
		{"empty image", func(st *spec.Stack) { st.Services["api"].Image = "" }, want{"api", "image", "image is required"}},
		{"image with a newline", func(st *spec.Stack) { st.Services["api"].Image = "nginx\nrm -rf /" },
			want{"api", "image", `image "nginx\nrm -rf /" is not a valid reference`}},
		{"image with an empty tag", func(st *spec.Stack) { st.Services["api"].Image = "nginx:" }, want{"api", "image", "not a valid reference"}},
		{"service name climbing out", func(st *spec.Stack) { renameService(st, "../../etc/passwd") },
			want{"", `services["../../etc/passwd"]`, `invalid service name "../../etc/passwd": use letters, digits, '-' and '_'`}},
		{"service name with a slash", func(st *spec.Stack) { renameService(st, "a/b") }, want{"", `services["a/b"]`, "invalid service name"}},
		{"service name with a right-to-left override", func(st *spec.Stack) { renameService(st, rlo) },
			want{"", `services["api\u202egnp.exe"]`, "invalid service name"}},
		{"service name too long", func(st *spec.Stack) { renameService(st, strings.Repeat("a", 64)) },
			want{"", `services["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"…]`, "64 characters long; the limit is 63"}},
		{"service's cluster name too long", func(st *spec.Stack) { renameService(st, strings.Repeat("a", 60)) },
			want{"", "services." + strings.Repeat("a", 60), "is 64 characters long; the limit is 63"}},
		{"service named unlike its key", func(st *spec.Stack) { st.Services["api"].Name = "other" },
			want{"", "services.api.name", `the name "other" is not the service's key`}},
		{"service without a definition", func(st *spec.Stack) { st.Services["api"] = nil }, want{"", "services.api", "no definition"}},
		{"secret target climbing out", func(st *spec.Stack) { st.Services["api"].Secrets[0].Target = "/run/secrets/../../../../etc/shadow" },
			want{"api", "secrets[0].target", `"/run/secrets/../../../../etc/shadow" is not a clean absolute path`}},
		{"relative secret target", func(st *spec.Stack) { st.Services["api"].Secrets[0].Target = "../../../../etc/shadow" },
			want{"api", "secrets[0].target", "not a clean absolute path"}},
		{"config target with a trailing slash", func(st *spec.Stack) { st.Services["api"].Configs[0].Target = "/etc//api.conf/" },
			want{"api", "configs[0].target", `write an absolute path without '.' or '..' elements and without repeated or trailing slashes: "/etc/api.conf"`}},
		{"volume target", func(st *spec.Stack) { st.Services["api"].Mounts[0].Target = "/var/../etc" },
			want{"api", "volumes[0].target", "not a clean absolute path"}},
		{"relative working_dir", func(st *spec.Stack) { st.Services["api"].WorkingDir = "srv" },
			want{"api", "working_dir", `"srv" is not a clean absolute path`}},
		{"tmpfs path", func(st *spec.Stack) { st.Services["api"].Tmpfs = []string{"/run/../x:size=64m"} }, want{"api", "tmpfs[0]", "not a clean absolute path"}},
		{"unknown mount type", func(st *spec.Stack) { st.Services["api"].Mounts[0].Type = "npipe" }, want{"api", "volumes[0].type", `mount type "npipe" is not valid`}},
		{"stack name of 100,000 characters", func(st *spec.Stack) { st.Name = strings.Repeat("a", 100_000) },
			want{"", "name", "100000 characters long; the limit is 63"}},
		{"stack name with upper case", func(st *spec.Stack) { st.Name = "Web" }, want{"", "name", `invalid stack name "Web"`}},
		{"network name", func(st *spec.Stack) { st.Networks["default"].Name = "../host" },
			want{"", "networks.default.name", `invalid network name "../host"`}},
		{"volume name", func(st *spec.Stack) { st.Volumes["data"].Name = "../../etc" }, want{"", "volumes.data.name", `invalid volume name "../../etc"`}},
		{"secret key", func(st *spec.Stack) { st.Secrets["../pw"] = st.Secrets["pw"] }, want{"", `secrets["../pw"]`, "invalid secret name"}},
		{"config name", func(st *spec.Stack) { st.Configs["conf"].Name = "a\nb" }, want{"", "configs.conf.name", `invalid config name "a\nb"`}},
		{"a label value of 50 MB", func(st *spec.Stack) { st.Services["api"].Labels["big"] = strings.Repeat("x", 50<<20) },
			want{"api", `labels["big"]`, "the value is 52428800 bytes long; the limit is 4096"}},
		{"a label value over the limit", func(st *spec.Stack) {
			st.Services["api"].Labels["big"] = strings.Repeat("x", spec.MaxLabelValueBytes+1)
		},
			want{"api", `labels["big"]`, "the value is 4097 bytes long; the limit is 4096"}},
		{"a label key over the limit", func(st *spec.Stack) {
			st.Services["api"].Deploy.Labels = map[string]string{strings.Repeat("k", 257): ""}
		},
			want{"api", `deploy.labels["kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"…]`, "257 bytes long; the limit is 256"}},
		{"a label key with a control character", func(st *spec.Stack) { st.Networks["default"].Labels = map[string]string{"a\x1b[2J": ""} },
			want{"", `networks.default.labels["a\x1b[2J"]`, "holds a control or bidirectional-formatting character"}},
		{"too many labels", func(st *spec.Stack) { st.Volumes["data"].Labels = manyLabels(129) }, want{"", "volumes.data.labels", "129 labels; the limit is 128"}},
		{"too many secret labels", func(st *spec.Stack) { st.Secrets["pw"].Labels = manyLabels(129) }, want{"", "secrets.pw.labels", "129 labels"}},
		{"undefined secret", func(st *spec.Stack) { st.Services["api"].Secrets[0].Source = "nope" }, want{"api", "secrets[0]", `secret "nope" is not defined`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := goodStack()
			c.change(st)
			err := spec.Validate(st)
			var ve *spec.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
			requireProblems(t, "error", ve.Problems, []want{c.want})
			if len(err.Error()) > 2000 {
				t.Errorf("the message is %d bytes long: it should quote values short", len(err.Error()))
			}
		})
	}
}

func renameService(st *spec.Stack, name string) {
	s := st.Services["api"]
	delete(st.Services, "api")
	s.Name = name
	st.Services[name] = s
}

func TestValidateAcceptsGoodStacks(t *testing.T) {
	st := goodStack()
	st.Services["api"].Labels = manyLabels(spec.MaxLabels)
	st.Services["api"].Labels["l0"] = strings.Repeat("x", spec.MaxLabelValueBytes)
	renameService(st, "Api_v2-x")
	if err := spec.Validate(st); err != nil {
		t.Fatal(err)
	}
	if err := spec.Validate(loadGenerated(t, generatedStack(100, 0))); err != nil {
		t.Fatalf("a loaded stack: %v", err)
	}
}

func TestValidateLabels(t *testing.T) {
	for _, c := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{strings.Repeat("k", 1<<20): "v"}, "is 1048576 bytes long; the limit is 256"},
		{map[string]string{"k": strings.Repeat("v", 3<<20)}, "the value is 3145728 bytes long; the limit is 4096"},
		{manyLabels(100_000), "100000 labels; the limit is 128"},
		{map[string]string{"": "v"}, "a label has an empty key"},
	} {
		err := spec.ValidateLabels("labels", c.labels)
		if err == nil || !strings.Contains(err.Error(), c.want) || len(err.Error()) > 1000 {
			t.Errorf("ValidateLabels = %.200v, want %q", err, c.want)
		}
	}
	if err := spec.ValidateLabels("labels", map[string]string{"zone": "a"}); err != nil {
		t.Error(err)
	}
}

func TestCheckStackSize(t *testing.T) {
	if err := spec.CheckStackSize("web", spec.MaxStackBytes); err != nil {
		t.Error(err)
	}
	err := spec.CheckStackSize("web", spec.MaxStackBytes+1)
	if want := "stack web: the stack encodes to 2097153 bytes, secret and config content aside; the limit is 2097152"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("CheckStackSize = %v, want %q", err, want)
	}
}

func TestLoadRefusesPathsOutOfTheContainer(t *testing.T) {
	runProblemCases(t, []problemCase{
		{
			name:  "secret target",
			files: withService("    secrets: [{source: pw, target: ../../../../etc/shadow}]\n", "secrets:\n  pw: {environment: PW}\n"),
			env:   map[string]string{"PW": "x"},
			errs:  []want{{"web", "secrets[0].target", `"/run/secrets/../../../../etc/shadow" is not a clean absolute path`}},
		},
		{
			name:  "service name",
			files: []string{"services:\n  web.app:\n    image: nginx\n"},
			errs:  []want{{"", `services["web.app"]`, "invalid service name"}},
		},
	})
}
