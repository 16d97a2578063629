package spec

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/distribution/reference"
)

// nameRule is what one kind of name may look like: bytes that inner allows, the first
// one also allowed by first and the last by last. The rules are Swarm's regular
// expressions written out, which a name check runs on every service of every load.
type nameRule struct {
	first, inner, last func(byte) bool
	max                int
	// chars says what the rule allows, for the fix.
	chars string
}

var (
	// stackNames are Compose's project names, which prefix every object of a stack
	// (`^[a-z0-9][a-z0-9_-]*$`).
	stackNames = nameRule{lowerAlnum, func(c byte) bool { return lowerAlnum(c) || c == '-' || c == '_' }, anyByte, MaxNameLength,
		"lower-case letters, digits, '-' and '_', starting with a letter or digit"}
	// dnsNames are Swarm's rule for services and networks: their names are DNS labels
	// (`^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`).
	dnsNames = nameRule{alnum, func(c byte) bool { return alnum(c) || c == '-' || c == '_' }, alnum, MaxNameLength,
		"letters, digits, '-' and '_', starting and ending with a letter or digit"}
	// objectNames are Swarm's rule for secrets and configs, which berth also applies
	// to volumes: their names become file and directory names on the nodes
	// (`^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`).
	objectNames = nameRule{alnum, func(c byte) bool { return alnum(c) || c == '-' || c == '_' || c == '.' }, alnum, MaxObjectNameLength,
		"letters, digits, '-', '_' and '.', starting and ending with a letter or digit"}
)

func lowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }
func alnum(c byte) bool      { return lowerAlnum(c) || 'A' <= c && c <= 'Z' }
func anyByte(byte) bool      { return true }

// matches reports whether name follows the rule. Every byte it allows is ASCII, so
// the length of a name it matches is its length in characters.
func (r nameRule) matches(name string) bool {
	if name == "" || !r.first(name[0]) || !r.last(name[len(name)-1]) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !r.inner(name[i]) {
			return false
		}
	}
	return true
}

// check says what is wrong with name, a name of what, or nil.
func (r nameRule) check(what, name string) error {
	if len(name) <= r.max && r.matches(name) {
		return nil
	}
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		return fmt.Errorf("invalid %s name: it is empty; use %s", what, r.chars)
	case n > r.max:
		return fmt.Errorf("invalid %s name %s: it is %d characters long; the limit is %d", what, abbrev(name), n, r.max)
	}
	return fmt.Errorf("invalid %s name %s: use %s", what, abbrev(name), r.chars)
}

// CheckStackName says what is wrong with the name of a stack, or of what is named
// like one (a source): what says which.
func CheckStackName(what, name string) error { return stackNames.check(what, name) }

// CheckObjectName says what is wrong with the name of a secret or config (what).
func CheckObjectName(what, name string) error { return objectNames.check(what, name) }

// abbrevRunes is how much of a value an error quotes.
const abbrevRunes = 40

// abbrev quotes s for an error message: escaped (control and bidirectional
// characters show as \u escapes) and cut short, so that a huge value does not make a
// huge message.
func abbrev(s string) string {
	if utf8.RuneCountInString(s) <= abbrevRunes {
		return strconv.Quote(s)
	}
	i := 0
	for n := 0; n < abbrevRunes; n++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return strconv.Quote(s[:i]) + "…"
}

// CheckText says what is wrong with a free-text field (a URL, a branch, a label key)
// that ends up in names, paths or terminals: longer than max bytes, not UTF-8, or
// holding a control or bidirectional-formatting character, which would make it print
// as something else.
func CheckText(field, s string, max int) error {
	switch {
	case len(s) > max:
		return fmt.Errorf("%s is %d bytes long; the limit is %d", field, len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s %s is not valid UTF-8", field, abbrev(s))
	case strings.ContainsFunc(s, unsafeRune):
		return fmt.Errorf("%s %s holds a control or bidirectional-formatting character", field, abbrev(s))
	}
	return nil
}

func unsafeRune(r rune) bool {
	if r < utf8.RuneSelf { // ASCII, most of what a label holds: its controls are C0 and DEL
		return r < 0x20 || r == 0x7f
	}
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}

// ValidateLabels checks one object's labels (field names them in errors) against the
// label limits, for labels that do not come in a stack (a node's).
func ValidateLabels(field string, labels map[string]string) error {
	ps := &problems{}
	checkLabels(ps, "", field, labels)
	return ps.err()
}

// labelFix says what labels may be.
var labelFix = fmt.Sprintf("labels take at most %d keys of up to %d bytes (no control characters) with values of up to %d bytes",
	MaxLabels, MaxLabelKeyBytes, MaxLabelValueBytes)

// checkLabels reports labels over the limits, and keys that are empty or hold control
// or bidirectional-formatting characters.
func checkLabels(ps *problems, svc, field string, labels map[string]string) {
	if len(labels) > MaxLabels {
		ps.errorf(svc, field, labelFix, "%d labels; the limit is %d", len(labels), MaxLabels)
		return
	}
	if !hasLabelProblem(labels) {
		return
	}
	// Sorted, for the order of the problems.
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if msg := labelProblem(k, labels[k]); msg != "" {
			ps.errorf(svc, field+"["+abbrev(k)+"]", labelFix, "%s", msg)
		}
	}
}

func hasLabelProblem(labels map[string]string) bool {
	for k, v := range labels {
		if labelProblem(k, v) != "" {
			return true
		}
	}
	return false
}

// labelProblem says what is wrong with one label, or "".
func labelProblem(k, v string) string {
	switch {
	case k == "":
		return "a label has an empty key"
	case len(v) > MaxLabelValueBytes:
		return fmt.Sprintf("the value is %d bytes long; the limit is %d", len(v), MaxLabelValueBytes)
	}
	if err := CheckText("the key", k, MaxLabelKeyBytes); err != nil {
		return err.Error()
	}
	return ""
}

// checkName reports name (a name of what, at field) unless it follows rule.
func checkName(ps *problems, svc, field, what, name string, rule nameRule) bool {
	if err := rule.check(what, name); err != nil {
		ps.errorf(svc, field, "", "%v", err)
		return false
	}
	return true
}

// checkImage reports an image that is not a reference a registry could serve, and
// says whether it is one.
func checkImage(ps *problems, svc, image string) bool {
	if image == "" {
		ps.errorf(svc, "image", "set `image` to an image in a registry (berth does not build images)", "image is required")
		return false
	}
	if plainReference(image) {
		return true
	}
	if _, err := reference.ParseNormalizedNamed(image); err != nil {
		ps.errorf(svc, "image", "write [registry/]name[:tag][@digest], e.g. nginx:1.27", "image %s is not a valid reference: %v", abbrev(image), err)
		return false
	}
	return true
}

// plainReference accepts, cheaply, what ParseNormalizedNamed accepts with a dozen
// allocations: a reference the grammar matches, without a digest (whose algorithm
// and length need the parse), not of an image ID's length (64, which the parse
// refuses), and short enough to stay under the name limit once Docker Hub's
// "docker.io/library/" is added. Anything else gets the full parse.
func plainReference(s string) bool {
	return len(s) <= 200 && len(s) != 64 && !strings.Contains(s, "@") && reference.ReferenceRegexp.MatchString(s)
}

// checkContainerPath reports a path inside the container that is not absolute and
// clean: a relative or `..` path is resolved by whatever mounts it, which may be
// somewhere else than the file writer meant. The path is field, or entry i of the list
// field followed by sub; the field's name is only made for a problem.
func checkContainerPath(ps *problems, svc, field string, i int, sub, p string) {
	if path.IsAbs(p) && path.Clean(p) == p && len(p) <= MaxPathLength {
		return
	}
	if i >= 0 {
		field = entryField(field, i, sub)
	}
	fix := "write an absolute path without '.' or '..' elements and without repeated or trailing slashes"
	if clean := path.Clean(p); path.IsAbs(p) && !slices.Contains(strings.Split(p, "/"), "..") {
		fix += fmt.Sprintf(": %s", abbrev(clean))
	}
	ps.errorf(svc, field, fix, "%s is not a clean absolute path in the container", abbrev(p))
}

// CheckStackSize refuses a stack (named name) whose spec encodes to more than
// MaxStackBytes of JSON, secret and config content aside. The managers check it where
// they encode a stack anyway (to hash it for a deploy, a plan or a sync), rather than
// in Validate: encoding a large stack costs more than all the other checks together.
func CheckStackSize(name string, encoded int) error {
	if encoded <= MaxStackBytes {
		return nil
	}
	return &ValidationError{Problems: []Problem{{Stack: name, Fix: "split it into several stacks, or move large content into configs",
		Message: fmt.Sprintf("the stack encodes to %d bytes, secret and config content aside; the limit is %d", encoded, MaxStackBytes)}}}
}
