package daemon

import (
	"github.com/berthd/berth/cluster/model"
)

// newID returns a random ID (model.NewID). Node IDs are made by the manager that
// admits the node (init: the node itself), never by the joiner, so that a joiner
// cannot choose another node's identity.
func newID() string { return model.NewID() }
