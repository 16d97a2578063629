package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/cli/filter"
	"github.com/berthd/berth/cli/format"
	"github.com/berthd/berth/cluster/api"
)

func newEventsCommand(host *hostFlag) *cobra.Command {
	var (
		since, until, tmpl string
		filters            []string
	)
	cmd := &cobra.Command{
		Use:   "events [--since TIME] [--until TIME] [-f KEY=VALUE]... [--format FORMAT]",
		Short: "Show the cluster's events as they happen",
		Long: `Show what happens in the cluster, as 'docker events': services created, updated,
rolled back and removed, tasks changing state (with their error), nodes joining, going
down, ready or drained, sources syncing (with the result and revision), pushed and
drifting. Events come from changes committed through raft: every manager tells the
same ones, and each keeps the last 10,000. Without --until, the command follows
until interrupted.

Filters: type (cluster, node, service, source, task), action, name, id.`,
		Example: `  berth events --since 10m --filter type=task
  berth events --since 2026-12-07T10:00:00Z --until 2026-12-07T11:00:00Z --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := format.Parse(tmpl)
			if err != nil {
				return err
			}
			args, err := filter.Parse(filters, "action", "id", "name", "type")
			if err != nil {
				return err
			}
			if err := args.CheckValues("type", api.EventTypes...); err != nil {
				return err
			}
			now := time.Now()
			ef := api.EventFilter{Types: args["type"]}
			if ef.Since, err = logTime("since", since, now); err != nil {
				return err
			}
			if ef.Until, err = logTime("until", until, now); err != nil {
				return err
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			return followEvents(cmd.Context(), c, ef, func(e *api.Event) error {
				if !args.Match("action", filter.Equal(e.Action)) || !args.Match("name", filter.Equal(e.Name)) || !args.Match("id", filter.Prefix(e.ID)) {
					return nil
				}
				return printEvent(cmd.OutOrStdout(), f, e)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&since, "since", "", "Show events since a time (2026-12-07T10:00:00Z, 2026-12-07, a Unix time) or for a while (42m)")
	fl.StringVar(&until, "until", "", "Stop at a time (or a while ago, 42m) instead of following")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Filter the events: KEY=VALUE, repeatable; keys: action, id, name, type")
	fl.StringVar(&tmpl, "format", "", "Format the output: json (one object per line) or a Go template ({{.Type}} {{.Action}} {{.Name}})")
	return cmd
}

// followEvents hands each event to show, in order, until f.Until passes (or ctx
// ends, without --until).
func followEvents(ctx context.Context, c *api.Client, f api.EventFilter, show func(*api.Event) error) error {
	var index uint64
	for {
		wait := 30 * time.Second
		if !f.Until.IsZero() {
			if left := time.Until(f.Until); left <= 0 {
				wait = 0 // one last look at what is kept
			} else {
				wait = min(wait, left)
			}
		}
		events, meta, err := c.Events(ctx, f, api.Query{Index: index, Wait: wait})
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil // interrupted: following ends there
		}
		if err != nil {
			return err
		}
		for _, e := range events {
			if err := show(e); err != nil {
				return err
			}
		}
		index = max(index, meta.Index)
		if wait == 0 {
			return nil
		}
	}
}

// printEvent writes one event as Docker does: time, type, action, ID, and the name
// and attributes in brackets.
func printEvent(w io.Writer, f format.Format, e *api.Event) error {
	switch f.Kind() {
	case format.JSON:
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encoding JSON: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case format.Template:
		return f.WriteObject(w, e)
	}
	attrs := []string{}
	if e.Name != "" {
		attrs = append(attrs, "name="+e.Name)
	}
	for _, k := range slices.Sorted(maps.Keys(e.Attributes)) {
		if e.Attributes[k] != "" {
			attrs = append(attrs, k+"="+e.Attributes[k])
		}
	}
	_, err := fmt.Fprintf(w, "%s %s %s %s (%s)\n", e.Time.Local().Format(time.RFC3339Nano), e.Type, e.Action, e.ID, strings.Join(attrs, ", "))
	return err
}
