package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/go-units"
)

// Action says what happens to one object of a stack.
type Action string

const (
	ActionAdd    Action = "add"
	ActionRemove Action = "remove"
	ActionChange Action = "change"
)

// Rollout says what a service change does to its running tasks.
type Rollout string

const (
	// RolloutReplace: the task spec changed (image, env, command, mounts...): every task is
	// replaced, following update_config.
	RolloutReplace Rollout = "replace"
	// RolloutScale: only the replica count changed: tasks are added or removed, none restart.
	RolloutScale Rollout = "scale"
	// RolloutNone: only service-level settings changed (update_config, deploy labels...):
	// running tasks are left alone.
	RolloutNone Rollout = "none"
)

// FieldChange is one changed field, with both values rendered as text. Secret values are
// never rendered.
type FieldChange struct {
	Path string `json:"path"`
	Old  string `json:"old,omitempty"`
	New  string `json:"new,omitempty"`
}

// ServiceChange is an added, removed or changed service.
type ServiceChange struct {
	Name    string        `json:"name"`
	Action  Action        `json:"action"`
	Rollout Rollout       `json:"rollout,omitempty"`
	Reasons []string      `json:"reasons,omitempty"`
	Fields  []FieldChange `json:"fields,omitempty"`
}

// ResourceChange is an added, removed or changed network, volume, secret or config.
type ResourceChange struct {
	Kind   string        `json:"kind"`
	Name   string        `json:"name"`
	Action Action        `json:"action"`
	Fields []FieldChange `json:"fields,omitempty"`
}

// StackDiff is everything that differs between two versions of one stack.
type StackDiff struct {
	Stack     string           `json:"stack"`
	Action    Action           `json:"action,omitempty"`
	Services  []ServiceChange  `json:"services,omitempty"`
	Resources []ResourceChange `json:"resources,omitempty"`
}

// Empty reports whether the two versions are the same.
func (d *StackDiff) Empty() bool {
	return d == nil || (len(d.Services) == 0 && len(d.Resources) == 0 && d.Action == "")
}

// Diff compares two versions of a stack; either may be nil (stack added or removed).
// It is pure: same inputs, same output, in a stable order.
func Diff(old, new *Stack) *StackDiff {
	d := &StackDiff{}
	switch {
	case old == nil && new == nil:
		return d
	case old == nil:
		d.Stack, d.Action, old = new.Name, ActionAdd, &Stack{Name: new.Name}
	case new == nil:
		d.Stack, d.Action, new = old.Name, ActionRemove, &Stack{Name: old.Name}
	default:
		d.Stack = new.Name
	}

	changedObjects := map[string]string{} // "secret:<key>" -> reason, for services that use them
	d.Resources = append(d.Resources, diffObjects("network", old.Networks, new.Networks, nil, func(n *Network) string { return n.Name })...)
	d.Resources = append(d.Resources, diffObjects("volume", old.Volumes, new.Volumes, nil, func(v *Volume) string { return v.Name })...)
	d.Resources = append(d.Resources, diffObjects("secret", old.Secrets, new.Secrets, func(key string, a, b *Secret) []FieldChange {
		if bytes.Equal(a.Data, b.Data) {
			return nil
		}
		changedObjects["secret:"+key] = fmt.Sprintf("secret %s changed", key)
		return []FieldChange{{Path: "content", Old: "(hidden)", New: "(hidden, changed)"}}
	}, func(s *Secret) string { return s.Name })...)
	d.Resources = append(d.Resources, diffObjects("config", old.Configs, new.Configs, func(key string, a, b *Config) []FieldChange {
		if a.Digest != b.Digest || !bytes.Equal(a.Data, b.Data) {
			changedObjects["config:"+key] = fmt.Sprintf("config %s changed", key)
		}
		return nil
	}, func(c *Config) string { return c.Name })...)

	for _, name := range unionKeys(old.Services, new.Services) {
		a, b := old.Services[name], new.Services[name]
		full := FullName(d.Stack, name)
		switch {
		case a == nil:
			d.Services = append(d.Services, ServiceChange{Name: full, Action: ActionAdd, Fields: summary(b)})
		case b == nil:
			d.Services = append(d.Services, ServiceChange{Name: full, Action: ActionRemove})
		default:
			if c, ok := diffService(full, a, b, changedObjects); ok {
				d.Services = append(d.Services, c)
			}
		}
	}
	if d.Action == "" && (len(d.Services) > 0 || len(d.Resources) > 0) {
		d.Action = ActionChange
	}
	return d
}

// DiffStacks compares two sets of stacks (for example two Git revisions), matching them
// by name, and returns the diffs that are not empty, ordered by stack name.
func DiffStacks(old, new []*Stack) []*StackDiff {
	byName := func(stacks []*Stack) map[string]*Stack {
		m := make(map[string]*Stack, len(stacks))
		for _, s := range stacks {
			m[s.Name] = s
		}
		return m
	}
	o, n := byName(old), byName(new)
	var out []*StackDiff
	for _, name := range unionKeys(o, n) {
		if d := Diff(o[name], n[name]); !d.Empty() {
			out = append(out, d)
		}
	}
	return out
}

// summary is what an added service shows: enough to recognise it.
func summary(s *Service) []FieldChange {
	f := []FieldChange{{Path: "image", New: s.Image}, {Path: "deploy.mode", New: s.Deploy.Mode}}
	if s.Deploy.Replicas != nil {
		f = append(f, FieldChange{Path: "deploy.replicas", New: strconv.FormatUint(*s.Deploy.Replicas, 10)})
	}
	return f
}

func diffService(full string, a, b *Service, changedObjects map[string]string) (ServiceChange, bool) {
	c := ServiceChange{Name: full, Action: ActionChange, Rollout: RolloutNone}
	c.Fields = changedFields(a, b)
	if len(c.Fields) > 0 {
		for _, f := range c.Fields {
			c.Rollout = maxRollout(c.Rollout, fieldRollout(f.Path, a, b))
		}
		if a.Deploy.Mode != b.Deploy.Mode {
			c.Reasons = append(c.Reasons, fmt.Sprintf("mode changes from %s to %s: the service is recreated", a.Deploy.Mode, b.Deploy.Mode))
		}
	}
	for _, ref := range b.Secrets {
		if r, ok := changedObjects["secret:"+ref.Source]; ok {
			c.Reasons, c.Rollout = append(c.Reasons, r), RolloutReplace
		}
	}
	for _, ref := range b.Configs {
		if r, ok := changedObjects["config:"+ref.Source]; ok {
			c.Reasons, c.Rollout = append(c.Reasons, r), RolloutReplace
		}
	}
	c.Reasons = sortedSet(c.Reasons)
	return c, len(c.Fields) > 0 || len(c.Reasons) > 0
}

// changedFields compares two services' canonical forms. Equal values encode alike:
// most services of a plan did not change, and comparing them costs less than encoding.
func changedFields(a, b *Service) []FieldChange {
	if reflect.DeepEqual(a, b) {
		return nil
	}
	ca, cb := a.Canonical(), b.Canonical()
	if bytes.Equal(ca, cb) {
		return nil
	}
	return diffFields(ca, cb)
}

// noRestartFields change how the service is managed, not what its tasks run, so tasks
// keep running (as in Swarm, where they live outside the task spec).
var noRestartFields = []string{"deploy.update_config", "deploy.rollback_config", "deploy.labels", "deploy.endpoint_mode", "ports"}

func fieldRollout(path string, a, b *Service) Rollout {
	if path == "deploy.replicas" {
		return RolloutScale
	}
	for _, p := range noRestartFields {
		if path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") {
			if p == "ports" && (hasHostPort(a) || hasHostPort(b)) {
				return RolloutReplace // host-mode ports are bound by the task itself
			}
			if p == "ports" && a.PublishesIngress() != b.PublishesIngress() {
				return RolloutReplace // tasks join or leave the ingress network
			}
			return RolloutNone
		}
	}
	return RolloutReplace
}

func hasHostPort(s *Service) bool {
	return slices.ContainsFunc(s.Ports, func(p Port) bool { return p.Mode == PortModeHost })
}

func maxRollout(a, b Rollout) Rollout {
	rank := map[Rollout]int{RolloutNone: 0, RolloutScale: 1, RolloutReplace: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// diffObjects compares one kind of top-level object by key. extra adds field changes the
// canonical encoding cannot see (secret bytes).
func diffObjects[T any](kind string, old, new map[string]T, extra func(key string, a, b T) []FieldChange, name func(T) string) []ResourceChange {
	var out []ResourceChange
	for _, key := range unionKeys(old, new) {
		a, inOld := old[key]
		b, inNew := new[key]
		switch {
		case !inOld:
			out = append(out, ResourceChange{Kind: kind, Name: name(b), Action: ActionAdd})
		case !inNew:
			out = append(out, ResourceChange{Kind: kind, Name: name(a), Action: ActionRemove})
		default:
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			var fields []FieldChange
			if !bytes.Equal(ja, jb) {
				fields = diffFields(ja, jb)
			}
			if extra != nil {
				fields = append(fields, extra(key, a, b)...)
			}
			if len(fields) > 0 {
				out = append(out, ResourceChange{Kind: kind, Name: name(b), Action: ActionChange, Fields: fields})
			}
		}
	}
	return out
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// listIdentity names the field that identifies an element of a list of objects, so a
// change to one network or mount reads as that element changing, not as every later
// index shifting.
var listIdentity = map[string]func(map[string]any) string{
	"networks": func(m map[string]any) string { return render(m["name"]) },
	"mounts":   func(m map[string]any) string { return render(m["target"]) },
	"secrets":  func(m map[string]any) string { return render(m["target"]) },
	"configs":  func(m map[string]any) string { return render(m["target"]) },
	"devices":  func(m map[string]any) string { return render(m["source"]) },
	"ports":    func(m map[string]any) string { return render(m["target"]) + "/" + render(m["protocol"]) },
}

// diffFields compares two canonical JSON encodings field by field.
func diffFields(a, b []byte) []FieldChange {
	fa, fb := map[string]string{}, map[string]string{}
	flatten(decodeJSON(a), "", fa)
	flatten(decodeJSON(b), "", fb)
	var out []FieldChange
	for _, p := range unionKeys(fa, fb) {
		if fa[p] != fb[p] {
			out = append(out, FieldChange{Path: p, Old: fa[p], New: fb[p]})
		}
	}
	return out
}

func decodeJSON(b []byte) any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	_ = dec.Decode(&v) // b was produced by json.Marshal
	return v
}

func flatten(v any, path string, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			flatten(child, join(path, k), out)
		}
	case []any:
		if len(t) == 0 {
			return
		}
		id, keyed := listIdentity[path]
		if _, isObject := t[0].(map[string]any); !isObject {
			// Lists of words (command, cap_add, constraints...) read best whole.
			out[path] = render(t)
			return
		}
		for i, child := range t {
			key := strconv.Itoa(i)
			if m, ok := child.(map[string]any); ok && keyed {
				key = id(m)
			}
			flatten(child, path+"["+key+"]", out)
		}
	default:
		out[path] = renderField(path, t)
	}
}

// byteCountFields are byte counts, shown as people write them ("128MiB", not 134217728).
var byteCountFields = []string{".memory", ".tmpfs_size"}

func renderField(path string, v any) string {
	if text, ok := v.(string); ok && path == "seccomp.profile" {
		// A whole profile on one line reads as noise: its digest says whether it changed.
		sum := sha256.Sum256([]byte(text))
		return fmt.Sprintf("sha256:%x (%d bytes)", sum[:6], len(text))
	}
	if n, ok := v.(json.Number); ok && slices.ContainsFunc(byteCountFields, func(s string) bool { return strings.HasSuffix(path, s) }) {
		if b, err := n.Int64(); err == nil {
			return units.BytesSize(float64(b))
		}
	}
	return render(v)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func render(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = render(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	default:
		return fmt.Sprint(t)
	}
}
