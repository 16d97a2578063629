package spec

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// cutCases are files written the plain way (cut: true) and files that must be parsed
// whole.
var cutCases = []struct {
	name, yaml string
	cut        bool
}{
	{"plain", "services:\n  a:\n    image: x\n  b: {image: y}\nnetworks:\n  n: {}\n", true},
	{"sections before and after", "x-a: {b: c}\nservices:\n  a:\n    image: x\nvolumes:\n  v: {}\n", true},
	{"comments anywhere", "services:\n# a comment\n  a:\n    image: x\n# between\n  # indented\n  b:\n    image: y # trailing\n", true},
	{"four spaces, CRLF", "services:\r\n    a:\r\n        image: x\r\n    b:\r\n        image: y\r\n", true},
	{"block scalars", "services:\n  a:\n    image: x\n    command: |\n      echo a\n\n      echo b\n  b:\n    image: y\n    entrypoint: >\n      folded\n      text\n", true},
	{"quoted keys and empty service", "services:\n  'a b':\n    image: x\n  \"c\":\n  d: null\n", true},
	{"services at the end, no newline", "version: '3'\nservices:\n  a: {image: x}", true},
	{"a document marker first", "---\nservices:\n  a: {image: x}\n", true},
	{"flow mapping", "services: {a: {image: x}}\n", false},
	{"a list of services", "services:\n  - a\n", false},
	{"anchors and aliases", "x-d: &d {image: x}\nservices:\n  a: *d\n  b:\n    <<: *d\n", false},
	{"an anchor inside a service", "services:\n  a: &a {image: x}\n  b: {image: y}\n", false},
	{"tags", "services:\n  a:\n    image: !!str x\n    ports: !reset []\n", false},
	{"two documents", "services:\n  a: {image: x}\n---\nservices:\n  b: {image: y}\n", false},
	{"a repeated service", "services:\n  a: {image: x}\n  a: {image: y}\n", false},
	{"a repeated services key", "services:\n  a: {image: x}\nservices:\n  b: {image: y}\n", false},
	{"flow continued at the services' indent", "services:\n  a:\n    command: [a,\n  b]\n", false},
	{"quoted text continued at the services' indent", "services:\n  a:\n    command: \"a\n  b\"\n", false},
	{"less indented line", "services:\n    a:\n      image: x\n  b: {}\n", false},
	{"tab indent", "services:\n\ta: {image: x}\n", false},
	{"no services", "networks:\n  n: {}\n", false},
	{"services empty", "services:\nnetworks: {}\n", false},
	{"not YAML", "services:\n  a: [\n", false},
	{"explicit key", "services:\n  ? a\n  : {image: x}\n", false},
}

// decodeCut gives what decoding the whole file gives, whenever it takes a file.
func TestCutDecodeAgreesWithYAML(t *testing.T) {
	for _, tc := range cutCases {
		t.Run(tc.name, func(t *testing.T) {
			_, cut := checkCutDecode(t, []byte(tc.yaml))
			if cut != tc.cut {
				t.Errorf("cut: %v, want %v", cut, tc.cut)
			}
		})
	}
	// Every Compose file of the repository, as a second opinion.
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yml") || strings.HasSuffix(path, ".yaml")) {
			return err
		}
		content, err := os.ReadFile(path)
		if err == nil {
			checkCutDecode(t, content)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkCutDecode fails t when decodeCut takes content and its result differs from
// yaml's, with and without a cache.
func checkCutDecode(t *testing.T, content []byte) (map[string]any, bool) {
	t.Helper()
	got, cut := decodeCut(content, nil)
	if !cut {
		return nil, false
	}
	var want map[string]any
	if err := yaml.Unmarshal(content, &want); err != nil {
		t.Fatalf("cut a file yaml refuses (%v):\n%s", err, content)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("cut decode differs:\n%#v\nyaml:\n%#v\nfile:\n%s", got, want, content)
	}
	cache := NewCache()
	for range 2 {
		if cached, _ := decodeCut(content, cache); !reflect.DeepEqual(cached, want) {
			t.Fatalf("cached cut decode differs:\n%#v\nfile:\n%s", cached, content)
		}
	}
	return got, true
}

// FuzzCutDecode: whatever the bytes, a file decodeCut takes decodes as yaml decodes it.
func FuzzCutDecode(f *testing.F) {
	for _, tc := range cutCases {
		f.Add([]byte(tc.yaml))
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		checkCutDecode(t, content)
	})
}
