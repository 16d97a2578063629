package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/berthd/berth/cli/filter"
	"github.com/berthd/berth/cli/format"
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

func printDiffJSON(w io.Writer, diffs []*spec.StackDiff) error {
	if diffs == nil {
		// An empty list, not null, so that consumers can iterate without a check.
		diffs = []*spec.StackDiff{}
	}
	return printJSON(w, diffReport{Changed: len(diffs) > 0, Stacks: diffs})
}

func joinComma(parts []string) string { return strings.Join(parts, ", ") }

func sortedStacks(stacks []*spec.Stack) []*spec.Stack {
	sorted := slices.Clone(stacks)
	slices.SortFunc(sorted, func(a, b *spec.Stack) int { return strings.Compare(a.Name, b.Name) })
	return sorted
}

// listing is how an ls or ps command prints its items: id is what -q prints, cols and
// row what --format sees, table the command's own output.
type listing[T any] struct {
	id    func(T) string
	cols  []format.Column
	row   func(T) format.Row
	table func(io.Writer, []T) error
}

// print writes the items' IDs or names one per line (-q), the rows as --format asks,
// or the command's table (no --format, or "table").
func (l listing[T]) print(w io.Writer, f format.Format, quiet bool, items []T) error {
	switch {
	case quiet:
		for _, it := range items {
			fmt.Fprintln(w, l.id(it))
		}
		return nil
	case f.Kind() == format.Default:
		return l.table(w, items)
	}
	rows := make([]format.Row, len(items))
	for i, it := range items {
		rows[i] = l.row(it)
	}
	return f.WriteRows(w, l.cols, rows)
}

// runListing is a plain ls: --format read before the daemon is asked, then fetch,
// then the listing as the flags say.
func runListing[T any](cmd *cobra.Command, host *hostFlag, opts listFlags, l listing[T], fetch func(context.Context, *api.Client) ([]T, error)) error {
	f, err := format.Parse(opts.format)
	if err != nil {
		return err
	}
	c, err := host.client()
	if err != nil {
		return err
	}
	items, err := fetch(cmd.Context(), c)
	if err != nil {
		return err
	}
	return l.print(cmd.OutOrStdout(), f, opts.quiet, items)
}

const formatUsage = "Format the output: json, table TEMPLATE or a Go template (see 'Formats and filters' in the README)"

// listFlags are the output flags of an ls command.
type listFlags struct {
	format  string
	quiet   bool
	noTrunc bool
	filters []string
}

// parse reads --format and, with parseFilters, --filter: before the managers are
// asked anything, so that a mistyped flag costs no request.
func (o *listFlags) parse(parseFilters func([]string) (filter.Args, error)) (format.Format, filter.Args, error) {
	f, err := format.Parse(o.format)
	if err != nil {
		return format.Format{}, nil, err
	}
	filters, err := parseFilters(o.filters)
	return f, filters, err
}

// register adds --format, -q, --no-trunc (with its usage, when there is one) and
// --filter (with the keys given, when there are some).
func (o *listFlags) register(cmd *cobra.Command, quiet, noTrunc string, filterKeys []string) {
	cmd.Flags().StringVar(&o.format, "format", "", formatUsage)
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, quiet)
	if noTrunc != "" {
		cmd.Flags().BoolVar(&o.noTrunc, "no-trunc", false, noTrunc)
	}
	if len(filterKeys) > 0 {
		cmd.Flags().StringArrayVarP(&o.filters, "filter", "f", nil, "Filter the output: KEY=VALUE, repeatable; keys: "+strings.Join(filterKeys, ", "))
	}
}

// formatFlag adds --format, and -o/--output as its alias: one output flag for every
// command, with the -o that berth's config, diff and deploy --dry-run had first.
func formatFlag(cmd *cobra.Command, v *string, def, usage string) {
	cmd.Flags().StringVar(v, "format", def, usage)
	cmd.Flags().StringVarP(v, "output", "o", def, "Alias of --format")
}
