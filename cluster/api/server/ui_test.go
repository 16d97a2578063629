package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
)

// uiBackend makes dashboard login links.
type uiBackend struct{ *backend }

func (uiBackend) UIToken(context.Context) (*api.UITokenResponse, error) {
	return &api.UITokenResponse{URL: "https://m1:4270/ui/login?token=t", ExpiresAt: time.Unix(300, 0).UTC()}, nil
}

// A dashboard login link is made on the socket only: an admin certificate, which
// logs in to the dashboard itself, gets none over the port.
func TestUITokenOnTheSocketOnly(t *testing.T) {
	b := uiBackend{newBackend(t)}
	ctx := context.Background()
	got, err := serveLocal(t, b).UIToken(ctx)
	if err != nil || got.URL != "https://m1:4270/ui/login?token=t" {
		t.Fatalf("on the socket: %+v, %v", got, err)
	}

	p := newPKI(t)
	cert, _ := p.admin(t)
	admin := remoteClient(t, serveRemote(t, b, p), p.root.Cert(), &cert)
	if _, err := admin.UIToken(ctx); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("admin over the port: %v, want no such endpoint", err)
	}
}
