// Package filter is the --filter flag of berth's ls and ps commands, as Docker's:
// `--filter key=value`, repeatable; a row passes when, for every key given, it
// matches one of that key's values. berth filters in the client: the managers send
// the whole listing, as they do without a filter.
package filter

import (
	"fmt"
	"slices"
	"strings"
)

// Args are the parsed --filter flags: each key's values, in the order given.
type Args map[string][]string

// Parse reads the --filter flags of a command whose keys are valid; an unknown key
// or a flag without "=" is an error that says what to type instead.
func Parse(flags []string, valid ...string) (Args, error) {
	args := Args{}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			return nil, fmt.Errorf("bad format of filter %q: expected key=value, one of the keys %s", f, strings.Join(valid, ", "))
		}
		if !slices.Contains(valid, k) {
			return nil, fmt.Errorf("invalid filter '%s': use %s", k, strings.Join(valid, ", "))
		}
		args[k] = append(args[k], v)
	}
	return args, nil
}

// Match reports whether a row passes key: the key was not given, or ok holds for
// one of its values.
func (a Args) Match(key string, ok func(value string) bool) bool {
	values, given := a[key]
	return !given || slices.ContainsFunc(values, ok)
}

// CheckValues says which value of key is none of allowed: Docker refuses a
// desired-state or a mode it does not know rather than list nothing.
func (a Args) CheckValues(key string, allowed ...string) error {
	for _, v := range a[key] {
		if !slices.Contains(allowed, strings.ToLower(v)) {
			return fmt.Errorf("invalid filter '%s=%s': use %s", key, v, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// Labels reports whether labels has key (a value "key") or key with the value
// (a value "key=value"), Docker's label filter.
func Labels(labels map[string]string) func(value string) bool {
	return func(value string) bool {
		k, v, withValue := strings.Cut(value, "=")
		got, ok := labels[k]
		return ok && (!withValue || got == v)
	}
}

// Prefix reports whether s starts with the value: Docker's id and name filters.
func Prefix(s string) func(value string) bool {
	return func(value string) bool { return strings.HasPrefix(s, value) }
}

// Equal reports whether s is the value, case aside.
func Equal(s string) func(value string) bool {
	return func(value string) bool { return strings.EqualFold(s, value) }
}

// Keep is the items that pass.
func Keep[T any](items []T, pass func(T) bool) []T {
	var out []T
	for _, it := range items {
		if pass(it) {
			out = append(out, it)
		}
	}
	return out
}
