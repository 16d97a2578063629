package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/schema"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// misplacedKeys are keys people write at the wrong level of a service. The Compose schema
// would reject them with "additional properties not allowed"; berth names the right place.
var misplacedKeys = []struct {
	parent []string // path below the service
	key    string
	right  string
}{
	{[]string{"deploy"}, "max_replicas_per_node", "deploy.placement.max_replicas_per_node"},
	{[]string{"deploy"}, "constraints", "deploy.placement.constraints"},
	{[]string{"deploy"}, "preferences", "deploy.placement.preferences"},
	{nil, "replicas", "deploy.replicas"},
	{nil, "placement", "deploy.placement"},
	{nil, "update_config", "deploy.update_config"},
	{nil, "restart_policy", "deploy.restart_policy"},
	{nil, "resources", "deploy.resources"},
}

// composeKeys are the keys the Compose schema allows at the top level and in a service,
// read from the schema compose-go validates with, so the two never disagree.
var composeKeys = sync.OnceValues(func() (topLevel, service []string) {
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal([]byte(schema.Schema), &s); err != nil {
		return nil, nil // the embedded schema is valid JSON; without it, nothing is flagged
	}
	svc := map[string]json.RawMessage{}
	for _, def := range []string{"service", "container_spec", "workload_spec"} {
		maps.Copy(svc, s.Defs[def].Properties)
	}
	return slices.Sorted(maps.Keys(s.Properties)), slices.Sorted(maps.Keys(svc))
})

// prescanFile looks at one file as written, before any merging, for mistakes the Compose
// loader would report one at a time or in its own terms: misplaced and misspelt keys.
// It removes what it reported and hands the loader the cleaned model, so that every other
// problem of the stack is still found in the same run.
//
// It also returns the decoded file for splitting into units, or nil when the decoded map
// would not say all the file says (several YAML documents, Compose's !reset and
// !override tags) or the YAML does not decode: then the loader gets the bytes and reports
// what is wrong itself.
func prescanFile(f File, cache *Cache, all *problems) (cf types.ConfigFile, raw map[string]any, refused bool) {
	ps := &problems{stack: all.stack, file: f.Name}
	defer all.add(ps)
	cf = types.ConfigFile{Filename: f.Name, Content: f.Content}
	raw, faithful, err := decodeFile(f.Content, cache)
	if err != nil {
		ps.errorf("", err.field, err.fix, "%s", err.msg)
		return cf, nil, true
	}
	if raw == nil {
		return cf, nil, false
	}

	pruned := false
	topLevel, serviceKeys := composeKeys()
	for _, key := range slices.Sorted(maps.Keys(raw)) {
		if !slices.Contains(topLevel, key) && !isExtension(key) {
			ps.errorf("", key, unknownKeyFix(key, topLevel), "unknown top-level key `%s`", key)
			delete(raw, key)
			pruned = true
		}
	}
	if _, ok := raw["version"]; ok {
		ps.warnf("", "version", "remove the `version` key", "`version` is obsolete and ignored")
		delete(raw, "version") // so the loader does not log its own warning about it
		pruned = true
	}
	services, _ := raw["services"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(services)) {
		svc, ok := services[name].(map[string]any)
		if !ok {
			continue
		}
		// A decoded service may be shared with the Cache: what is pruned is a copy.
		own := sync.OnceValue(func() map[string]any {
			c := deepCopy(svc).(map[string]any)
			services[name] = c
			return c
		})
		for _, m := range misplacedKeys {
			if lookupParent(svc, m.parent)[m.key] == nil {
				continue
			}
			field := m.key
			if len(m.parent) > 0 {
				field = m.parent[0] + "." + m.key
			}
			ps.errorf(name, field, "move it to "+m.right, "`%s` is not valid here", field)
			delete(lookupParent(own(), m.parent), m.key)
			pruned = true
		}
		for _, key := range slices.Sorted(maps.Keys(svc)) {
			if !slices.Contains(serviceKeys, key) && !isExtension(key) {
				ps.errorf(name, key, unknownKeyFix(key, serviceKeys), "unknown key `%s`", key)
				delete(own(), key)
				pruned = true
			}
		}
	}
	if !faithful {
		return cf, nil, false
	}
	if pruned {
		cf.Content, cf.Config = nil, raw
	}
	return cf, raw, false
}

func lookupParent(svc map[string]any, path []string) map[string]any {
	for _, p := range path {
		svc, _ = svc[p].(map[string]any)
	}
	return svc
}

// decodeFile decodes a file for the prescan, by its pieces when it can. faithful
// reports whether the decoded map says all the file says; raw is nil when the file does
// not decode, and the error says why a file is refused before it is loaded.
func decodeFile(content []byte, cache *Cache) (raw map[string]any, faithful bool, err *prescanError) {
	if raw, ok := decodeCut(content, cache); ok {
		return raw, true, nil
	}
	docs, whole := parseDocuments(content)
	if e := checkAliases(docs); e != nil {
		return nil, false, e
	}
	// Decoded from the parsed nodes: parsing is most of the cost of decoding.
	if len(docs) == 0 || docs[0].Decode(&raw) != nil {
		return nil, false, nil
	}
	faithful = !bytes.Contains(content, []byte("!reset")) && !bytes.Contains(content, []byte("!override")) &&
		len(docs) == 1 && whole
	return raw, faithful, nil
}

// maxExpandedNodes bounds the YAML nodes (keys, values and list items) a file may hold
// once its aliases are expanded: far above any real stack, far below what makes the
// Compose loader spin for minutes.
const maxExpandedNodes = 200_000

// prescanError is a file refused before it is loaded, with the field at fault when
// there is one.
type prescanError struct{ field, msg, fix string }

// parseDocuments parses content's YAML documents up to the first that does not parse;
// whole reports that there was none.
func parseDocuments(content []byte) (docs []*yaml.Node, whole bool) {
	dec := yaml.NewDecoder(bytes.NewReader(content))
	for {
		doc := &yaml.Node{}
		if err := dec.Decode(doc); err != nil {
			return docs, errors.Is(err, io.EOF)
		}
		docs = append(docs, doc)
	}
}

// checkAliases refuses a file whose anchors include themselves (`&c {<<: *c}`) or that
// holds more than maxExpandedNodes nodes once its aliases are expanded ("billion
// laughs"). The Compose loader detects both only after visiting nodes for a very long
// time, so a pushed file could otherwise stall a manager. Documents that do not parse
// are left to the loader, which says why.
func checkAliases(docs []*yaml.Node) *prescanError {
	for _, doc := range docs {
		sizes := map[*yaml.Node]int{}
		_, err := expandedSize(doc, sizes, map[*yaml.Node]bool{})
		switch {
		case errors.Is(err, errTooManyNodes):
			return tooManyNodes(doc)
		case err != nil:
			return &prescanError{msg: err.Error(), fix: "write the repeated part out, or use anchors that do not include themselves"}
		}
	}
	return nil
}

var errTooManyNodes = errors.New("too many nodes")

// expandedSize counts the nodes n stands for once aliases are expanded, remembering the
// size of every anchored node so that each is walked once.
func expandedSize(n *yaml.Node, sizes map[*yaml.Node]int, open map[*yaml.Node]bool) (int, error) {
	if n.Kind == yaml.AliasNode {
		target := n.Alias
		if target == nil {
			return 1, nil
		}
		if open[target] {
			return 0, fmt.Errorf("anchor %q includes itself", target.Anchor)
		}
		if size, ok := sizes[target]; ok {
			return size, nil
		}
		return expandedSize(target, sizes, open)
	}
	open[n] = true
	defer delete(open, n)
	size := 1
	for _, c := range n.Content {
		s, err := expandedSize(c, sizes, open)
		if err != nil {
			return 0, err
		}
		size += s
		if size > maxExpandedNodes {
			return 0, errTooManyNodes
		}
	}
	if n.Anchor != "" {
		sizes[n] = size
	}
	return size, nil
}

// tooManyNodes says why doc is too large: through its aliases, or as written, and
// then which list or map is the largest, for it is usually the mistake. Too many
// labels are named as such, with their own limit.
func tooManyNodes(doc *yaml.Node) *prescanError {
	var big largest
	plain := big.walk(doc, "")
	switch {
	case big.key == "labels" && big.entries > MaxLabels:
		return &prescanError{field: big.path, msg: fmt.Sprintf("%d labels; the limit is %d", big.entries, MaxLabels),
			fix: labelFix}
	case plain > maxExpandedNodes:
		return &prescanError{field: big.path,
			msg: fmt.Sprintf("the file has more than %d YAML nodes (keys, values and list items); %s alone has %d entries", maxExpandedNodes, big.path, big.entries),
			fix: "split the stack, or shorten the largest list or map"}
	}
	return &prescanError{msg: fmt.Sprintf("its aliases expand to more than %d YAML nodes (keys, values and list items)", maxExpandedNodes),
		fix: "write the repeated part out, or use fewer nested aliases"}
}

// largest finds the list or map with the most entries, without expanding aliases.
type largest struct {
	path, key string
	entries   int
}

// walk visits n, found at path, and returns how many nodes it holds as written.
func (l *largest) walk(n *yaml.Node, path string) int {
	entries := len(n.Content)
	if n.Kind == yaml.MappingNode {
		entries /= 2
	}
	if n.Kind != yaml.DocumentNode && entries > l.entries {
		l.path, l.entries = path, entries
		l.key = path[strings.LastIndex(path, ".")+1:]
	}
	count := 1
	for i, c := range n.Content {
		switch {
		case n.Kind == yaml.MappingNode && i%2 == 1:
			count += l.walk(c, strings.TrimPrefix(path+"."+n.Content[i-1].Value, "."))
		case n.Kind == yaml.SequenceNode:
			count += l.walk(c, fmt.Sprintf("%s[%d]", path, i))
		default:
			count += l.walk(c, path)
		}
	}
	return count
}

func isExtension(key string) bool { return len(key) > 2 && key[:2] == "x-" }

func unknownKeyFix(key string, valid []string) string {
	if near := ClosestWord(key, valid); near != "" {
		return "did you mean `" + near + "`?"
	}
	return "remove it, or check the Compose file reference for the right key"
}
