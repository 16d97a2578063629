package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/spec"
)

// Output formats.
const (
	outputText = "text"
	outputYAML = "yaml"
	outputJSON = "json"
)

func checkOutput(got string, allowed ...string) error {
	if slices.Contains(allowed, got) {
		return nil
	}
	return fmt.Errorf("unknown output format %q: use %s", got, strings.Join(allowed, " or "))
}

// printProblems writes one "<kind>: <problem>" line per problem, the form scripts grep.
func printProblems[P any](w io.Writer, kind string, problems []P) {
	for _, p := range problems {
		fmt.Fprintf(w, "%s: %v\n", kind, p)
	}
}

func printYAML(w io.Writer, v any) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encoding YAML: %w", err)
	}
	return enc.Close()
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encoding JSON: %w", err)
	}
	return nil
}

// diffReport is the JSON form of `berth diff`: "changed" answers the question
// without a look at the details, as the exit code does.
type diffReport struct {
	Changed bool              `json:"changed"`
	Stacks  []*spec.StackDiff `json:"stacks"`
}

// planReport is the JSON form of a live `berth diff` / `stack deploy --dry-run`: the
// diff report with the revision planned and where tasks would land.
type planReport struct {
	diffReport
	Revision  string                  `json:"revision,omitempty"`
	Kept      []string                `json:"kept,omitempty"`
	Placement []*api.ServicePlacement `json:"placement"`
	Settled   bool                    `json:"settled"`
}

func printPlanJSON(w io.Writer, p *api.PlanResponse) error {
	r := planReport{diffReport: diffReport{Changed: len(p.Diffs) > 0, Stacks: p.Diffs},
		Revision: p.Revision, Kept: p.Kept, Placement: p.Placement, Settled: p.Settled}
	if r.Stacks == nil {
		r.Stacks = []*spec.StackDiff{}
	}
	if r.Placement == nil {
		r.Placement = []*api.ServicePlacement{}
	}
	return printJSON(w, r)
}

// maxPlacementLines is how many new tasks of a service a text plan lists: a service
// of thousands of replicas would otherwise fill the terminal.
const maxPlacementLines = 50

// printPlan prints a live plan: the diff, then a placement line per new task, and
// what cannot be placed.
func printPlan(w io.Writer, p *api.PlanResponse) {
	if p.Revision != "" {
		fmt.Fprintf(w, "revision %s\n\n", p.Revision)
	}
	printDiff(w, p.Diffs)
	if len(p.Kept) > 0 {
		fmt.Fprintf(w, "kept (the source does not prune): %s\n", joinComma(p.Kept))
	}
	if len(p.Placement) == 0 {
		return
	}
	fmt.Fprintln(w, "\nplacement")
	for _, sp := range p.Placement {
		fmt.Fprintf(w, "  service %s\n", sp.Service)
		for _, l := range sp.Lines(maxPlacementLines) {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
	if !p.Settled {
		fmt.Fprintln(w, "(the rollout had not settled when the preview stopped following it: this is where it had got to)")
	}
}

func printDiffJSON(w io.Writer, diffs []*spec.StackDiff) error {
	if diffs == nil {
		// An empty list, not null, so that consumers can iterate without a check.
		diffs = []*spec.StackDiff{}
	}
	return printJSON(w, diffReport{Changed: len(diffs) > 0, Stacks: diffs})
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

// printDiff writes a plan for people: one block per stack, one line per service or
// resource marked +, ~ or - (as terraform plan does), changed fields beneath as
// "path: old -> new", and for every changed service what happens to its tasks.
func printDiff(w io.Writer, diffs []*spec.StackDiff) {
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

	stacks := api.Plural(c.stacks, "stack", "stacks") + " changed"
	var whole []string
	if c.stacksAdded > 0 {
		whole = append(whole, fmt.Sprintf("%d new", c.stacksAdded))
	}
	if c.stacksRemoved > 0 {
		whole = append(whole, fmt.Sprintf("%d removed", c.stacksRemoved))
	}
	if len(whole) > 0 {
		stacks += " (" + joinComma(whole) + ")"
	}
	fmt.Fprintf(w, "%s: %s to add, %d to change, %d to remove; %s to add, %d to change, %d to remove\n",
		stacks,
		api.Plural(c.servicesAdded, "service", "services"), c.servicesChanged, c.servicesRemoved,
		api.Plural(c.resourcesAdded, "resource", "resources"), c.resourcesChanged, c.resourcesRemoved)
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

func joinComma(parts []string) string { return strings.Join(parts, ", ") }

func sortedStacks(stacks []*spec.Stack) []*spec.Stack {
	sorted := slices.Clone(stacks)
	slices.SortFunc(sorted, func(a, b *spec.Stack) int { return strings.Compare(a.Name, b.Name) })
	return sorted
}

// printListing is what an `ls` command prints: the items as JSON (--format json),
// their IDs or names one per line (-q), or the command's table.
func printListing[T any](w io.Writer, format string, quiet bool, items []T, id func(T) string, table func(io.Writer, []T)) error {
	switch {
	case format == formatJSON:
		return printJSON(w, items)
	case quiet:
		for _, it := range items {
			fmt.Fprintln(w, id(it))
		}
		return nil
	}
	table(w, items)
	return nil
}
