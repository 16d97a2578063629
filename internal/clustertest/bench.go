package clustertest

import (
	"context"
	"fmt"
	"os"

	"github.com/berthd/berth/cluster/api"
)

// BenchDir makes a benchmark's scratch dir (berth-bench-<name>-* in the temp dir)
// and, when bin is empty, builds berth into it. remove deletes the dir.
func BenchDir(ctx context.Context, name, bin string) (root, berth string, remove func(), err error) {
	root, err = os.MkdirTemp("", "berth-bench-"+name+"-")
	if err != nil {
		return "", "", nil, err
	}
	remove = func() { os.RemoveAll(root) }
	if bin == "" {
		if bin, err = Build(ctx, root); err != nil {
			remove()
			return "", "", nil, err
		}
	}
	return root, bin, remove, nil
}

// StartInitialized starts d and initializes a cluster on it.
func StartInitialized(ctx context.Context, d *Daemon) (*api.InitResponse, error) {
	if err := d.Start(ctx); err != nil {
		return nil, err
	}
	init, err := d.Client().Init(ctx, api.InitRequest{})
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	return init, nil
}
