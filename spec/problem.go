package spec

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong (or, as a Warning, questionable) in a stack, located by
// file, stack, service (empty for top-level sections) and field path, with what would be
// right.
type Problem struct {
	// File is the Compose file as the user named it (for a stack read from Git, the path
	// inside the repository). When several files merge, it is the one that set the field;
	// when that cannot be known, the files joined by " + ".
	File    string `json:"file,omitempty"`
	Stack   string `json:"stack,omitempty"`
	Service string `json:"service,omitempty"`
	// Field is the dotted path of the offending key, e.g. "deploy.placement.constraints[0]".
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	// Fix says what to write instead, when there is one obvious answer.
	Fix string `json:"fix,omitempty"`
}

// String reads "<file>: stack <s>, service <v>, <field>: <message>; <fix>", leaving out
// what is not known.
func (p Problem) String() string {
	var loc []string
	if p.Stack != "" {
		loc = append(loc, "stack "+p.Stack)
	}
	if p.Service != "" {
		loc = append(loc, "service "+p.Service)
	}
	if p.Field != "" {
		loc = append(loc, p.Field)
	}
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteString(": ")
	}
	if len(loc) > 0 {
		b.WriteString(strings.Join(loc, ", "))
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	if p.Fix != "" {
		b.WriteString("; ")
		b.WriteString(p.Fix)
	}
	return b.String()
}

// Warning is a Problem that does not stop a deploy: something berth ignores or does
// differently from Compose, said out loud instead of dropped silently.
type Warning = Problem

// ValidationError carries every problem found in a stack, so that one run shows them all.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.String())
	}
	return b.String()
}

// problems accumulates findings while loading one stack.
type problems struct {
	stack string
	// file, when set, is the file every finding comes from.
	file     string
	errors   []Problem
	warnings []Warning
}

func (ps *problems) errorf(service, field, fix, format string, args ...any) {
	ps.errors = append(ps.errors, Problem{File: ps.file, Stack: ps.stack, Service: service, Field: field, Message: fmt.Sprintf(format, args...), Fix: fix})
}

func (ps *problems) warnf(service, field, fix, format string, args ...any) {
	ps.warnings = append(ps.warnings, Warning{File: ps.file, Stack: ps.stack, Service: service, Field: field, Message: fmt.Sprintf(format, args...), Fix: fix})
}

// err returns the collected errors as one *ValidationError, or nil.
func (ps *problems) err() error {
	if len(ps.errors) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps.errors}
}

// add appends what other collects.
func (ps *problems) add(other *problems) {
	ps.errors = append(ps.errors, other.errors...)
	ps.warnings = append(ps.warnings, other.warnings...)
}

// dedupe drops repeats, keeping first occurrences in order: every loader unit sees the
// top-level sections, so their findings arrive once per service.
func (ps *problems) dedupe() {
	ps.errors = dedupeProblems(ps.errors)
	ps.warnings = dedupeProblems(ps.warnings)
}

func dedupeProblems(list []Problem) []Problem {
	seen := make(map[Problem]bool, len(list))
	out := list[:0]
	for _, p := range list {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}
