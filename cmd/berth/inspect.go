package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/cli/format"
	"github.com/berthd/berth/cluster/api"
)

// runInspect is what every `inspect` command does: fetch each named object, then print
// them all as one JSON array (like `docker inspect`), each through the --format
// template, or, with --pretty, one block each.
func runInspect[T any](cmd *cobra.Command, host *hostFlag, refs []string, tmpl string, pretty bool,
	fetch func(ctx context.Context, c *api.Client, ref string) (T, error), printPretty func(io.Writer, T),
) error {
	f, err := format.Parse(tmpl)
	if err != nil {
		return err
	}
	if pretty && tmpl != "" {
		return errors.New("--pretty and --format are mutually exclusive")
	}
	c, err := host.client()
	if err != nil {
		return err
	}
	objects := make([]T, 0, len(refs))
	for _, ref := range refs {
		o, err := fetch(cmd.Context(), c, ref)
		if err != nil {
			return err
		}
		objects = append(objects, o)
	}
	w := cmd.OutOrStdout()
	switch {
	case pretty:
		for i, o := range objects {
			if i > 0 {
				fmt.Fprintln(w)
			}
			printPretty(w, o)
		}
		return nil
	case f.Kind() == format.Default || f.Kind() == format.JSON:
		return printJSON(w, objects)
	}
	for _, o := range objects {
		if err := f.WriteObject(w, o); err != nil {
			return err
		}
	}
	return nil
}
