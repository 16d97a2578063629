package spec

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// loaderFault is one error of the Compose loader in berth's terms, with the path of the
// value at fault in the model (nil when there is none to drop) so that the unit can be
// loaded again without it and its other problems found in the same run.
type loaderFault struct {
	problem Problem
	path    []string
}

// fieldKey is where a problem is, within a stack.
type fieldKey struct{ service, field string }

// The loader's errors that berth can place, in the loader's words.
var (
	yamlErrorRE   = regexp.MustCompile(`^failed to parse (.+?): (?:yaml: )?(.*)$`)
	castErrorRE   = regexp.MustCompile(`^error while interpolating (\S+): failed to cast to expected type: (.*)$`)
	schemaErrorRE = regexp.MustCompile(`^validating (.+?): (\S+) (.*)$`)
	volumeErrorRE = regexp.MustCompile(`^invalid spec: (.*): (.*)$`)
	portErrorRE   = regexp.MustCompile(`^(?i:invalid) ([a-zA-Z ]+): (.*)$`)
	missingRE     = regexp.MustCompile(`^service (?:volume|device|ports) (\S+) is missing a (mount target|target port)$`)
	decodeErrorRE = regexp.MustCompile(`^'([^']+)' (.*)$`)
	namedIndexRE  = regexp.MustCompile(`\.\[([^0-9\]][^\]]*)\]`) // .[api] in services.[api].x
	pathErrorRE   = regexp.MustCompile(`^((?:services|networks|volumes|secrets|configs)\.\S+?):? (.*)$`)
	strconvRE     = regexp.MustCompile(`^strconv\.(\w+): parsing "(.*)": (.*)$`)
)

// loaderFaults translates what the loader returned for a unit of files, one fault per
// line of its error.
func loaderFaults(err error, stack string, files []types.ConfigFile) []loaderFault {
	msg := strings.TrimPrefix(err.Error(), "decoding failed due to the following error(s):\n\n")
	var faults []loaderFault
	for _, line := range strings.Split(msg, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			f := loaderFaultOf(line, files)
			f.problem.Stack = stack
			faults = append(faults, f)
		}
	}
	return faults
}

func loaderFaultOf(line string, files []types.ConfigFile) loaderFault {
	if m := yamlErrorRE.FindStringSubmatch(line); m != nil {
		return loaderFault{problem: Problem{File: m[1], Message: "the file is not valid YAML: " + m[2],
			Fix: "check the indentation (spaces, not tabs) and the quoting around that line"}}
	}
	if m := castErrorRE.FindStringSubmatch(line); m != nil {
		value, msg, fix := castProblem(m[2])
		return faultAt(files, modelPath(m[1]), value, "", msg, fix)
	}
	if m := schemaErrorRE.FindStringSubmatch(line); m != nil {
		return pathFault(files, m[1], m[2], m[3])
	}
	if m := volumeErrorRE.FindStringSubmatch(line); m != nil {
		return faultAt(files, findEntry(files, "volumes", m[1]), "", "",
			fmt.Sprintf("%q is not a valid volume: %s", m[1], m[2]), "write SOURCE:TARGET[:ro], such as data:/data or ./data:/data")
	}
	if m := portErrorRE.FindStringSubmatch(line); m != nil {
		if path := findEntry(files, "ports", m[2]); path != nil {
			value, _ := valueAt(files, path)
			return faultAt(files, path, "", "", fmt.Sprintf("%s is not a valid port mapping: the %s %q is not valid", describeValue(value), portPart(m[1]), m[2]),
				"write [PUBLISHED:]TARGET[/PROTOCOL] with ports between 1 and 65535, such as 8080:80")
		}
	}
	if m := missingRE.FindStringSubmatch(line); m != nil {
		return faultAt(files, modelPath(m[1]), "", "", "the entry has no "+m[2], "add `target:` ("+targetHint[m[2]]+")")
	}
	if m := decodeErrorRE.FindStringSubmatch(line); m != nil {
		// The decoder's path reads services[api].secrets[0].mode.
		dotted := strings.NewReplacer("[", ".[", "]", "]").Replace(m[1])
		dotted = namedIndexRE.ReplaceAllString(dotted, ".$1")
		if strings.HasPrefix(m[2], "strconv.") {
			value, msg, fix := castProblem(m[2])
			return faultAt(files, modelPath(dotted), value, "", msg, fix)
		}
		return pathFault(files, "", dotted, m[2])
	}
	if m := pathErrorRE.FindStringSubmatch(line); m != nil {
		return pathFault(files, "", m[1], m[2])
	}
	return loaderFault{problem: Problem{Message: line}}
}

// pathFault places an error the loader gave with the path of the value: a value of the
// wrong shape is quoted, with how to write it.
func pathFault(files []types.ConfigFile, file, dotted, why string) loaderFault {
	path := modelPath(dotted)
	why = strings.Replace(why, "must be a array", "must be a list", 1)
	if why == "must be a null" { // the schema's last choice for string-or-list keys
		why = "must be a string or a list"
	}
	switch {
	case strings.HasPrefix(why, "unexpected type"), strings.HasPrefix(why, "invalid type"):
		why = "it must be a string"
	case strings.HasPrefix(why, "must be"):
		why = "it " + why
	case strings.HasPrefix(why, "value must be"):
		why = "it" + strings.TrimPrefix(why, "value")
	default:
		return faultAt(files, path, "", file, why, "check `"+fieldKeyOf(path)+"` against the Compose file reference")
	}
	value, _ := valueAt(files, path)
	return faultAt(files, path, "", file, describeValue(value)+" is not valid here: "+why, shapeFix(path, why))
}

// portPart names the part of a port mapping the loader refused as Compose's reference
// does.
func portPart(loaderName string) string {
	switch loaderName {
	case "hostPort":
		return "published port"
	case "containerPort":
		return "target port"
	case "proto":
		return "protocol"
	}
	return loaderName
}

// targetHint says what the target of a list entry is.
var targetHint = map[string]string{"mount target": "the path in the container", "target port": "the port the container listens on"}

// castProblem reads the loader's failed conversion of a value to a number or a boolean.
func castProblem(detail string) (value, msg, fix string) {
	if v, ok := strings.CutPrefix(detail, "invalid boolean: "); ok {
		return v, fmt.Sprintf("%q is not true or false", v), "write true or false"
	}
	m := strconvRE.FindStringSubmatch(detail)
	if m == nil {
		return "", detail, ""
	}
	switch {
	case strings.Contains(m[3], "out of range"):
		return m[2], fmt.Sprintf("%q is out of range", m[2]), "write a smaller number"
	case m[1] == "ParseFloat":
		return m[2], fmt.Sprintf("%q is not a number", m[2]), "write a number, such as 0.5"
	}
	return m[2], fmt.Sprintf("%q is not a whole number", m[2]), "write a whole number, such as 3"
}

// shapeFix says how to write a value whose type the loader refused.
func shapeFix(path []string, msg string) string {
	item := strings.HasPrefix(path[len(path)-1], "[")
	key := fieldKeyOf(path)
	switch {
	case item && (key == "environment" || key == "labels"):
		return "write each entry as KEY=value"
	case strings.Contains(msg, "must be a string or a list"):
		return "write a string, or a list with one `- item` per line"
	case strings.Contains(msg, " or "):
		return "write a single value: a string, a number or true/false"
	case strings.Contains(msg, "must be a mapping") && (key == "environment" || key == "labels"):
		return "write KEY: value lines, or a list of KEY=value"
	case strings.Contains(msg, "must be a mapping"):
		return "write key: value lines under `" + key + "`"
	case strings.Contains(msg, "must be a string"):
		return "write a single value, quoted if it looks like a number or a list"
	case strings.Contains(msg, "must be a list"):
		return "write a list, one `- item` per line"
	case strings.Contains(msg, "must be one of"):
		return "write one of the values listed"
	case strings.Contains(msg, "must be a boolean"):
		return "write true or false"
	case strings.Contains(msg, "must be a number"), strings.Contains(msg, "must be a integer"):
		return "write a number"
	}
	return "check `" + key + "` against the Compose file reference"
}

// fieldKeyOf is the key a path's value is written under: the list's, for a list item.
func fieldKeyOf(path []string) string {
	if i := slices.IndexFunc(path, func(p string) bool { return strings.HasPrefix(p, "[") }); i > 0 {
		return path[i-1]
	}
	return path[len(path)-1]
}

// faultAt places a problem at path in the model. A "[]" in path (a list item the
// loader does not number) is resolved to the item that holds value.
func faultAt(files []types.ConfigFile, path []string, value, file, msg, fix string) loaderFault {
	path = resolveItem(files, path, value)
	p := Problem{File: file, Message: msg, Fix: fix}
	if len(path) >= 2 && path[0] == "services" {
		p.Service = path[1]
		p.Field = fieldOf(path[2:])
	} else {
		p.Field = fieldOf(path)
	}
	if p.Field == "" && p.Service == "" {
		return loaderFault{problem: p}
	}
	// A list item goes whole: an item without the bad part would only raise another error.
	if i := slices.IndexFunc(path, func(p string) bool { return strings.HasPrefix(p, "[") }); i >= 0 {
		path = path[:i+1]
	}
	return loaderFault{problem: p, path: path}
}

// modelPath splits a loader's path ("services.web.ports.[].target", "services.web.ports.0")
// into keys and list indexes, written "[0]" (or "[]" when the loader did not number it).
func modelPath(dotted string) []string {
	parts := strings.Split(dotted, ".")
	for i, p := range parts {
		if _, err := strconv.Atoi(p); err == nil && i > 2 {
			parts[i] = "[" + p + "]"
		}
	}
	return parts
}

func fieldOf(path []string) string {
	var b strings.Builder
	for _, p := range path {
		if b.Len() > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// resolveItem numbers the first "[]" of path: the item of that list whose rest of the
// path holds value. Without a match, path ends at the list.
func resolveItem(files []types.ConfigFile, path []string, value string) []string {
	i := slices.Index(path, "[]")
	if i < 0 {
		return path
	}
	list, _ := valueAt(files, path[:i])
	items, _ := list.([]any)
	for n, item := range items {
		if v, ok := lookupIn(item, path[i+1:]); ok && fmt.Sprint(v) == value {
			return slices.Concat(path[:i], []string{"[" + strconv.Itoa(n) + "]"}, path[i+1:])
		}
	}
	return path[:i]
}

// findEntry finds the entry of a service's list (ports, volumes) written as text, for
// the loader's errors that quote the entry but not its place.
func findEntry(files []types.ConfigFile, key, text string) []string {
	for _, f := range slices.Backward(files) {
		services, _ := f.Config["services"].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(services)) {
			svc, _ := services[name].(map[string]any)
			items, _ := svc[key].([]any)
			for n, item := range items {
				if s, ok := item.(string); ok && strings.Contains(s, text) {
					return []string{"services", name, key, "[" + strconv.Itoa(n) + "]"}
				}
			}
		}
	}
	return nil
}

// valueAt reads path in the last file that has it.
func valueAt(files []types.ConfigFile, path []string) (any, bool) {
	for _, f := range slices.Backward(files) {
		if v, ok := lookupIn(f.Config, path); ok {
			return v, true
		}
	}
	return nil, false
}

func lookupIn(v any, path []string) (any, bool) {
	for _, p := range path {
		switch t := v.(type) {
		case map[string]any:
			child, ok := t[p]
			if !ok {
				return nil, false
			}
			v = child
		case []any:
			n, err := strconv.Atoi(strings.Trim(p, "[]"))
			if err != nil || n < 0 || n >= len(t) {
				return nil, false
			}
			v = t[n]
		default:
			return nil, false
		}
	}
	return v, true
}

// describeValue names a value as written, for messages about its type.
func describeValue(v any) string {
	switch t := v.(type) {
	case nil:
		return "the value"
	case string:
		return strconv.Quote(t)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	default:
		return fmt.Sprint(t)
	}
}

// withoutPath returns files without the value at path, copying the maps and lists on
// the way so that the decoded files stay as written; ok is false when no file held it.
func withoutPath(files []types.ConfigFile, path []string) (out []types.ConfigFile, ok bool) {
	out = slices.Clone(files)
	for i, f := range out {
		if f.Config == nil {
			continue
		}
		if cfg, removed := removeIn(f.Config, path); removed {
			out[i].Config, ok = cfg.(map[string]any), true
		}
	}
	return out, ok
}

func removeIn(v any, path []string) (any, bool) {
	switch t := v.(type) {
	case map[string]any:
		child, ok := t[path[0]]
		if !ok {
			return v, false
		}
		c := maps.Clone(t)
		if len(path) == 1 {
			delete(c, path[0])
			return c, true
		}
		nc, removed := removeIn(child, path[1:])
		c[path[0]] = nc
		return c, removed
	case []any:
		n, err := strconv.Atoi(strings.Trim(path[0], "[]"))
		if err != nil || n < 0 || n >= len(t) {
			return v, false
		}
		if len(path) == 1 {
			return slices.Delete(slices.Clone(t), n, n+1), true
		}
		c := slices.Clone(t)
		nc, removed := removeIn(t[n], path[1:])
		c[n] = nc
		return c, removed
	}
	return v, false
}

// dropLog remembers the list items a unit was loaded without, by list, so that a later
// error in the same list names the item as it is numbered in the file.
type dropLog map[string][]int

// renumber rewrites the item index of f's field, counted in the list as loaded, into its
// index in the file, and notes that the item goes.
func (d dropLog) renumber(f *loaderFault) {
	last := len(f.path) - 1
	if last < 0 || !strings.HasPrefix(f.path[last], "[") {
		return
	}
	n, err := strconv.Atoi(strings.Trim(f.path[last], "[]"))
	if err != nil {
		return
	}
	list := strings.Join(f.path[:last], ".")
	orig := n
	for _, gone := range slices.Sorted(slices.Values(d[list])) {
		if gone <= orig {
			orig++
		}
	}
	d[list] = append(d[list], orig)
	f.problem.Field = strings.Replace(f.problem.Field, f.path[last], "["+strconv.Itoa(orig)+"]", 1)
}
