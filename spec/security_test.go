package spec_test

import (
	"reflect"
	"testing"
	"testing/fstest"

	"github.com/berthd/berth/spec"
)

const denyMkdirProfile = `{
  "defaultAction": "SCMP_ACT_ALLOW",
  "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
  "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "comment": "no new folders"}]
}`

func TestLoadSecurityOpt(t *testing.T) {
	profiles := fstest.MapFS{
		"stack/seccomp/deny-mkdir.json": {Data: []byte(denyMkdirProfile)},
		"stack/empty.json":              {Data: []byte(`{}`)},
		"stack/not-json.json":           {Data: []byte(`defaultAction: allow`)},
		"stack/bad-action.json":         {Data: []byte(`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "ALLOW"}]}`)},
		"stack/bad-op.json": {Data: []byte(`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
			"args": [{"index": 0, "value": 8, "op": "=="}]}]}`)},
		"stack/both-arches.json": {Data: []byte(`{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
			"archMap": [{"architecture": "SCMP_ARCH_X86_64"}], "syscalls": []}`)},
		"stack/nameless.json": {Data: []byte(`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}`)},
	}
	type security struct {
		Seccomp                                                 *spec.Seccomp
		NoNewPrivileges, SystemPathsUnconfined, WritableCgroups bool
	}
	cases := []struct {
		name       string
		opts       string // the YAML list under security_opt:
		privileged bool
		want       security
		errs       []want
		warns      []want
	}{
		{name: "unconfined", opts: `["seccomp=unconfined"]`, want: security{Seccomp: &spec.Seccomp{Unconfined: true}}},
		{name: "colon form", opts: `["seccomp:unconfined", "no-new-privileges:true"]`,
			want: security{Seccomp: &spec.Seccomp{Unconfined: true}, NoNewPrivileges: true}},
		{name: "builtin is the default", opts: `["seccomp=builtin"]`},
		{name: "a later entry wins", opts: `["seccomp=unconfined", "seccomp=builtin"]`},
		{name: "profile from the stack's folder", opts: `["seccomp=seccomp/deny-mkdir.json"]`,
			want: security{Seccomp: &spec.Seccomp{File: "seccomp/deny-mkdir.json", Profile: denyMkdirProfile}}},
		{name: "bare no-new-privileges", opts: `[no-new-privileges]`, want: security{NoNewPrivileges: true}},
		{name: "no-new-privileges false", opts: `["no-new-privileges=false"]`},
		{name: "system paths and cgroups", opts: `["systempaths=unconfined", "writable-cgroups=true"]`,
			want: security{SystemPathsUnconfined: true, WritableCgroups: true}},
		{name: "nothing to lift", opts: `["apparmor=unconfined", "label=disable", "label:disable"]`},
		{name: "profile of a privileged service", opts: `["seccomp=seccomp/deny-mkdir.json"]`, privileged: true,
			want:  security{Seccomp: &spec.Seccomp{File: "seccomp/deny-mkdir.json", Profile: denyMkdirProfile}},
			warns: []want{{"web", "security_opt[0]", "the seccomp option is ignored"}}},
		{name: "missing profile", opts: `["seccomp=nope.json"]`,
			errs: []want{{"web", "security_opt[0]", "cannot read the seccomp profile nope.json"}, {"web", "security_opt[0]", "relative paths start at the stack's folder"}}},
		{name: "profile outside the stack", opts: `["seccomp=../../etc/profile.json"]`,
			errs: []want{{"web", "security_opt[0]", "outside the stack's file system"}}},
		{name: "empty profile", opts: `["seccomp=empty.json"]`,
			errs: []want{{"web", "security_opt[0]", "no defaultAction (to run without a filter, write seccomp=unconfined)"}}},
		{name: "profile not JSON", opts: `["seccomp=not-json.json"]`,
			errs: []want{{"web", "security_opt[0]", "not JSON of a seccomp profile"}, {"web", "security_opt[0]", "Docker's seccomp format"}}},
		{name: "unknown action", opts: `["seccomp=bad-action.json"]`,
			errs: []want{{"web", "security_opt[0]", `syscalls[0]: action "ALLOW" is not a seccomp action`}}},
		{name: "unknown operator", opts: `["seccomp=bad-op.json"]`,
			errs: []want{{"web", "security_opt[0]", `syscalls[0].args[0]: op "==" is not a seccomp operator`}}},
		{name: "architectures and archMap", opts: `["seccomp=both-arches.json"]`,
			errs: []want{{"web", "security_opt[0]", "both architectures and archMap"}}},
		{name: "rule without a syscall", opts: `["seccomp=nameless.json"]`,
			errs: []want{{"web", "security_opt[0]", "syscalls[0] names no syscall"}}},
		{name: "seccomp without value", opts: `["seccomp="]`,
			errs: []want{{"web", "security_opt[0]", "seccomp has no value"}}},
		{name: "bad boolean", opts: `["no-new-privileges=sometimes"]`,
			errs: []want{{"web", "security_opt[0]", `no-new-privileges takes true or false, not "sometimes"`}}},
		{name: "apparmor profile", opts: `["apparmor=docker-default"]`,
			errs: []want{{"web", "security_opt[0]", `berth does not apply AppArmor profiles: "docker-default" cannot be honoured`}}},
		{name: "selinux label", opts: `["label=type:svirt_apache_t"]`,
			errs: []want{{"web", "security_opt[0]", "berth does not apply SELinux labels"}}},
		{name: "systempaths other than unconfined", opts: `["systempaths=open"]`,
			errs: []want{{"web", "security_opt[0]", `systempaths takes only unconfined, not "open"`}}},
		{name: "unknown key and no value", opts: `["seccomp=unconfined", "secret=x", "hardened"]`,
			errs: []want{{"web", "security_opt[1]", `unknown security option "secret"`}, {"web", "security_opt[2]", `"hardened" is not key=value`}}},
	}
	for _, c := range cases {
		file := "services:\n  web:\n    image: nginx\n    security_opt: " + c.opts + "\n"
		if c.privileged {
			file += "    privileged: true\n"
		}
		runProblemCases(t, []problemCase{{
			name:  c.name,
			files: []string{file},
			fsys:  profiles, workingDir: "stack",
			errs: c.errs, warns: c.warns, noWarnings: c.warns == nil,
			check: func(t *testing.T, st *spec.Stack) {
				s := st.Services["web"]
				got := security{s.Seccomp, s.NoNewPrivileges, s.SystemPathsUnconfined, s.WritableCgroups}
				if !reflect.DeepEqual(got, c.want) {
					t.Fatalf("security_opt %s:\n got %+v\nwant %+v", c.opts, got, c.want)
				}
			},
		}})
	}
}
