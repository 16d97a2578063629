package spec

import (
	"regexp"
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

// The name rules, written out for speed, match what Swarm's regular expressions
// match: every string of up to four characters from an alphabet of each kind of
// character they treat differently.
func TestNameRulesAgreeWithSwarmsExpressions(t *testing.T) {
	for _, tc := range []struct {
		rule    nameRule
		pattern *regexp.Regexp
	}{
		{stackNames, regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)},
		{dnsNames, regexp.MustCompile(`^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`)},
		{objectNames, regexp.MustCompile(`^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`)},
	} {
		alphabet := []string{"a", "Z", "0", "-", "_", ".", ":", "/", " ", "\n", "é", "\u202e"}
		names := []string{""}
		for range 4 {
			for _, n := range names {
				for _, c := range alphabet {
					if len(n) < 4 {
						names = append(names, n+c)
					}
				}
			}
		}
		for _, n := range names {
			if got, want := tc.rule.matches(n), tc.pattern.MatchString(n); got != want {
				t.Errorf("%s on %q: %v, the expression says %v", tc.pattern, n, got, want)
			}
		}
	}
}
