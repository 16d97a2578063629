package spec_test

import (
	"testing"

	"github.com/berthd/berth/spec"
)

// Every problem names its file: the one that set the field, or the files when no single
// one did.
func TestLoadNamesTheFileOfEachProblem(t *testing.T) {
	type placed struct{ Service, Field, File string }
	for _, c := range []struct {
		name        string
		files       []spec.File
		errs, warns []placed
	}{
		{name: "a stack from Git is named by its path in the repository",
			files: []spec.File{{Name: "stacks/web/compose.yaml", Content: []byte("services:\n  api:\n    image: x\n    deploy: {mode: globl}\n")}},
			errs:  []placed{{"api", "deploy.mode", "stacks/web/compose.yaml"}}},
		{name: "the file that set the field",
			files: []spec.File{
				{Name: "a.yaml", Content: []byte("services:\n  api:\n    image: x\n    deploy:\n      placement:\n        constraints: [\"node.rol == manager\"]\n")},
				{Name: "b.yaml", Content: []byte("services:\n  api:\n    deploy:\n      mode: globl\n")},
			},
			errs: []placed{{"api", "deploy.placement.constraints[0]", "a.yaml"}, {"api", "deploy.mode", "b.yaml"}}},
		{name: "the later of two files that set the field",
			files: []spec.File{
				{Name: "a.yaml", Content: []byte("services:\n  api:\n    image: x\n    deploy: {mode: globl}\n")},
				{Name: "b.yaml", Content: []byte("services:\n  api:\n    deploy: {mode: globl}\n")},
			},
			errs: []placed{{"api", "deploy.mode", "b.yaml"}}},
		{name: "a missing field: the files that define the service",
			files: []spec.File{
				{Name: "a.yaml", Content: []byte("services:\n  api: {}\n  web:\n    image: x\n")},
				{Name: "b.yaml", Content: []byte("services:\n  api:\n    command: [run]\n")},
				{Name: "c.yaml", Content: []byte("services:\n  web:\n    command: [run]\n")},
			},
			errs: []placed{{"api", "image", "a.yaml + b.yaml"}}},
		{name: "warnings too, and environment written as a list",
			files: []spec.File{
				{Name: "a.yaml", Content: []byte("services:\n  api:\n    image: x\n")},
				{Name: "b.yaml", Content: []byte("services:\n  api:\n    container_name: api\n    environment: [UNSET_IN_ENV]\n")},
			},
			warns: []placed{{"api", "container_name", "b.yaml"}, {"api", "environment.UNSET_IN_ENV", "b.yaml"}}},
		{name: "an unset variable: the file that uses it",
			files: []spec.File{
				{Name: "a.yaml", Content: []byte("services:\n  api:\n    image: x\n")},
				{Name: "b.yaml", Content: []byte("services:\n  api:\n    image: x${TAG}\n")},
			},
			warns: []placed{{"", "", "b.yaml"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := spec.LoadOptions{Stack: testStack, Files: c.files, Environment: map[string]string{}}
			_, warns, err := tryLoad(t, o)
			var errs []spec.Problem
			if c.errs != nil {
				ve, _ := mustFail(t, o)
				errs = ve.Problems
			} else if err != nil {
				t.Fatalf("Load: %v", err)
			}
			check := func(kind string, got []spec.Problem, wants []placed) {
				for _, w := range wants {
					found := false
					for _, p := range got {
						found = found || (placed{p.Service, p.Field, p.File} == w)
					}
					if !found {
						t.Errorf("no %s at %+v; got:\n%s", kind, w, listProblems(got))
					}
				}
			}
			check("error", errs, c.errs)
			check("warning", warns, c.warns)
		})
	}
}

// The file leads a problem's text, as a user reads it; JSON has it as "file".
func TestProblemShowsItsFile(t *testing.T) {
	p := spec.Problem{File: "stacks/web/compose.yaml", Stack: "web", Service: "api", Field: "deploy.replicas",
		Message: `"two" is not a whole number`, Fix: "write a whole number, such as 3"}
	requireEqual(t, "String", p.String(),
		`stacks/web/compose.yaml: stack web, service api, deploy.replicas: "two" is not a whole number; write a whole number, such as 3`)
	requireEqual(t, "JSON", mustJSON(t, spec.Problem{File: "a.yaml", Message: "m"}), "{\n  \"file\": \"a.yaml\",\n  \"message\": \"m\"\n}")
	requireEqual(t, "String without a place", spec.Problem{File: "a.yaml", Message: "m"}.String(), "a.yaml: m")
}
