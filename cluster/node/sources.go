package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/berthd/berth/applier/webhook"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/state"
)

// hookSources is what the webhook receiver needs of a manager: any manager answers a
// webhook, and its sync request goes through raft to the leader's applier.
type hookSources struct{ n *Node }

// WebhookTarget implements webhook.Sources.
func (h hookSources) WebhookTarget(_ context.Context, name string) ([]byte, string, error) {
	m, err := h.n.readyManager()
	if err != nil {
		return nil, "", err
	}
	tx := m.state().ReadTxn()
	src, err := tx.Source(nil, name)
	if errors.Is(err, state.ErrNotFound) || (err == nil && src.WebhookSecretRef == "") {
		return nil, "", fmt.Errorf("source %s: %w", name, webhook.ErrUnknownSource)
	}
	if err != nil {
		return nil, "", err
	}
	sec, err := tx.Secret(nil, src.WebhookSecretRef)
	if err != nil {
		return nil, "", fmt.Errorf("source %s: its webhook secret: %w", name, err)
	}
	return sec.Data, src.Branch, nil
}

// RequestSync implements webhook.Sources. The revision the hook names is not passed
// on: the applier fetches the branch's tip, which is at least as new.
func (h hookSources) RequestSync(ctx context.Context, name, _ string) error {
	_, err := h.n.UpdateSource(ctx, name, &api.SourceUpdateRequest{RequestSync: true})
	return err
}
