package spec

import (
	"bytes"
	"strconv"
	"strings"
)

// fileJoiner separates the files of a problem that several merged files may have caused.
const fileJoiner = " + "

// locateFiles names the file of every problem that does not name one yet: the file that
// set the field, read from the files as written (raws[i] is names[i] decoded, nil when it
// could not be). Later files win, as in the merge. When no file sets the field, the
// problem belongs to the files that come closest (those defining the service, say), and
// to all of them when nothing is known.
func locateFiles(list []Problem, names []string, raws []map[string]any) {
	for i := range list {
		if list[i].File == "" {
			list[i].File = locateFile(list[i], names, raws)
		}
	}
}

func locateFile(p Problem, names []string, raws []map[string]any) string {
	if len(names) == 1 {
		return names[0]
	}
	var path []string
	if p.Service != "" {
		path = []string{"services", p.Service}
	}
	path = append(path, fieldParts(p.Field)...)
	if len(path) == 0 {
		return strings.Join(names, fileJoiner)
	}
	setter, closest, depth := "", []string(nil), 0
	for i, raw := range raws {
		switch d := matchDepth(raw, path); {
		case d == len(path):
			setter = names[i]
		case d > depth:
			closest, depth = []string{names[i]}, d
		case d == depth && d > 0:
			closest = append(closest, names[i])
		}
	}
	switch {
	case setter != "":
		return setter
	case depth == 0:
		return strings.Join(names, fileJoiner)
	}
	return strings.Join(closest, fileJoiner)
}

// fieldParts splits a problem's field ("deploy.placement.constraints[0]") into keys and
// list indexes ("[0]").
func fieldParts(field string) []string {
	var parts []string
	for _, key := range strings.Split(field, ".") {
		for key != "" {
			i := strings.IndexByte(key[1:], '[') + 1
			if i == 0 {
				parts = append(parts, key)
				break
			}
			parts = append(parts, key[:i])
			key = key[i:]
		}
	}
	return parts
}

// matchDepth returns how many parts of path lead somewhere in v. Keys may hold dots
// (labels such as com.example.x), so a map is tried with the longest key first; a list
// of KEY=value strings (environment, labels) matches a part by its key.
func matchDepth(v any, path []string) int {
	if len(path) == 0 {
		return 0
	}
	switch t := v.(type) {
	case map[string]any:
		for n := len(path); n > 0; n-- {
			if child, ok := t[strings.Join(path[:n], ".")]; ok {
				return n + matchDepth(child, path[n:])
			}
		}
	case []any:
		if i, err := strconv.Atoi(strings.Trim(path[0], "[]")); err == nil && strings.HasPrefix(path[0], "[") {
			if i >= 0 && i < len(t) {
				return 1 + matchDepth(t[i], path[1:])
			}
			return 0
		}
		for _, item := range t {
			if s, ok := item.(string); ok && (s == path[0] || strings.HasPrefix(s, path[0]+"=")) {
				return 1
			}
		}
	}
	return 0
}

// filesMentioning names the files that refer to variable name, for the warning about an
// unset variable; "" when none does as written (the locator then names the files).
func filesMentioning(files []File, name string) string {
	var found []string
	for _, f := range files {
		if bytes.Contains(f.Content, []byte("${"+name)) || bytes.Contains(f.Content, []byte("$"+name)) {
			found = append(found, f.Name)
		}
	}
	return strings.Join(found, fileJoiner)
}
