package control_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/internal/memcluster"
	"github.com/berthd/berth/spec"
)

// Settings that appeared in protocol 2 inside existing commands are refused while a
// manager of protocol 1 is left (it would apply the command without them), and taken
// once it is upgraded; requests without them pass meanwhile.
func TestNewSettingsWaitForEveryManager(t *testing.T) {
	m, _ := caCluster(t)
	ctx := context.Background()
	old := memcluster.Node("m-old", nil)
	old.Hostname, old.Role = "node-2", model.RoleManager
	if _, err := m.Store.Apply(ctx, command.CmdNodeUpsert, old); err != nil {
		t.Fatal(err)
	}
	hook := &api.SourceNotifyUpdate{Add: []model.NotifyTarget{{Format: model.NotifyGeneric, URL: "https://hooks.example.com/berth"}}}
	expiry := spec.Duration(720 * 3600e9)
	refused := []struct {
		name string
		call func() error
	}{
		{"source add --notify", func() error {
			src := &model.Source{Name: "infra", Kind: model.SourceGitPush, Branch: "main"}
			src.Notify = hook.Add
			_, err := m.Control.AddSource(ctx, &api.SourceAddRequest{Source: src})
			return err
		}},
		{"swarm update --cert-expiry", func() error {
			_, err := m.Control.UpdateCluster(ctx, &api.ClusterUpdateRequest{CertExpiry: &expiry})
			return err
		}},
		{"swarm update --notify", func() error {
			_, err := m.Control.UpdateCluster(ctx, &api.ClusterUpdateRequest{Notify: hook})
			return err
		}},
	}
	for _, r := range refused {
		t.Run(r.name, func(t *testing.T) {
			err := r.call()
			if !errors.Is(err, command.ErrProtocol) || !strings.Contains(err.Error(), "manager node-2 runs an older berth (protocol 1)") {
				t.Fatalf("err = %v, want a refusal naming node-2", err)
			}
		})
	}
	if _, err := m.Control.AddSource(ctx, &api.SourceAddRequest{Source: &model.Source{Name: "plain", Kind: model.SourceGitPush, Branch: "main"}}); err != nil {
		t.Fatalf("a source without new settings during the upgrade: %v", err)
	}

	old.Engine = model.NodeEngine{Version: "next", Protocol: command.Version}
	if _, err := m.Store.Apply(ctx, command.CmdNodeUpsert, old); err != nil {
		t.Fatal(err)
	}
	for _, r := range refused {
		if err := r.call(); err != nil {
			t.Errorf("%s once every manager is upgraded: %v", r.name, err)
		}
	}
}
