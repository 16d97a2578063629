package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// errNoRuntime: the daemon runs without a container runtime (simulated agents).
var errNoRuntime = api.Refused(errors.New("this node runs no container runtime"))

// LoadImage implements server.Backend.
func (n *Node) LoadImage(ctx context.Context, r io.Reader, o api.ImageLoadOptions) (*api.ImageLoadResponse, error) {
	if o.AllNodes {
		return n.loadImageAllNodes(ctx, r)
	}
	names, err := n.loadImageHere(ctx, r)
	if err != nil {
		return nil, err
	}
	return &api.ImageLoadResponse{Images: names}, nil
}

func (n *Node) loadImageHere(ctx context.Context, r io.Reader) ([]string, error) {
	if n.cfg.LoadImage == nil {
		return nil, errNoRuntime
	}
	return n.cfg.LoadImage(ctx, r)
}

// loadsAtOnce bounds how many nodes an archive is sent to at a time.
const loadsAtOnce = 4

// loadImageAllNodes keeps the archive in a file under the data dir, for it is read
// once per node, and sends it to every node but this one through its node port.
func (n *Node) loadImageAllNodes(ctx context.Context, r io.Reader) (*api.ImageLoadResponse, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, fmt.Errorf("loading an image into all nodes needs a manager: %w", err)
	}
	nodes, err := m.state().ReadTxn().Nodes(nil)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(string(n.dir), "image-load-*.tar")
	if err != nil {
		return nil, fmt.Errorf("keep the archive: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	size, err := io.Copy(f, r)
	if err != nil {
		return nil, fmt.Errorf("receive the archive: %w", err)
	}
	self := n.Status().NodeID
	results := make([]api.NodeImageLoad, len(nodes))
	sem := make(chan struct{}, loadsAtOnce)
	var wg sync.WaitGroup
	for i, nd := range nodes {
		results[i] = api.NodeImageLoad{NodeID: nd.ID, Hostname: nd.Hostname}
		if nd.Status.State != model.NodeReady {
			results[i].Error = fmt.Sprintf("node is %s", nd.Status.State)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			archive := io.NewSectionReader(f, 0, size)
			var names []string
			var err error
			if nd.ID == self {
				names, err = n.loadImageHere(ctx, archive)
			} else {
				names, err = n.loadImageInto(ctx, nd, archive)
			}
			if err != nil {
				results[i].Error = err.Error()
			}
			results[i].Images = names
		}()
	}
	wg.Wait()
	slices.SortFunc(results, func(a, b api.NodeImageLoad) int {
		return cmp.Or(cmp.Compare(a.Hostname, b.Hostname), cmp.Compare(a.NodeID, b.NodeID))
	})
	return &api.ImageLoadResponse{Nodes: results}, nil
}

func (n *Node) loadImageInto(ctx context.Context, nd *model.Node, archive io.Reader) ([]string, error) {
	c, done, err := n.nodeClient(nd)
	if err != nil {
		return nil, err
	}
	defer done()
	resp, err := c.LoadImage(ctx, archive, api.ImageLoadOptions{})
	if err != nil {
		return nil, err
	}
	return resp.Images, nil
}

// TaskLogs implements server.Backend: a task that ran here is read from this node's
// files; a manager finds the node of any other task and asks it.
func (n *Node) TaskLogs(ctx context.Context, ref string, o api.LogOptions, w io.Writer) error {
	m, merr := n.readyManager()
	if merr != nil {
		// A worker knows its own tasks by ID only.
		return n.localTaskLogs(ctx, ref, o, w)
	}
	t, err := m.ctl.ResolveTask(ref)
	if err != nil {
		return err
	}
	self := n.Status().NodeID
	if t.NodeID == "" {
		return fmt.Errorf("%w: task %s was never assigned to a node, so it has no logs", state.ErrNotFound, t.Name())
	}
	if t.NodeID == self {
		return n.localTaskLogs(ctx, t.ID, o, w)
	}
	node, err := m.state().ReadTxn().Node(nil, t.NodeID)
	if err != nil {
		return fmt.Errorf("task %s: its node %s: %w", t.Name(), t.NodeID, err)
	}
	c, done, err := n.nodeClient(node)
	if err != nil {
		return fmt.Errorf("task %s ran on node %s: %w", t.Name(), node.Hostname, err)
	}
	defer done()
	if err := c.TaskLogs(ctx, t.ID, o, w); err != nil {
		return fmt.Errorf("task %s ran on node %s: %w", t.Name(), node.Hostname, err)
	}
	return nil
}

func (n *Node) localTaskLogs(ctx context.Context, taskID string, o api.LogOptions, w io.Writer) error {
	if n.cfg.TaskLogs == nil {
		return errNoRuntime
	}
	err := n.cfg.TaskLogs(ctx, taskID, o, w)
	if errors.Is(err, state.ErrNotFound) {
		return fmt.Errorf("%w: no logs of task %s on this node", state.ErrNotFound, taskID)
	}
	return err
}
