package spec

import (
	"bytes"
	"crypto/sha256"
	"maps"
	"runtime"

	"golang.org/x/sync/errgroup"
	"gopkg.in/yaml.v3"
)

// Parsing a big file is most of a plan's cost when few of its services changed. A file
// written the plain way (one YAML document, a block `services:` mapping at the top
// level, no anchors, aliases or tags) is cut at its services' keys and each piece is
// parsed on its own: the pieces run in parallel and an unchanged piece comes from the
// Cache. A line indented as the services' keys are can only be one of them in such a
// file (YAML wants whatever continues a value indented further), and a cut anywhere
// else leaves a piece that does not parse; anything else is parsed whole.
// TestCutDecodeAgreesWithYAML and FuzzCutDecode hold the two to the same result.

// cutFile cuts content into its text outside the services' bodies, which keeps the
// `services:` line, and one piece per service, each starting at the service's key.
func cutFile(content []byte) (head []byte, pieces [][]byte, ok bool) {
	if !onlyNewlines(content) {
		return nil, nil, false
	}
	lines := bytes.SplitAfter(content, []byte("\n"))
	start := -1
	for i, l := range lines {
		if bytes.Equal(bytes.TrimRight(l, " \r\n"), []byte("services:")) {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, nil, false
	}
	head = bytes.Join(lines[:start+1], nil)
	indent := -1
	end := len(lines)
	for i := start + 1; i < len(lines); i++ {
		l := lines[i]
		n := len(l) - len(bytes.TrimLeft(l, " "))
		rest := bytes.TrimLeft(l, " ")
		switch {
		case len(bytes.TrimSpace(rest)) == 0 || rest[0] == '#':
			// Kept, for a comment can make a file refused (bytes that are not UTF-8).
			if len(pieces) > 0 {
				pieces[len(pieces)-1] = append(pieces[len(pieces)-1], l...)
			} else {
				head = append(head, l...)
			}
			continue
		case rest[0] == '\t':
			return nil, nil, false
		case n == 0:
			end = i
		case indent < 0:
			indent = n
		}
		if end < len(lines) {
			break
		}
		switch {
		case n == indent && rest[0] == '-':
			return nil, nil, false // a list, not a mapping of services
		case n == indent:
			pieces = append(pieces, append([]byte(nil), l...))
		case n < indent || len(pieces) == 0:
			return nil, nil, false
		default:
			pieces[len(pieces)-1] = append(pieces[len(pieces)-1], l...)
		}
	}
	if len(pieces) == 0 {
		return nil, nil, false
	}
	head = append(head, bytes.Join(lines[end:], nil)...)
	return head, pieces, true
}

// onlyNewlines reports whether content breaks its lines with \n or \r\n only: YAML
// also breaks them at a lone \r and at NEL, LS and PS, and skips a byte order mark.
func onlyNewlines(content []byte) bool {
	if bytes.Count(content, []byte("\r")) != bytes.Count(content, []byte("\r\n")) {
		return false
	}
	for _, s := range []string{"\u0085", "\u2028", "\u2029", "\ufeff"} {
		if bytes.Contains(content, []byte(s)) {
			return false
		}
	}
	return true
}

// A parsedPiece is a piece of a file as decoded, with its node count. Cached pieces
// are shared: value must not be modified.
type parsedPiece struct {
	value map[string]any
	nodes int
}

// decodeCut decodes a file from its pieces, or reports false when it is not written the
// plain way; then the file must be parsed whole, which also says what is wrong with it.
func decodeCut(content []byte, cache *Cache) (map[string]any, bool) {
	head, pieces, ok := cutFile(content)
	if !ok {
		return nil, false
	}
	parsed := make([]*parsedPiece, len(pieces)+1)
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, text := range append([][]byte{head}, pieces...) {
		g.Go(func() error {
			parsed[i] = parsePiece(text, cache)
			return nil
		})
	}
	_ = g.Wait() // a piece that does not parse is nil
	raw, services := map[string]any{}, map[string]any{}
	nodes := 0
	for i, p := range parsed {
		if p == nil {
			return nil, false
		}
		nodes += p.nodes
		// Shared with the Cache: prescanFile copies what it prunes, loadUnit what it loads.
		if i == 0 {
			raw = maps.Clone(p.value)
			continue
		}
		if len(p.value) != 1 {
			return nil, false // not cut at a key
		}
		for name, svc := range p.value {
			if _, dup := services[name]; dup {
				return nil, false // the loader names the duplicate key
			}
			services[name] = svc
		}
	}
	if v, ok := raw["services"]; !ok || v != nil || nodes > maxExpandedNodes {
		return nil, false
	}
	raw["services"] = services
	return raw, true
}

// parsePiece parses one piece, or returns nil when it is not one plain YAML mapping.
func parsePiece(text []byte, cache *Cache) *parsedPiece {
	var key [sha256.Size]byte
	if cache != nil {
		key = sha256.Sum256(append([]byte("piece\x00"), text...))
		if p, ok := cache.get(key).(*parsedPiece); ok {
			return p
		}
	}
	docs, whole := parseDocuments(text)
	if !whole || len(docs) != 1 {
		return nil
	}
	// A flow mapping alone is a document, not a key of a block mapping.
	if root := docs[0].Content; len(root) != 1 || root[0].Kind != yaml.MappingNode || root[0].Style&yaml.FlowStyle != 0 {
		return nil
	}
	nodes, plain := plainNodes(docs[0])
	p := &parsedPiece{nodes: nodes}
	// The decoder's check for repeated keys takes the square of a mapping's size: a
	// piece too big to load is not decoded, and the whole file is refused for its size.
	if !plain || nodes > maxExpandedNodes {
		return nil
	}
	// Into any, as the services mapping is decoded whole: keys that are not all text
	// make it a map[any]any, which a whole parse keeps.
	var v any
	if docs[0].Decode(&v) != nil {
		return nil
	}
	if p.value, _ = v.(map[string]any); p.value == nil {
		return nil
	}
	cache.put(key, p)
	return p
}

// plainNodes counts n's nodes and reports whether none has an anchor, an alias or a tag
// written out (`!reset`, `!!str`).
func plainNodes(n *yaml.Node) (int, bool) {
	if n.Anchor != "" || n.Kind == yaml.AliasNode || n.Style&yaml.TaggedStyle != 0 {
		return 0, false
	}
	count := 1
	for _, c := range n.Content {
		k, ok := plainNodes(c)
		if !ok {
			return 0, false
		}
		count += k
	}
	return count, true
}
