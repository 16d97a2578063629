package api

import (
	"context"
	"time"

	"github.com/berthd/berth/cluster/model"
)

// CARotation is the progress of a root CA rotation: how many of the cluster's nodes
// have a certificate of the new root, and whether the cluster has ended the
// rotation (it trusts only the new root).
type CARotation struct {
	Rotated, Nodes int
	Done           bool
}

// caRotationOf counts the nodes whose certificate chains to the root with digest.
func caRotationOf(cl *model.Cluster, nodes []*model.Node, digest string) CARotation {
	p := CARotation{Nodes: len(nodes)}
	for _, nd := range nodes {
		if nd.CertRoot == digest {
			p.Rotated++
		}
	}
	p.Done = cl.RootRotation == nil && p.Rotated == p.Nodes
	return p
}

// WaitCARotation follows the rotation to the root with digest until it is done,
// calling progress with every new count. Nodes that are down hold it up: they
// rotate when they come back, or end it when removed.
func (c *Client) WaitCARotation(ctx context.Context, digest string, progress func(CARotation)) error {
	var (
		last  CARotation
		index uint64
	)
	for first := true; ; first = false {
		nodes, meta, err := c.Nodes(ctx, Query{Index: index, Wait: 30 * time.Second})
		if err != nil {
			return err
		}
		index = meta.Index
		cl, err := c.Cluster(ctx)
		if err != nil {
			return err
		}
		p := caRotationOf(cl, nodes, digest)
		if first || p != last {
			progress(p)
			last = p
		}
		if p.Done {
			return nil
		}
	}
}
