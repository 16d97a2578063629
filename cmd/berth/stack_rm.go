package main

import (
	"context"
	"fmt"
	"io"

	"github.com/berthd/berth/cluster/api"
)

// removeStack removes a stack and, unless detach, waits until its tasks stopped,
// saying how many still run when that changes.
func removeStack(ctx context.Context, c *api.Client, w io.Writer, name string, detach bool) error {
	var ids map[string]bool
	if !detach {
		svcs, _, err := c.Services(ctx, api.ServiceFilter{Stack: name}, api.Query{})
		if err != nil {
			return err
		}
		ids = map[string]bool{}
		for _, s := range svcs {
			ids[s.ID] = true
		}
	}
	if _, err := c.RemoveStack(ctx, name); err != nil {
		return err
	}
	fmt.Fprintf(w, "Removing stack %s\n", name)
	if detach {
		return nil
	}
	last := -1
	err := c.WaitTasksStopped(ctx, ids, func(live int) {
		if live != last && live > 0 {
			fmt.Fprintf(w, "waiting for %d task(s) of stack %s to stop\n", live, name)
		}
		last = live
	})
	if err != nil {
		return fmt.Errorf("stack %s was removed, but waiting for its tasks to stop failed: %w", name, err)
	}
	fmt.Fprintf(w, "Stack %s removed: its tasks have stopped.\n", name)
	return nil
}
