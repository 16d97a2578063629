package api_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api"
)

func TestConnectErrors(t *testing.T) {
	dir := t.TempDir()
	c, err := api.New("unix://" + filepath.Join(dir, "none.sock"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Info(context.Background())
	var ce *api.ConnectError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "is `berth daemon` running?") {
		t.Errorf("no daemon: %v", err)
	}
	if _, err := api.New("tcp-without-port"); err == nil {
		t.Error("a host without a port was accepted")
	}
	if _, err := api.New("127.0.0.1:1"); err == nil {
		t.Error("a TCP host without TLS configuration was accepted")
	}
}
