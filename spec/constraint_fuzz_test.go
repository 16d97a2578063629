package spec

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseConstraint checks that no input panics, that every accepted constraint
// survives its canonical text unchanged (the stack hash depends on it), and that every
// refusal is a *ConstraintError whose suggestion, when it is not a template, parses.
// The same input also goes through ParsePreference, which shares the key resolver.
func FuzzParseConstraint(f *testing.F) {
	for _, seed := range []string{
		"node.role == manager",
		"Node.Labels.OS!=Linux",
		"node.ip == 10.0.0.0/8",
		"node.label.os = linux",
		"labels.os == \"linux\"",
		"node. role == master",
		"node.labels.zone",
		"spread=node.labels.zone",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		c, err := ParseConstraint(expr)
		if err == nil {
			again, err := ParseConstraint(c.String())
			if err != nil {
				t.Fatalf("ParseConstraint(%q) = %q, which does not parse: %v", expr, c.String(), err)
			}
			if again != c {
				t.Fatalf("ParseConstraint(%q) = %#v, but its text %q gives %#v", expr, c, c.String(), again)
			}
		} else {
			checkFuzzedError(t, expr, err, func(s string) error { _, err := ParseConstraint(s); return err })
		}

		key, err := ParsePreference(expr)
		if err == nil {
			again, err := ParsePreference(key)
			if err != nil || again != key {
				t.Fatalf("ParsePreference(%q) = %q, which gives %q, %v", expr, key, again, err)
			}
		} else {
			checkFuzzedError(t, expr, err, func(s string) error { _, err := ParsePreference(s); return err })
		}
	})
}

func checkFuzzedError(t *testing.T, expr string, err error, parse func(string) error) {
	t.Helper()
	var ce *ConstraintError
	if !errors.As(err, &ce) {
		t.Fatalf("%q: error %T is not a *ConstraintError: %v", expr, err, err)
	}
	if ce.Expr != expr || ce.Reason == "" {
		t.Fatalf("%q: error has Expr %q, Reason %q", expr, ce.Expr, ce.Reason)
	}
	if s := ce.Suggestion; s != "" && !strings.Contains(s, constraintLabelPlaceholder) {
		if err := parse(s); err != nil {
			t.Fatalf("%q: suggestion %q does not parse: %v", expr, s, err)
		}
	}
}
