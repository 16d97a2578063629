package spec

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/types"
)

// The shape of a one-service unit is the unit with its service's name and the values of
// copiedFields left out. The Compose loader copies those values into the project without
// looking at them (once their type is right), so units of the same shape load to the same
// project but for those values: the loader runs on the first unit of a shape and the
// others are that project with their own values set. Services cut from one template
// (an image bump, a port or an environment value apart) are most of a big stack and of
// a revision's changes. TestShapeAgreesWithTheLoader holds the two paths to the same
// result.

// A copiedField is a value of a service that the loader copies unchanged: its path below
// the service ("*" for any key of a mapping, "#" for any index of a list), the values it takes as they are, and how
// it is set on a loaded service. set must not modify what the service shares with
// others (it is a shallow copy of a cached result); it reports false when the loaded
// service does not hold the value where the raw one was (the unit is then loaded).
type copiedField struct {
	pattern []string
	accepts func(v any) bool
	set     func(s *types.ServiceConfig, path []string, v any) bool
}

// isPlain is a string that interpolation leaves as it is.
func isPlain(v any) bool { s, ok := v.(string); return ok && !strings.Contains(s, "$") }

// isCount is what the loader and lintValues take for a count without a word.
func isCount(v any) bool { n, ok := v.(int); return ok && n >= 0 }

var copiedFields = []copiedField{
	{[]string{"image"}, isPlain, func(s *types.ServiceConfig, _ []string, v any) bool {
		s.Image = v.(string)
		return true
	}},
	{[]string{"command", "#"}, isPlain, func(s *types.ServiceConfig, path []string, v any) bool {
		return setListItem(&s.Command, path[1], v.(string))
	}},
	{[]string{"entrypoint", "#"}, isPlain, func(s *types.ServiceConfig, path []string, v any) bool {
		return setListItem(&s.Entrypoint, path[1], v.(string))
	}},
	{[]string{"environment", "*"}, isPlain, func(s *types.ServiceConfig, path []string, v any) bool {
		if _, ok := s.Environment[path[1]]; !ok {
			return false
		}
		s.Environment = maps.Clone(s.Environment)
		val := v.(string)
		s.Environment[path[1]] = &val
		return true
	}},
	{[]string{"labels", "*"}, isPlain, func(s *types.ServiceConfig, path []string, v any) bool {
		if _, ok := s.Labels[path[1]]; !ok {
			return false
		}
		s.Labels = maps.Clone(s.Labels)
		s.Labels[path[1]] = v.(string)
		return true
	}},
	{[]string{"deploy", "replicas"}, isCount, func(s *types.ServiceConfig, _ []string, v any) bool {
		if s.Deploy == nil || s.Deploy.Replicas == nil {
			return false
		}
		d := *s.Deploy
		n := v.(int)
		d.Replicas = &n
		s.Deploy = &d
		return true
	}},
	{[]string{"ports", "#", "published"}, isCount, func(s *types.ServiceConfig, path []string, v any) bool {
		i, ok := listIndex(path[1])
		if !ok || i >= len(s.Ports) {
			return false
		}
		s.Ports = slices.Clone(s.Ports)
		s.Ports[i].Published = strconv.Itoa(v.(int))
		return true
	}},
}

func setListItem(l *types.ShellCommand, index string, v string) bool {
	i, ok := listIndex(index)
	if !ok || i >= len(*l) {
		return false
	}
	*l = slices.Clone(*l)
	(*l)[i] = v
	return true
}

// A copiedValue is one value of a copiedField in a unit.
type copiedValue struct {
	field *copiedField
	path  []string
	value any
}

// unitKeys are what a one-service unit is known by: key, its content (the Cache's key);
// shape, zero when the unit cannot share a load (see shapeOf); and the unit's copied
// values.
type unitKeys struct {
	key, shape [sha256.Size]byte
	values     []copiedValue
}

// keysOf hashes a unit: the digests of its files' other sections (headDigest) and its
// service. A unit shares its shape only when its service is in one file, no value goes
// through interpolation (no $), and its ports stay distinct whatever their published
// ports (the loader refuses repeated ports).
func keysOf(prefix []byte, heads [][sha256.Size]byte, files []types.ConfigFile, service string) (unitKeys, bool) {
	w := &keyWriter{shareable: true, buf: make([]byte, 0, 4096)}
	w.buf = append(w.buf, "unit\x00"...)
	w.buf = append(w.buf, prefix...)
	in := 0
	for i, f := range files {
		w.buf = append(w.buf, heads[i][:]...)
		svcs, _ := f.Config["services"].(map[string]any)
		s, ok := svcs[service]
		if !ok {
			w.tag('-', 0)
			continue
		}
		in++
		w.tag('+', 0) // the name is in the key, not in the shape
		if m, _ := s.(map[string]any); m == nil || repeatedPorts(m["ports"]) {
			w.shareable = false
		}
		w.value(s, make([]string, 0, 8), true)
	}
	var k unitKeys
	k.shape = sha256.Sum256(w.buf)
	// The key adds the name and the values to the shape's hash.
	vw := &keyWriter{}
	vw.buf = append(vw.buf, k.shape[:]...)
	vw.str(service)
	for _, v := range w.values {
		vw.str(strings.Join(v.path, "\x00"))
		vw.value(v.value, nil, false)
	}
	k.key = sha256.Sum256(vw.buf)
	if w.shareable && in == 1 {
		k.values = w.values
	} else {
		k.shape = [sha256.Size]byte{}
	}
	return k, !vw.unhashable && !w.unhashable
}

// headDigest hashes what a file holds besides its services, which every unit shares.
func headDigest(name string, raw map[string]any) [sha256.Size]byte {
	w := &keyWriter{}
	w.str(name)
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		if k != "services" {
			w.str(k)
			w.value(raw[k], nil, false)
		}
	}
	if w.unhashable {
		w.tag('?', len(w.buf)) // never the digest of a hashable head
	}
	return sha256.Sum256(w.buf)
}

// keyWriter writes decoded values for a hash, each kind tagged and each string
// length-prefixed so that two different values never write the same bytes.
type keyWriter struct {
	buf        []byte
	values     []copiedValue
	shareable  bool
	unhashable bool
}

// value writes v; path is its place below the service, when inService.
func (w *keyWriter) value(v any, path []string, inService bool) {
	if inService && len(path) > 0 {
		for i := range copiedFields {
			f := &copiedFields[i]
			if matchParts(f.pattern, path) && f.accepts(v) {
				w.tag('c', i)
				w.values = append(w.values, copiedValue{field: f, path: slices.Clone(path), value: v})
				return
			}
		}
	}
	switch t := v.(type) {
	case nil:
		w.tag('n', 0)
	case bool:
		n := 0
		if t {
			n = 1
		}
		w.tag('b', n)
	case int:
		w.tag('i', t)
	case float64:
		w.tag('f', int(math.Float64bits(t)))
	case string:
		if strings.Contains(t, "$") {
			w.shareable = false
		}
		w.str(t)
	case map[string]any:
		w.tag('m', len(t))
		var small [16]string
		keys := small[:0]
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			w.str(k)
			w.value(t[k], append(path, k), inService)
		}
	case []any:
		w.tag('l', len(t))
		for i, e := range t {
			w.value(e, append(path, indexPart(i)), inService)
		}
	default:
		b, err := json.Marshal(t)
		if err != nil {
			w.unhashable = true
			return
		}
		w.tag('j', 0)
		w.str(string(b))
	}
}

// indexParts are the path parts of the first list indices, made once.
var indexParts = func() (parts [64]string) {
	for i := range parts {
		parts[i] = "#" + strconv.Itoa(i)
	}
	return parts
}()

func indexPart(i int) string {
	if i < len(indexParts) {
		return indexParts[i]
	}
	return "#" + strconv.Itoa(i)
}

func (w *keyWriter) tag(kind byte, n int) {
	w.buf = append(w.buf, kind)
	w.buf = binary.LittleEndian.AppendUint64(w.buf, uint64(n))
}

func (w *keyWriter) str(s string) {
	w.tag('s', len(s))
	w.buf = append(w.buf, s...)
}

// matchParts matches a path whose list indices are written "#i".
func matchParts(pattern, path []string) bool {
	if len(pattern) != len(path) {
		return false
	}
	for i, p := range pattern {
		_, index := listIndex(path[i])
		switch {
		case p == "#" && index, p == "*" && !index, p == path[i]:
		default:
			return false
		}
	}
	return true
}

// listIndex reads a path part written for a list index. A mapping key that looks the
// same ("#0") matches no copiedField: it stays in the shape.
func listIndex(part string) (int, bool) {
	if !strings.HasPrefix(part, "#") {
		return 0, false
	}
	i, err := strconv.Atoi(part[1:])
	return i, err == nil
}

// repeatedPorts reports whether two entries of a ports list are the same but for their
// published port: with copied published ports they could become equal, which the
// loader refuses.
func repeatedPorts(v any) bool {
	l, _ := v.([]any)
	for i := range l {
		for j := i + 1; j < len(l); j++ {
			if reflect.DeepEqual(withoutPublished(l[i]), withoutPublished(l[j])) {
				return true
			}
		}
	}
	return false
}

func withoutPublished(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := maps.Clone(m)
	delete(out, "published")
	return out
}

// shapeBase is the first unit of a shape to be loaded: its result, name and values.
type shapeBase struct {
	result  *unitResult
	service string
	values  []copiedValue
}

// reusable reports whether the base's result can stand for others: it loaded one
// service with nothing said about it (a finding would name the base's service or
// values).
func (b *shapeBase) reusable() bool {
	r := b.result
	return r.project != nil && len(r.project.Services) == 1 && len(r.errors) == 0 &&
		len(r.warnings) == 0 && len(r.dropped) == 0 && len(r.unset) == 0
}

// resultFor makes the result of a unit of the base's shape from the base's project, or
// reports false.
func (b *shapeBase) resultFor(service string, values []copiedValue) (*unitResult, bool) {
	if !b.reusable() || len(values) != len(b.values) {
		return nil, false
	}
	svc, ok := b.result.project.Services[b.service]
	if !ok {
		return nil, false
	}
	svc.Name = service
	for i, v := range values {
		if b.values[i].field != v.field || !slices.Equal(b.values[i].path, v.path) {
			return nil, false
		}
		if v.value != b.values[i].value && !v.field.set(&svc, v.path, v.value) {
			return nil, false
		}
	}
	p := *b.result.project
	p.Services = types.Services{service: svc}
	return &unitResult{project: &p}, true
}

// shapes holds, for one load, the base of every shape seen, so that units of a shape
// wait for its first load instead of each loading.
type shapes struct {
	mu    sync.Mutex
	slots map[[sha256.Size]byte]*shapeSlot
}

type shapeSlot struct {
	once sync.Once
	base *shapeBase
}

func (s *shapes) slot(key [sha256.Size]byte) *shapeSlot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.slots == nil {
		s.slots = map[[sha256.Size]byte]*shapeSlot{}
	}
	sl := s.slots[key]
	if sl == nil {
		sl = &shapeSlot{}
		s.slots[key] = sl
	}
	return sl
}
