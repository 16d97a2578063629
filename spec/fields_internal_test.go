package spec

import (
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// The fast path of the image check accepts nothing the full parse refuses.
func TestPlainReferenceAgreesWithTheParse(t *testing.T) {
	for _, s := range []string{
		"nginx", "nginx:1.27", "nginx:", "Nginx", "library/nginx:1.27-alpine", "foo:Bar", "FOO", "Foo/bar", "foo/Bar",
		"localhost/x", "localhost:5000/x:1", "localhost:5000/Foo", "registry.example.com/team/app:1.0", "[::1]:5000/x",
		"foo:5000/bar", "foo/bar:5000/baz", "example.com:5000", "a//b", "a/", "/a", "a:b:c", "a b", "nginx\nx", "-a", "a-",
		"a__b", "a___b", "a..b", "ubuntu@sha256:" + strings.Repeat("a", 64), "ubuntu@sha256:abc", strings.Repeat("a", 64),
		strings.Repeat("a", 200), "a/" + strings.Repeat("b", 198), strings.Repeat("a/", 130) + "b", "x:" + strings.Repeat("t", 129),
	} {
		_, err := reference.ParseNormalizedNamed(s)
		if plainReference(s) && err != nil {
			t.Errorf("%q: the fast path accepts what the parse refuses: %v", s, err)
		}
	}
}
