// Package plantext writes plans for people: the diff of stacks, field by field, and
// where new tasks would land. The CLI prints them (berth diff, stack deploy --dry-run)
// and so does a git push on its remote: lines, so both read the same.
package plantext

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/spec"
)

// Plan writes a live plan: its revision, the diff, the stacks a source keeps, then a
// line per new task (at most maxTasks per service) and what cannot be placed.
func Plan(w io.Writer, p *api.PlanResponse, maxTasks int) {
	if p.Revision != "" {
		fmt.Fprintf(w, "revision %s\n\n", p.Revision)
	}
	Diff(w, p.Diffs)
	if len(p.Kept) > 0 {
		fmt.Fprintf(w, "kept (the source does not prune): %s\n", strings.Join(p.Kept, ", "))
	}
	if len(p.Placement) == 0 {
		return
	}
	fmt.Fprintln(w)
	Placement(w, p.Placement, maxTasks)
	if !p.Settled {
		fmt.Fprintln(w, "(the rollout had not settled when the preview stopped following it: this is where it had got to)")
	}
}

// Placement writes where each service's new tasks would land, at most maxTasks of
// them per service, and what cannot be placed and why.
func Placement(w io.Writer, placement []*api.ServicePlacement, maxTasks int) {
	fmt.Fprintln(w, "placement")
	for _, sp := range placement {
		fmt.Fprintf(w, "  service %s\n", sp.Service)
		for _, l := range placementLines(sp, maxTasks) {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
}

// diffCounts tallies a plan for its closing summary line.
type diffCounts struct {
	stacks, stacksAdded, stacksRemoved                 int
	servicesAdded, servicesChanged, servicesRemoved    int
	resourcesAdded, resourcesChanged, resourcesRemoved int
}

func (c *diffCounts) add(d *spec.StackDiff) {
	c.stacks++
	switch d.Action {
	case spec.ActionAdd:
		c.stacksAdded++
	case spec.ActionRemove:
		c.stacksRemoved++
	}
	for _, s := range d.Services {
		count(s.Action, &c.servicesAdded, &c.servicesChanged, &c.servicesRemoved)
	}
	for _, r := range d.Resources {
		count(r.Action, &c.resourcesAdded, &c.resourcesChanged, &c.resourcesRemoved)
	}
}

func count(a spec.Action, added, changed, removed *int) {
	switch a {
	case spec.ActionAdd:
		*added++
	case spec.ActionRemove:
		*removed++
	default:
		*changed++
	}
}

// Diff writes a plan for people: one block per stack, one line per service or
// resource marked +, ~ or - (as terraform plan does), changed fields beneath as
// "path: old -> new", and for every changed service what happens to its tasks.
func Diff(w io.Writer, diffs []*spec.StackDiff) {
	if len(diffs) == 0 {
		fmt.Fprintln(w, "No differences.")
		return
	}
	var c diffCounts
	for i, d := range diffs {
		c.add(d)
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "stack %s (%s)\n", d.Stack, stackState(d.Action))
		for _, s := range d.Services {
			fmt.Fprintf(w, "  %s service %s", marker(s.Action), qualified(d.Stack, s.Name))
			if s.Action == spec.ActionChange {
				if effect := rolloutText(s.Rollout); effect != "" {
					fmt.Fprintf(w, ": %s", effect)
				}
				if len(s.Reasons) > 0 {
					fmt.Fprintf(w, " (%s)", strings.Join(s.Reasons, "; "))
				}
			}
			fmt.Fprintln(w)
			printFields(w, s.Action, s.Fields)
		}
		for _, r := range d.Resources {
			fmt.Fprintf(w, "  %s %s %s\n", marker(r.Action), r.Kind, qualified(d.Stack, r.Name))
			printFields(w, r.Action, r.Fields)
		}
	}

	stacks := Plural(c.stacks, "stack", "stacks") + " changed"
	var whole []string
	if c.stacksAdded > 0 {
		whole = append(whole, fmt.Sprintf("%d new", c.stacksAdded))
	}
	if c.stacksRemoved > 0 {
		whole = append(whole, fmt.Sprintf("%d removed", c.stacksRemoved))
	}
	if len(whole) > 0 {
		stacks += " (" + strings.Join(whole, ", ") + ")"
	}
	fmt.Fprintf(w, "%s: %s to add, %d to change, %d to remove; %s to add, %d to change, %d to remove\n",
		stacks,
		Plural(c.servicesAdded, "service", "services"), c.servicesChanged, c.servicesRemoved,
		Plural(c.resourcesAdded, "resource", "resources"), c.resourcesChanged, c.resourcesRemoved)
}

func printFields(w io.Writer, action spec.Action, fields []spec.FieldChange) {
	for _, f := range fields {
		switch action {
		case spec.ActionAdd:
			fmt.Fprintf(w, "      %s: %s\n", f.Path, fieldValue(f.New))
		case spec.ActionRemove:
			fmt.Fprintf(w, "      %s: %s\n", f.Path, fieldValue(f.Old))
		default:
			fmt.Fprintf(w, "      %s: %s -> %s\n", f.Path, fieldValue(f.Old), fieldValue(f.New))
		}
	}
}

// fieldValue keeps every field on one line, so that the plan stays one line per change
// and grep-able.
func fieldValue(v string) string {
	if v == "" {
		return "(none)"
	}
	if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return strconv.Quote(v)
	}
	return v
}

func marker(a spec.Action) string {
	switch a {
	case spec.ActionAdd:
		return "+"
	case spec.ActionRemove:
		return "-"
	default:
		return "~"
	}
}

func stackState(a spec.Action) string {
	switch a {
	case spec.ActionAdd:
		return "new"
	case spec.ActionRemove:
		return "removed"
	default:
		return "changed"
	}
}

func rolloutText(r spec.Rollout) string {
	switch r {
	case spec.RolloutReplace:
		return "tasks will be replaced"
	case spec.RolloutScale:
		return "scale only"
	case spec.RolloutNone:
		return "no task restarts"
	default:
		return string(r)
	}
}

// qualified gives a stack object the name it has in the cluster (`<stack>_<name>`), the
// one `berth service ls` shows, whether the diff named it short or in full.
func qualified(stack, name string) string {
	if strings.HasPrefix(name, stack+"_") {
		return name
	}
	return spec.FullName(stack, name)
}

// placementLines describe the service's placement for people, one line each: every new task
// and its node (at most max of them, then how many more), the tasks that stop, those
// that cannot be placed and why, and how the update would end when it does not
// complete.
func placementLines(sp *api.ServicePlacement, max int) []string {
	var out []string
	for i, t := range sp.Tasks {
		if i == max {
			out = append(out, fmt.Sprintf("... and %s (-o json lists every one)", Plural(len(sp.Tasks)-i, "other task", "other tasks")))
			break
		}
		name := sp.Service
		if t.Slot > 0 {
			name = fmt.Sprintf("%s.%d", sp.Service, t.Slot)
		}
		switch {
		case t.From != "":
			out = append(out, fmt.Sprintf("%s -> %s (moves from %s)", name, t.Node, t.From))
		case t.Replaces:
			out = append(out, fmt.Sprintf("%s -> %s (replaces the running task)", name, t.Node))
		default:
			out = append(out, fmt.Sprintf("%s -> %s (new)", name, t.Node))
		}
	}
	if sp.Stopped > 0 {
		out = append(out, Plural(sp.Stopped, "task", "tasks")+" stop")
	}
	for _, u := range sp.Unplaced {
		out = append(out, fmt.Sprintf("! %s cannot be placed: %s", Plural(u.Count, "task", "tasks"), u.Reason))
	}
	if sp.Update != "" {
		out = append(out, "! the rolling update would end "+sp.Update)
	}
	return out
}

// Plural is "1 task", "2 tasks".
func Plural(n int, single, multi string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, single)
	}
	return fmt.Sprintf("%d %s", n, multi)
}

// Prefixed returns a writer that starts every line written through it with prefix:
// a git push's remote: lines carry berth's name.
func Prefixed(w io.Writer, prefix string) io.Writer {
	return &prefixWriter{w: w, prefix: prefix, lineStart: true}
}

type prefixWriter struct {
	w         io.Writer
	prefix    string
	lineStart bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	out := make([]byte, 0, len(b)+len(p.prefix))
	for _, c := range b {
		if p.lineStart {
			out = append(out, p.prefix...)
		}
		out = append(out, c)
		p.lineStart = c == '\n'
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
