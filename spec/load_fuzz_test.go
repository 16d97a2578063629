package spec_test

import (
	"context"
	"errors"
	"testing"
	"testing/fstest"

	"github.com/berthd/berth/spec"
	"gopkg.in/yaml.v3"
)

// FuzzLoad feeds arbitrary bytes to the loader as a compose file (and as an override of
// a fixed base file). Whatever the input: no panic, an error or a stack, never both; a
// loaded stack encodes, hashes and diffs against itself as empty.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("services:\n  web:\n    image: nginx\n"))
	f.Add([]byte("services:\n  web:\n    image: nginx:${TAG:-1}\n    deploy:\n      mode: global\n      placement:\n        constraints: [node.labels.os == linux]\n"))
	f.Add([]byte("services:\n  a:\n    image: x\n    deploy: {max_replicas_per_node: 1}\n"))
	base := []byte("services:\n  web:\n    image: nginx\n    secrets: [s]\nsecrets:\n  s: {file: s.txt}\n")
	fsys := fstest.MapFS{"s.txt": {Data: []byte("fuzz-secret")}}
	f.Fuzz(func(t *testing.T, content []byte) {
		for _, files := range [][]spec.File{
			{{Name: "compose.yml", Content: content}},
			{{Name: "base.yml", Content: base}, {Name: "override.yml", Content: content}},
		} {
			st, _, err := spec.Load(context.Background(), spec.LoadOptions{
				Stack: "fuzz", Files: files, FS: fsys, Environment: map[string]string{"TAG": "2"},
			})
			if err != nil {
				if st != nil {
					t.Fatalf("error %v came with a stack", err)
				}
				var verr *spec.ValidationError
				if errors.As(err, &verr) && len(verr.Problems) == 0 {
					t.Fatal("validation error without problems")
				}
				continue
			}
			if st == nil {
				t.Fatal("no error and no stack")
			}
			if _, err := yaml.Marshal(st); err != nil {
				t.Fatalf("loaded stack does not encode: %v", err)
			}
			for name, s := range st.Services {
				if len(s.Hash()) != 64 {
					t.Fatalf("service %s: bad hash %q", name, s.Hash())
				}
			}
			if d := spec.Diff(st, st); !d.Empty() {
				t.Fatalf("a stack differs from itself: %+v", d)
			}
		}
	})
}
