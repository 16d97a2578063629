package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/cluster/api"
)

// runInspect is what every `inspect` command does: fetch each named object, then print
// them all as one JSON array (like `docker inspect`) or, with --pretty, one block each.
func runInspect[T any](cmd *cobra.Command, host *hostFlag, refs []string, format string, pretty bool,
	fetch func(ctx context.Context, c *api.Client, ref string) (T, error), printPretty func(io.Writer, T),
) error {
	if err := checkFormat(format); err != nil {
		return err
	}
	if pretty && format != "" {
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
	if !pretty {
		return printJSON(w, objects)
	}
	for i, o := range objects {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printPretty(w, o)
	}
	return nil
}
