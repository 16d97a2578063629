package spec_test

import (
	"testing"

	"github.com/berthd/berth/spec"
)

// The Compose loader's own errors come out as berth's problems, placed and with a fix,
// and the rest of the stack is still checked.
func TestLoadTranslatesLoaderErrors(t *testing.T) {
	const mode, modeFix = `mode "globl" is not valid`, `did you mean "global"? Valid values: replicated, global, replicated-job, global-job`
	problem := func(file, service, field, msg, fix string) spec.Problem {
		return spec.Problem{File: file, Stack: testStack, Service: service, Field: field, Message: msg, Fix: fix}
	}
	for _, c := range []struct {
		name  string
		files []string
		env   map[string]string
		want  []spec.Problem
	}{
		{name: "replicas: two beside mode: globl",
			files: []string{"services:\n  api:\n    image: x\n    deploy:\n      replicas: two\n      mode: globl\n"},
			want: []spec.Problem{
				problem("compose.yml", "api", "deploy.replicas", `"two" is not a whole number`, "write a whole number, such as 3"),
				problem("compose.yml", "api", "deploy.mode", mode, modeFix),
			}},
		{name: "replicas from a variable",
			files: []string{"services:\n  api:\n    image: x\n    deploy:\n      replicas: ${N}\n"}, env: map[string]string{"N": "two"},
			want: []spec.Problem{problem("compose.yml", "api", "deploy.replicas", `"two" is not a whole number`, "write a whole number, such as 3")}},
		{name: "short volume without a source",
			files: []string{"services:\n  api:\n    image: x\n    volumes:\n      - /srv/ok:/ok\n      - \":/data\"\n"},
			want: []spec.Problem{problem("compose.yml", "api", "volumes[1]", `":/data" is not a valid volume: empty section between colons`,
				"write SOURCE:TARGET[:ro], such as data:/data or ./data:/data")}},
		{name: "port number out of range",
			files: []string{"services:\n  api:\n    image: x\n    ports:\n      - \"99999:80\"\n"},
			want: []spec.Problem{problem("compose.yml", "api", "ports[0]", `"99999:80" is not a valid port mapping: the published port "99999" is not valid`,
				"write [PUBLISHED:]TARGET[/PROTOCOL] with ports between 1 and 65535, such as 8080:80")}},
		{name: "port target not a number",
			files: []string{"services:\n  api:\n    image: x\n    ports:\n      - target: http\n"},
			want:  []spec.Problem{problem("compose.yml", "api", "ports[0].target", `"http" is not a whole number`, "write a whole number, such as 3")}},
		{name: "environment of the wrong type",
			files: []string{"services:\n  api:\n    image: x\n    environment: 5\n    deploy: {mode: globl}\n"},
			want: []spec.Problem{
				problem("compose.yml", "api", "environment", "5 is not valid here: it must be a mapping", "write KEY: value lines, or a list of KEY=value"),
				problem("compose.yml", "api", "deploy.mode", mode, modeFix),
			}},
		{name: "environment entries of the wrong type, numbered as written",
			files: []string{"services:\n  api:\n    image: x\n    environment: [1, A=b, {c: d}]\n"},
			want: []spec.Problem{
				problem("compose.yml", "api", "environment[0]", "1 is not valid here: it must be a string", "write each entry as KEY=value"),
				problem("compose.yml", "api", "environment[2]", "a mapping is not valid here: it must be a string", "write each entry as KEY=value"),
			}},
		{name: "image of the wrong type says so once",
			files: []string{"services:\n  api:\n    image: [x]\n"},
			want: []spec.Problem{problem("compose.yml", "api", "image", "a list is not valid here: it must be a string",
				"write a single value, quoted if it looks like a number or a list")}},
		{name: "two files merged: each problem names its file",
			files: []string{"services:\n  api:\n    image: x\n    deploy:\n      mode: globl\n", "services:\n  api:\n    deploy:\n      replicas: two\n"},
			want: []spec.Problem{
				problem("compose.override1.yml", "api", "deploy.replicas", `"two" is not a whole number`, "write a whole number, such as 3"),
				problem("compose.yml", "api", "deploy.mode", mode, modeFix),
			}},
		{name: "schema error in the second file names it",
			files: []string{"services:\n  api:\n    image: x\n", "services:\n  api:\n    environment: 5\n"},
			want: []spec.Problem{problem("compose.override1.yml", "api", "environment", "5 is not valid here: it must be a mapping",
				"write KEY: value lines, or a list of KEY=value")}},
		{name: "a boolean of a top-level object",
			files: []string{"services:\n  api:\n    image: x\nnetworks:\n  n:\n    external: maybe\n"},
			want:  []spec.Problem{problem("compose.yml", "", "networks.n.external", `"maybe" is not true or false`, "write true or false")}},
		{name: "a volume without a target",
			files: []string{"services:\n  api:\n    image: x\n    volumes: [{type: bind, source: /a}]\n"},
			want: []spec.Problem{problem("compose.yml", "api", "volumes[0]", "the entry has no mount target",
				"add `target:` (the path in the container)")}},
		{name: "a number the decoder refuses",
			files: []string{"services:\n  api:\n    image: x\n    secrets: [{source: s, mode: rw}]\nsecrets:\n  s: {external: true}\n"},
			want:  []spec.Problem{problem("compose.yml", "api", "secrets[0].mode", `"rw" is not a whole number`, "write a whole number, such as 3")}},
		{name: "YAML syntax",
			files: []string{"services:\n  api:\n    image: x\n   bad: indent\n"},
			want: []spec.Problem{problem("compose.yml", "", "",
				"the file is not valid YAML: while parsing a block mapping at line 1, column 3: line 3, column 4: did not find expected key",
				"check the indentation (spaces, not tabs) and the quoting around that line")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := composeOpts(c.files...)
			if c.env != nil {
				o.Environment = c.env
			}
			ve, _ := mustFail(t, o)
			requireEqual(t, "problems", ve.Problems, c.want)
		})
	}
}
