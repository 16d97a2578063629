package spec

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
)

// ConstraintOp is == or !=.
type ConstraintOp string

const (
	OpEqual    ConstraintOp = "=="
	OpNotEqual ConstraintOp = "!="
)

// Constraint is one parsed placement constraint, e.g. node.labels.os == linux.
type Constraint struct {
	Key   string // canonical key, e.g. "node.labels.os", "node.role", "engine.labels.gpu"
	Op    ConstraintOp
	Value string
}

// String returns the canonical text "<key> <op> <value>" (single spaces) used in the
// canonical stack form. ParseConstraint(c.String()) gives c back for every parsed c.
func (c Constraint) String() string {
	return c.Key + " " + string(c.Op) + " " + c.Value
}

// ConstraintError explains why an expression was refused.
type ConstraintError struct {
	Expr       string // the expression exactly as written
	Reason     string // what is wrong, without the expression
	Suggestion string // a full corrected expression, or "" when there is none
	// subject names what Expr is in Error(); "" means a constraint. It is unexported so
	// that callers can still build a ConstraintError with a composite literal.
	subject string
}

func (e *ConstraintError) Error() string {
	subject := e.subject
	if subject == "" {
		subject = "constraint"
	}
	msg := fmt.Sprintf("%s %q: %s", subject, e.Expr, e.Reason)
	if e.Suggestion != "" {
		msg += fmt.Sprintf("; did you mean %q?", e.Suggestion)
	}
	return msg
}

// The keys Swarm understands. The order breaks ties between equally near suggestions.
var constraintFixedKeys = []string{
	"node.id",
	"node.hostname",
	"node.role",
	"node.platform.os",
	"node.platform.arch",
	"node.ip",
}

// Label keys are a prefix plus a label name chosen by the operator.
var constraintLabelPrefixes = []string{"node.labels", "engine.labels"}

// constraintKeyAliases catches names that are plausible but too far from the real key
// for edit distance to find it (node.os would otherwise come out as node.id).
var constraintKeyAliases = map[string]string{
	"node.os":       "node.platform.os",
	"node.arch":     "node.platform.arch",
	"node.name":     "node.hostname",
	"node.host":     "node.hostname",
	"node.address":  "node.ip",
	"node.addr":     "node.ip",
	"node.platform": "node.platform.os",
}

// constraintLabelPlaceholder stands for the label name the user left out; suggestions
// holding it are templates, not expressions that parse.
const constraintLabelPlaceholder = "<name>"

const constraintValidKeys = "node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.ip, node.labels.<name> and engine.labels.<name>"

// Operator characters end the key even without spaces ("node.role==manager" is valid in
// Swarm), and a run of them is read as one operator so that ">=" is named as written.
const constraintOpChars = "=!<>~"

// constraintOpFixes maps operators whose intent is clear to the supported one.
var constraintOpFixes = map[string]ConstraintOp{
	"=":   OpEqual,
	"===": OpEqual,
	"eq":  OpEqual,
	"!==": OpNotEqual,
	"=!":  OpNotEqual,
	"<>":  OpNotEqual,
	"ne":  OpNotEqual,
}

// ParseConstraint parses one constraint expression as written under
// deploy.placement.constraints. Unlike Swarm, which accepts unknown keys and then never
// places the task, it refuses anything it cannot evaluate and says what was meant.
func ParseConstraint(expr string) (Constraint, error) {
	s := strings.TrimSpace(expr)
	if s == "" {
		return Constraint{}, &ConstraintError{Expr: expr, Reason: "empty constraint: expected <key> == <value> or <key> != <value>"}
	}
	rawKey, rawOp, rawValue := splitConstraint(s)

	// Every part is checked so that the suggestion can fix all of them at once, while the
	// reason names only the first problem in reading order.
	key, keyReason, keyFix := resolveConstraintKey(rawKey, false)
	op, opReason, opFix := checkConstraintOp(rawOp)
	valueKey := key
	if valueKey == "" && !strings.Contains(keyFix, constraintLabelPlaceholder) {
		valueKey = keyFix
	}
	value, valueReason, valueFix := checkConstraintValue(valueKey, rawValue)

	reason := keyReason
	if reason == "" {
		reason = opReason
	}
	if reason == "" {
		reason = valueReason
	}
	if reason != "" {
		var suggestion string
		if keyFix != "" && opFix != "" && valueFix != "" {
			suggestion = keyFix + " " + string(opFix) + " " + valueFix
		}
		return Constraint{}, &ConstraintError{Expr: expr, Reason: reason, Suggestion: suggestion}
	}
	return Constraint{Key: key, Op: op, Value: value}, nil
}

// ParsePreference checks one spread preference value (the text after `spread:`), and
// returns its canonical key. Swarm only spreads over labels; any other key would
// silently put every node in the same bucket, so it is refused.
func ParsePreference(spread string) (string, error) {
	fail := func(reason, suggestion string) (string, error) {
		return "", &ConstraintError{Expr: spread, Reason: reason, Suggestion: suggestion, subject: "spread preference"}
	}
	s := strings.TrimSpace(spread)
	if s == "" {
		return fail("empty spread preference: expected node.labels.<name> or engine.labels.<name>", "")
	}
	// The docker CLI writes --placement-pref spread=node.labels.zone; people paste it.
	if lower := constraintLower(s); strings.HasPrefix(lower, "spread=") || strings.HasPrefix(lower, "spread:") {
		_, _, fix := resolveConstraintKey(strings.TrimSpace(s[len("spread="):]), true)
		return fail("write only the label key, without the spread= prefix", fix)
	}
	key, reason, fix := resolveConstraintKey(s, true)
	if reason != "" {
		return fail(reason, fix)
	}
	return key, nil
}

// splitConstraint cuts an expression into key, operator and value as written, so that
// each can be judged (and fixed) on its own.
func splitConstraint(s string) (key, op, value string) {
	if i := strings.IndexAny(s, constraintOpChars); i >= 0 {
		j := i
		for j < len(s) && strings.IndexByte(constraintOpChars, s[j]) >= 0 {
			j++
		}
		return strings.TrimSpace(s[:i]), s[i:j], strings.TrimSpace(s[j:])
	}
	// Without operator characters, the words between key and value are the operator the
	// user meant ("in", "not in"), which lets the error name it.
	f := strings.Fields(s)
	switch len(f) {
	case 1:
		return f[0], "", ""
	case 2:
		return f[0], "", f[1]
	default:
		return f[0], strings.Join(f[1:len(f)-1], " "), f[len(f)-1]
	}
}

func checkConstraintOp(op string) (canon ConstraintOp, reason string, fix ConstraintOp) {
	switch ConstraintOp(op) {
	case OpEqual, OpNotEqual:
		return ConstraintOp(op), "", ConstraintOp(op)
	}
	if op == "" {
		return "", "missing operator: expected <key> == <value> or <key> != <value>", OpEqual
	}
	return "", fmt.Sprintf("operator %q is not supported (use == or !=)", op), constraintOpFixes[constraintLower(op)]
}

// resolveConstraintKey returns the canonical key, or why the key is refused and the
// nearest key the user probably meant (possibly a template holding
// constraintLabelPlaceholder), or "" when nothing is near. On success fix == canon.
func resolveConstraintKey(key string, labelsOnly bool) (canon, reason, fix string) {
	if key == "" {
		return "", "missing key: expected <key> == <value> or <key> != <value>", ""
	}
	if strings.ContainsFunc(key, unicode.IsSpace) {
		reason = fmt.Sprintf("key %q must not contain whitespace", key)
		// Only a space beside a dot ("node. role") is a plain slip; "node.labels.a b"
		// could mean several things, so no guess is made for it.
		words := strings.Fields(key)
		for i := 1; i < len(words); i++ {
			if !strings.HasSuffix(words[i-1], ".") && !strings.HasPrefix(words[i], ".") {
				return "", reason, ""
			}
		}
		c, _, f := resolveConstraintKey(strings.Join(words, ""), labelsOnly)
		if c != "" {
			f = c
		}
		return "", reason, f
	}
	lower := constraintLower(key)
	for _, p := range constraintLabelPrefixes {
		if !strings.HasPrefix(lower, p+".") {
			continue
		}
		// Swarm folds the case of the fixed part only; label names are matched exactly.
		name := key[len(p)+1:]
		if name == "" {
			return "", fmt.Sprintf("missing label name after %q", p), p + "." + constraintLabelPlaceholder
		}
		if !validConstraintLabel(name) {
			return "", fmt.Sprintf("label name %q may only contain letters, digits, '.', '-', '_' and '/'", name), ""
		}
		return p + "." + name, "", p + "." + name
	}
	for _, f := range constraintFixedKeys {
		if lower != f {
			continue
		}
		if labelsOnly {
			return "", fmt.Sprintf("only label keys (node.labels.<name> or engine.labels.<name>) can be spread over, not %s", f), ""
		}
		return f, "", f
	}
	for _, p := range constraintLabelPrefixes {
		if lower == p {
			return "", fmt.Sprintf("missing label name after %q", p), p + "." + constraintLabelPlaceholder
		}
	}
	reason = fmt.Sprintf("unknown key %q", key)
	fix = nearestConstraintKey(key, labelsOnly)
	if fix == "" {
		if labelsOnly {
			reason += "; only node.labels.<name> and engine.labels.<name> can be spread over"
		} else {
			reason += "; valid keys are " + constraintValidKeys
		}
	}
	return "", reason, fix
}

// nearestConstraintKey finds the valid key closest to an unknown one by edit distance,
// or "" when none is close enough to be a likely typo.
func nearestConstraintKey(key string, labelsOnly bool) string {
	best, bestDist := "", -1
	consider := func(candidate string, dist, targetLen int) {
		// A third of the target's length keeps short keys (node.id) from attracting
		// every unknown word.
		if dist > 3 || 3*dist > targetLen {
			return
		}
		if bestDist < 0 || dist < bestDist {
			best, bestDist = candidate, dist
		}
	}
	scan := func(key string, extra int) {
		lower := constraintLower(key)
		if alias, ok := constraintKeyAliases[lower]; ok && !labelsOnly {
			consider(alias, extra, len(alias))
		}
		if !labelsOnly {
			for _, f := range constraintFixedKeys {
				// The distance is at least the length difference; skipping early keeps
				// huge inputs cheap.
				if constraintAbs(len(lower)-len(f)) <= 3 {
					consider(f, editDistance(lower, f)+extra, len(f))
				}
			}
		}
		for _, p := range constraintLabelPrefixes {
			if constraintAbs(len(lower)-len(p)) <= 3 {
				consider(p+"."+constraintLabelPlaceholder, editDistance(lower, p)+extra, len(p))
			}
			// Try each dot near the prefix's length as the end of a misspelt prefix.
			for i := max(1, len(p)-3); i <= len(p)+3 && i < len(lower)-1; i++ {
				if lower[i] != '.' || !validConstraintLabel(key[i+1:]) {
					continue
				}
				consider(p+"."+key[i+1:], editDistance(lower[:i], p)+extra, len(p))
			}
		}
	}
	scan(key, 0)
	// "labels.os" and "hostname" lack only the node. prefix; count that as one edit.
	scan("node."+key, 1)
	return best
}

// checkConstraintValue validates a value for the given canonical key ("" when the key is
// unknown) and returns its canonical form, or why it is refused and a corrected value
// ("" when there is none). On success fix == canon.
func checkConstraintValue(key, value string) (canon, reason, fix string) {
	if value == "" {
		return "", "missing value: expected <key> == <value> or <key> != <value>", ""
	}
	if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
		// One layer only: YAML quoting leaks in once; more is not worth guessing at.
		_, _, fix := checkUnquotedConstraintValue(key, value[1:len(value)-1])
		return "", "the value must not be quoted", fix
	}
	return checkUnquotedConstraintValue(key, value)
}

func checkUnquotedConstraintValue(key, value string) (canon, reason, fix string) {
	if value == "" {
		return "", "missing value: expected <key> == <value> or <key> != <value>", ""
	}
	if strings.ContainsFunc(value, unicode.IsSpace) {
		return "", fmt.Sprintf("value %q must be a single word", value), ""
	}
	for _, r := range value {
		if !validConstraintValueRune(r) {
			return "", fmt.Sprintf("value %q contains %q, which a constraint value may not contain", value, r), ""
		}
	}
	switch key {
	case "node.role":
		lower := constraintLower(value)
		if lower == "manager" || lower == "worker" {
			return lower, "", lower
		}
		reason = fmt.Sprintf("node.role must be manager or worker, not %q", value)
		best, bestDist := "", 4
		for _, role := range []string{"manager", "worker"} {
			if d := editDistance(lower, role); d < bestDist {
				best, bestDist = role, d
			}
		}
		return "", reason, best
	case "node.ip":
		// Canonical text so that FE80::1 and fe80::1 hash the same.
		if strings.Contains(value, "/") {
			if p, err := netip.ParsePrefix(value); err == nil {
				return p.String(), "", p.String()
			}
		} else if a, err := netip.ParseAddr(value); err == nil {
			return a.String(), "", a.String()
		}
		return "", fmt.Sprintf("node.ip must be an IP address or a CIDR, not %q", value), ""
	}
	return value, "", value
}

// validConstraintValueRune accepts what Swarm's value pattern accepts, minus whitespace;
// anything else (operators, commas, quotes) is a typo rather than a label value.
func validConstraintValueRune(r rune) bool {
	return r < 0x80 && (isConstraintAlnum(byte(r)) || strings.IndexByte(`:-_.*()?+[]\^$|/`, byte(r)) >= 0)
}

// validConstraintLabel accepts the characters Docker allows in label keys.
func validConstraintLabel(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isConstraintAlnum(c) && c != '.' && c != '-' && c != '_' && c != '/' {
			return false
		}
	}
	return true
}

func isConstraintAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// constraintLower folds ASCII only: strings.ToLower can change byte lengths on other
// text, and byte offsets into the folded key are used to cut the original one.
func constraintLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func constraintAbs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
