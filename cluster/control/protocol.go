package control

import (
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
)

// settingsProtocol is the protocol in which the settings below appeared in existing
// commands. A manager of an older protocol applies such a command without them, so
// its state would part from the others': they are refused until every manager is
// upgraded, as new command types are by the store's gate.
const settingsProtocol = 2

// requireProtocol refuses what, which appeared in protocol need, while a manager the
// cluster records speaks an older protocol.
func (c *Control) requireProtocol(need int, what string) error {
	nodes, err := c.st.State().ReadTxn().Nodes(nil)
	if err != nil {
		return err
	}
	var managers []command.Manager
	for _, nd := range nodes {
		if nd.Role == model.RoleManager {
			managers = append(managers, command.ManagerOf(nd))
		}
	}
	return command.CheckSince(need, what, managers)
}

// sourceAddSettings refuses an added source's settings of settingsProtocol while a
// manager is older.
func (c *Control) sourceAddSettings(src *model.Source, req *api.SourceAddRequest) error {
	if len(src.Notify) == 0 && src.CommitStatus == nil && len(req.AgeKey) == 0 {
		return nil
	}
	return c.requireProtocol(settingsProtocol, "source add --notify, --commit-status or --age-key-file")
}

// sourceUpdateSettings is sourceAddSettings for `source update`.
func (c *Control) sourceUpdateSettings(req *api.SourceUpdateRequest) error {
	if req.Notify == nil && req.AgeKey == nil && !req.RemoveAgeKey {
		return nil
	}
	return c.requireProtocol(settingsProtocol, "source update --notify, --commit-status or --age-key-file")
}

// clusterSettings is sourceAddSettings for `swarm update`.
func (c *Control) clusterSettings(req *api.ClusterUpdateRequest) error {
	if req.Notify == nil && req.CertExpiry == nil {
		return nil
	}
	return c.requireProtocol(settingsProtocol, "swarm update --notify or --cert-expiry")
}
