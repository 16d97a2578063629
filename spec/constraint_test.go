package spec

import (
	"errors"
	"strings"
	"testing"
)

func TestParseConstraintValid(t *testing.T) {
	tests := []struct {
		expr string
		want Constraint
	}{
		{"node.role == manager", Constraint{"node.role", OpEqual, "manager"}},
		{"node.role != worker", Constraint{"node.role", OpNotEqual, "worker"}},
		// Swarm accepts no spaces around the operator and any case in the fixed key.
		{"Node.Role==MANAGER", Constraint{"node.role", OpEqual, "manager"}},
		{"  node.hostname == web-1  ", Constraint{"node.hostname", OpEqual, "web-1"}},
		{"node.role\t==\tworker", Constraint{"node.role", OpEqual, "worker"}},
		{"node.id == 2ivku8v2gvtg4", Constraint{"node.id", OpEqual, "2ivku8v2gvtg4"}},
		{"node.platform.os == linux", Constraint{"node.platform.os", OpEqual, "linux"}},
		{"node.platform.OS == Linux", Constraint{"node.platform.os", OpEqual, "Linux"}},
		{"NODE.PLATFORM.ARCH != x86_64", Constraint{"node.platform.arch", OpNotEqual, "x86_64"}},
		{"node.ip == 10.0.0.1", Constraint{"node.ip", OpEqual, "10.0.0.1"}},
		{"node.ip != 10.0.0.0/8", Constraint{"node.ip", OpNotEqual, "10.0.0.0/8"}},
		{"node.ip == FE80::1", Constraint{"node.ip", OpEqual, "fe80::1"}},
		{"node.ip == 2001:DB8::/32", Constraint{"node.ip", OpEqual, "2001:db8::/32"}},
		{"node.labels.os == linux", Constraint{"node.labels.os", OpEqual, "linux"}},
		// The fixed part folds, the label name does not: Swarm matches labels exactly.
		{"Node.Labels.OS == linux", Constraint{"node.labels.OS", OpEqual, "linux"}},
		{"node.labels.com.example/zone == eu-west-1", Constraint{"node.labels.com.example/zone", OpEqual, "eu-west-1"}},
		{"node.labels.a_b-c.d == 1", Constraint{"node.labels.a_b-c.d", OpEqual, "1"}},
		{"engine.labels.gpu == true", Constraint{"engine.labels.gpu", OpEqual, "true"}},
		{"ENGINE.labels.gpu!=false", Constraint{"engine.labels.gpu", OpNotEqual, "false"}},
		{"node.labels.tier == a*b(c)?+[d]\\^$|/:e", Constraint{"node.labels.tier", OpEqual, "a*b(c)?+[d]\\^$|/:e"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := ParseConstraint(tt.expr)
			if err != nil {
				t.Fatalf("ParseConstraint(%q) error: %v", tt.expr, err)
			}
			if got != tt.want {
				t.Fatalf("ParseConstraint(%q) = %#v, want %#v", tt.expr, got, tt.want)
			}
			again, err := ParseConstraint(got.String())
			if err != nil || again != got {
				t.Fatalf("round trip of %q: got %#v, %v", got.String(), again, err)
			}
		})
	}
}

func TestParseConstraintInvalid(t *testing.T) {
	tests := []struct {
		expr       string
		reason     string // substring of Reason
		suggestion string // exact
	}{
		// Shape.
		{"", "empty constraint", ""},
		{"   ", "empty constraint", ""},
		{"== linux", "missing key", ""},
		{"node.role ==", "missing value", ""},
		{"node.role", "missing operator", ""},
		{"node.role manager", "missing operator", "node.role == manager"},

		// Operators.
		{"node.role = manager", `operator "=" is not supported`, "node.role == manager"},
		{"node.role === manager", `operator "===" is not supported`, "node.role == manager"},
		{"node.role <> manager", `operator "<>" is not supported`, "node.role != manager"},
		{"node.role >= manager", `operator ">=" is not supported (use == or !=)`, ""},
		{"node.role < manager", `operator "<" is not supported`, ""},
		{"node.labels.os ~= lin", `operator "~=" is not supported`, ""},
		{"node.labels.os in linux", `operator "in" is not supported`, ""},
		{"node.labels.os not in linux", `operator "not in" is not supported`, ""},
		// Every fixable part is fixed in one suggestion.
		{"node.label.os = linux", `unknown key "node.label.os"`, "node.labels.os == linux"},

		// Values.
		{"node.role == manager worker", `value "manager worker" must be a single word`, ""},
		{"node.role == master", `node.role must be manager or worker, not "master"`, "node.role == manager"},
		{"node.role != workers", `node.role must be manager or worker, not "workers"`, "node.role != worker"},
		{"node.role == admin", `node.role must be manager or worker, not "admin"`, ""},
		{"node.rol == master", `unknown key "node.rol"`, "node.role == manager"},
		{"node.ip == 10.0.0", `node.ip must be an IP address or a CIDR, not "10.0.0"`, ""},
		{"node.ip == 10.0.0.0/33", "node.ip must be an IP address or a CIDR", ""},
		{"node.ip == web-1", "node.ip must be an IP address or a CIDR", ""},
		{"node.ip == fe80::1%eth0", `contains '%'`, ""},
		{`node.labels.os == "linux"`, "must not be quoted", "node.labels.os == linux"},
		{`node.labels.os == 'linux'`, "must not be quoted", "node.labels.os == linux"},
		{"node.labels.os == lin,ux", `contains ','`, ""},
		{"node.labels.os == a==b", `contains '='`, ""},

		// Keys.
		{"node.label.os == linux", `unknown key "node.label.os"`, "node.labels.os == linux"},
		{"node.lables.os == linux", `unknown key "node.lables.os"`, "node.labels.os == linux"},
		{"node.labels == linux", `missing label name after "node.labels"`, "node.labels.<name> == linux"},
		{"node.labels. == linux", "missing label name", "node.labels.<name> == linux"},
		{"node.label == linux", `unknown key "node.label"`, "node.labels.<name> == linux"},
		{"engine.labels != x", "missing label name", "engine.labels.<name> != x"},
		{"node.hostnme == a", `unknown key "node.hostnme"`, "node.hostname == a"},
		{"engine.label.gpu == true", `unknown key "engine.label.gpu"`, "engine.labels.gpu == true"},
		{"labels.os == linux", `unknown key "labels.os"`, "node.labels.os == linux"},
		{"hostname == a", `unknown key "hostname"`, "node.hostname == a"},
		{"node.platform == linux", `unknown key "node.platform"`, "node.platform.os == linux"},
		{"node.os == linux", `unknown key "node.os"`, "node.platform.os == linux"},
		{"node.platform.arc == arm64", `unknown key "node.platform.arc"`, "node.platform.arch == arm64"},
		{"xyz == 1", `unknown key "xyz"; valid keys are node.id, node.hostname`, ""},
		{"completely.unrelated.key == 1", "valid keys are", ""},
		{"node.labels.os,x == a", `label name "os,x" may only contain`, ""},
		{"node. role == worker", `key "node. role" must not contain whitespace`, "node.role == worker"},
		{"node.labels.a b == c", "must not contain whitespace", ""},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			c, err := ParseConstraint(tt.expr)
			if err == nil {
				t.Fatalf("ParseConstraint(%q) = %#v, want an error", tt.expr, c)
			}
			var ce *ConstraintError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *ConstraintError: %v", err, err)
			}
			if ce.Expr != tt.expr {
				t.Errorf("Expr = %q, want the input %q", ce.Expr, tt.expr)
			}
			if !strings.Contains(ce.Reason, tt.reason) {
				t.Errorf("Reason = %q, want it to contain %q", ce.Reason, tt.reason)
			}
			if ce.Suggestion != tt.suggestion {
				t.Errorf("Suggestion = %q, want %q", ce.Suggestion, tt.suggestion)
			}
			checkSuggestionParses(t, ce.Suggestion)
		})
	}
}

// checkSuggestionParses holds suggestions to what they promise: pasting one in works,
// unless it is a template with a label name still to fill in.
func checkSuggestionParses(t *testing.T, suggestion string) {
	t.Helper()
	if suggestion == "" || strings.Contains(suggestion, constraintLabelPlaceholder) {
		return
	}
	if _, err := ParseConstraint(suggestion); err != nil {
		t.Errorf("suggestion %q does not parse: %v", suggestion, err)
	}
}

func TestConstraintErrorMessage(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{
			err:  parseConstraintErr("node.label.os == linux"),
			want: `constraint "node.label.os == linux": unknown key "node.label.os"; did you mean "node.labels.os == linux"?`,
		},
		{
			err:  parseConstraintErr("node.role >= manager"),
			want: `constraint "node.role >= manager": operator ">=" is not supported (use == or !=)`,
		},
		{
			err:  parseConstraintErr(" node.role == master"),
			want: `constraint " node.role == master": node.role must be manager or worker, not "master"; did you mean "node.role == manager"?`,
		},
		{
			err:  parsePreferenceErr("node.label.zone"),
			want: `spread preference "node.label.zone": unknown key "node.label.zone"; did you mean "node.labels.zone"?`,
		},
		{
			// Built by hand, as other packages may do.
			err:  &ConstraintError{Expr: "a", Reason: "b"},
			want: `constraint "a": b`,
		},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %s\nwant      %s", got, tt.want)
		}
	}
}

func parseConstraintErr(expr string) error {
	_, err := ParseConstraint(expr)
	return err
}

func parsePreferenceErr(spread string) error {
	_, err := ParsePreference(spread)
	return err
}

func TestConstraintString(t *testing.T) {
	tests := []struct {
		c    Constraint
		want string
	}{
		{Constraint{"node.role", OpEqual, "manager"}, "node.role == manager"},
		{Constraint{"node.labels.os", OpNotEqual, "linux"}, "node.labels.os != linux"},
		{Constraint{"engine.labels.gpu", OpEqual, "true"}, "engine.labels.gpu == true"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.c, got, tt.want)
		}
	}
	// Spellings of one constraint share one canonical text, so the stack hash ignores them.
	for _, expr := range []string{"node.role==manager", "  Node.Role  ==  Manager ", "NODE.ROLE\t==\tMANAGER"} {
		c, err := ParseConstraint(expr)
		if err != nil {
			t.Fatalf("ParseConstraint(%q): %v", expr, err)
		}
		if got := c.String(); got != "node.role == manager" {
			t.Errorf("ParseConstraint(%q).String() = %q, want %q", expr, got, "node.role == manager")
		}
	}
}

func TestParsePreference(t *testing.T) {
	valid := []struct {
		spread string
		want   string
	}{
		{"node.labels.zone", "node.labels.zone"},
		{" engine.labels.rack ", "engine.labels.rack"},
		{"Node.Labels.Zone", "node.labels.Zone"},
		{"node.labels.topology.kubernetes.io/zone", "node.labels.topology.kubernetes.io/zone"},
	}
	for _, tt := range valid {
		got, err := ParsePreference(tt.spread)
		if err != nil || got != tt.want {
			t.Errorf("ParsePreference(%q) = %q, %v; want %q", tt.spread, got, err, tt.want)
		}
	}

	invalid := []struct {
		spread     string
		reason     string
		suggestion string
	}{
		{"", "empty spread preference", ""},
		{"node.hostname", "only label keys (node.labels.<name> or engine.labels.<name>) can be spread over, not node.hostname", ""},
		{"Node.Role", "only label keys", ""},
		{"node.platform.os", "only label keys", ""},
		{"node.hostnme", "only node.labels.<name> and engine.labels.<name> can be spread over", ""},
		{"node.label.zone", `unknown key "node.label.zone"`, "node.labels.zone"},
		{"engine.label.rack", `unknown key "engine.label.rack"`, "engine.labels.rack"},
		{"labels.zone", `unknown key "labels.zone"`, "node.labels.zone"},
		{"node.labels", "missing label name", "node.labels.<name>"},
		{"spread=node.labels.zone", "without the spread= prefix", "node.labels.zone"},
		{"node.labels.zone == a", "must not contain whitespace", ""},
		{"node.labels.zone!", `label name "zone!" may only contain`, ""},
	}
	for _, tt := range invalid {
		got, err := ParsePreference(tt.spread)
		var ce *ConstraintError
		if !errors.As(err, &ce) {
			t.Errorf("ParsePreference(%q) = %q, %v; want a *ConstraintError", tt.spread, got, err)
			continue
		}
		if ce.Expr != tt.spread {
			t.Errorf("ParsePreference(%q): Expr = %q", tt.spread, ce.Expr)
		}
		if !strings.Contains(ce.Reason, tt.reason) {
			t.Errorf("ParsePreference(%q): Reason = %q, want it to contain %q", tt.spread, ce.Reason, tt.reason)
		}
		if ce.Suggestion != tt.suggestion {
			t.Errorf("ParsePreference(%q): Suggestion = %q, want %q", tt.spread, ce.Suggestion, tt.suggestion)
		}
		if s := ce.Suggestion; s != "" && !strings.Contains(s, constraintLabelPlaceholder) {
			if _, err := ParsePreference(s); err != nil {
				t.Errorf("ParsePreference(%q): suggestion %q does not parse: %v", tt.spread, s, err)
			}
		}
	}
}

func TestConstraintDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"node.label", "node.labels", 1},
		{"node.hostnme", "node.hostname", 1},
		{"kitten", "sitting", 3},
		{"master", "manager", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := editDistance(tt.b, tt.a); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
		}
	}
}

// Stack files come from Git pushes, so a hostile expression must not cost more than
// reading it; the suggestion search is bounded by the lengths of the valid keys.
func TestParseConstraintHugeInput(t *testing.T) {
	for _, expr := range []string{
		strings.Repeat("node.label.", 10000) + " == x",
		"node.role == " + strings.Repeat("m", 1<<17),
		"node.labels.os == " + strings.Repeat(`"`, 1<<17),
		strings.Repeat(". ", 50000) + "== x",
	} {
		if _, err := ParseConstraint(expr); err == nil {
			t.Errorf("ParseConstraint(%.40q...) succeeded", expr)
		}
		if _, err := ParsePreference(expr); err == nil {
			t.Errorf("ParsePreference(%.40q...) succeeded", expr)
		}
	}
}
