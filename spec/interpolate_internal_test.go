package spec

import (
	"context"
	"reflect"
	"testing"

	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// berth's interpolation of a decoded unit gives the loader's model exactly, and hands
// back to the loader what it cannot do.
func TestInterpolateUnitAgreesWithTheLoader(t *testing.T) {
	env := map[string]string{"TAG": "1.2", "N": "3", "ON": "true", "EMPTY": ""}
	for _, tc := range []struct {
		name, yaml string
		done       bool
	}{
		{"variables and defaults", "services:\n  web:\n    image: nginx:${TAG}\n    environment: {A: '${UNSET:-${TAG}}', B: $$HOME, C: '${EMPTY:-x}'}\n", true},
		{"casts of strings", "services:\n  web:\n    image: nginx\n    deploy: {replicas: '${N}', update_config: {parallelism: '2'}}\n    read_only: '${ON}'\n    ports: [{target: '80', published: '8080'}]\n", true},
		{"project name", "services:\n  web:\n    image: nginx\n    labels: ['p=${COMPOSE_PROJECT_NAME}']\n", true},
		{"top-level sections", "services:\n  web: {image: nginx}\nnetworks:\n  front: {internal: '${ON}'}\nx-a.b: {c: '${TAG}'}\n", true},
		{"empty list", "services:\n  web: {image: nginx, command: []}\n", true},
		{"failing cast", "services:\n  web:\n    image: nginx\n    deploy: {replicas: many}\n", false},
		{"bad template", "services:\n  web: {image: 'nginx:${TAG'}\n", false},
		{"non-string key", "services:\n  web:\n    image: nginx\n    labels: {1: a}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var raw map[string]any
			if err := yaml.Unmarshal([]byte(tc.yaml), &raw); err != nil {
				t.Fatal(err)
			}
			opts := LoadOptions{Stack: "st"}
			files := []types.ConfigFile{{Filename: "compose.yaml", Config: raw}}
			ours, oursErr := loadFiles(context.Background(), files, opts, env, map[string]bool{}, &problems{})
			// Given the bytes, the loader interpolates the file itself.
			asBytes := []types.ConfigFile{{Filename: "compose.yaml", Content: []byte(tc.yaml)}}
			theirs, theirsErr := loadFiles(context.Background(), asBytes, opts, env, map[string]bool{}, &problems{})
			if (oursErr == nil) != (theirsErr == nil) || oursErr != nil && oursErr.Error() != theirsErr.Error() {
				t.Fatalf("errors differ: %v, loader: %v", oursErr, theirsErr)
			}
			if !reflect.DeepEqual(ours, theirs) {
				t.Errorf("projects differ:\n%+v\nloader:\n%+v", ours, theirs)
			}
			_, done := interpolateUnit(files, template.Substitute, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if tc.done && !done {
				t.Error("berth left the interpolation to the loader")
			}
		})
	}
}
