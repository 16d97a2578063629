package command

import (
	"errors"
	"fmt"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

type (
	// CARotate replaces the cluster's root CA (`berth swarm ca --rotate`). The
	// proposer made the new root, its cross-signed copy and the re-pinned tokens;
	// it applies only over the root it read, so two rotations at once cannot both
	// believe they won.
	CARotate struct {
		ExpectRootCACert string           `json:"expect_root_ca_cert"`
		RootCACert       string           `json:"root_ca_cert"`
		RootCAKey        string           `json:"root_ca_key"`
		CrossSigned      string           `json:"cross_signed"`
		Digest           string           `json:"digest"`
		JoinTokens       model.JoinTokens `json:"join_tokens"`
		At               time.Time        `json:"at"`
	}
	// NodeCert records the certificate a node was issued: its serial and the
	// digest of the root that signed it.
	NodeCert struct {
		ID     string `json:"id"`
		Serial string `json:"serial"`
		Root   string `json:"root"`
	}
)

func applyCARotate(tx *state.WriteTxn, r *CARotate) error {
	cur, err := tx.Cluster(nil)
	if err != nil {
		return err
	}
	if cur.RootCACert != r.ExpectRootCACert {
		return fmt.Errorf("the root CA of cluster %s changed since this rotation was prepared: %w", cur.ID, state.ErrConflict)
	}
	if cur.RootRotation != nil {
		return fmt.Errorf("a root CA rotation of cluster %s is already under way since %s: it ends when every node has a certificate of the new root (remove nodes that are down for good with `berth node rm`): %w",
			cur.ID, cur.RootRotation.StartedAt.Format(time.RFC3339), state.ErrConflict)
	}
	next := cur.Copy()
	next.RootRotation = &model.RootRotation{PrevCACert: cur.RootCACert, CrossSigned: r.CrossSigned, Digest: r.Digest, StartedAt: r.At}
	next.RootCACert, next.RootCAKey, next.JoinTokens = r.RootCACert, r.RootCAKey, r.JoinTokens
	return tx.UpsertCluster(next)
}

func applyNodeCert(tx *state.WriteTxn, c *NodeCert) error {
	nd, err := tx.Node(nil, c.ID)
	if err != nil {
		return err
	}
	next := nd.Copy()
	next.CertSerial, next.CertRoot = c.Serial, c.Root
	if err := tx.UpsertNode(next); err != nil {
		return err
	}
	return endRotationIfDone(tx)
}

func applyNodeRemove(tx *state.WriteTxn, r *NodeRemove) error {
	if err := tx.DeleteNode(r.ID); err != nil {
		return err
	}
	// Removing the last node of the old root (one that was down for good) ends
	// a rotation too.
	return endRotationIfDone(tx)
}

// endRotationIfDone clears the cluster's rotation once every node has a
// certificate of the new root: from then on the previous root is trusted no more.
func endRotationIfDone(tx *state.WriteTxn) error {
	cl, err := tx.Cluster(nil)
	if errors.Is(err, state.ErrNotFound) {
		// No cluster row yet (the first node of a new cluster): nothing rotates.
		return nil
	}
	if err != nil || cl.RootRotation == nil {
		return err
	}
	nodes, err := tx.Nodes(nil)
	if err != nil {
		return err
	}
	for _, nd := range nodes {
		if nd.CertRoot != cl.RootRotation.Digest {
			return nil
		}
	}
	next := cl.Copy()
	next.RootRotation = nil
	return tx.UpsertCluster(next)
}
