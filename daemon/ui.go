package daemon

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/api/server"
	"github.com/berthd/berth/cluster/ui"
)

// UIToken implements server.Backend: the link names this manager, which alone holds
// the token.
func (n *Node) UIToken(_ context.Context) (*api.UITokenResponse, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	token, expires, err := m.ui.IssueToken()
	if err != nil {
		return nil, err
	}
	link := url.URL{Scheme: "https", Host: n.metaCopy().AdvertiseAddr, Path: ui.Prefix + "login", RawQuery: url.Values{"token": {token}}.Encode()}
	return &api.UITokenResponse{URL: link.String(), ExpiresAt: expires}, nil
}

// dashboard is the web dashboard this manager serves on its port, reading the
// cluster through the node as the API does.
func (n *Node) dashboard(sessions *ui.Sessions) (http.Handler, error) {
	h, err := ui.New(n, ui.Options{Sessions: sessions, ClusterID: func() string { return n.Status().ClusterID },
		StatusCode: server.StatusCode, Logger: n.logger.With("api", "ui")})
	if err != nil {
		return nil, fmt.Errorf("the web dashboard: %w", err)
	}
	return h, nil
}
