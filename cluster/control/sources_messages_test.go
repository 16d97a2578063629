package control_test

import (
	"context"
	"errors"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// The refusals of source requests are sentences about the source that say what to do,
// with neither the raft entry nor the sentinel's name in them, and still match the
// sentinels callers check.
func TestSourceRefusalsSayWhatToDo(t *testing.T) {
	_, m := oneManager(t)
	ctx := context.Background()
	ctl := control.New(control.Config{Store: m.Store})
	add := func() error {
		_, err := ctl.AddSource(ctx, &api.SourceAddRequest{Source: &model.Source{Name: "zz", Kind: model.SourceDir, URL: "/srv/stacks"}})
		return err
	}
	if err := add(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		call     func() error
		sentinel error
		want     string
	}{
		{"add a name taken", add, state.ErrConflict,
			"source zz already exists; remove it first (berth source rm zz) or choose another name"},
		{"remove a source that is not", func() error { _, err := ctl.RemoveSource(ctx, "nosuch", false); return err }, state.ErrNotFound,
			"no such source: nosuch (berth source ls lists them)"},
		{"inspect a source that is not", func() error { _, _, err := ctl.Source(ctx, "nosuch", api.Query{}); return err }, state.ErrNotFound,
			"no such source: nosuch (berth source ls lists them)"},
		{"a CA for a source that is not", func() error { return updateCA(ctl, "nosuch") }, state.ErrNotFound,
			"no such source: nosuch (berth source ls lists them)"},
		{"a CA for a folder source", func() error { return updateCA(ctl, "zz") }, api.ErrBadRequest,
			"source zz is a dir source: --ca-file is for --url sources (https://)"},
		{"a URL berth cannot fetch", func() error {
			_, err := ctl.AddSource(ctx, &api.SourceAddRequest{Source: &model.Source{Name: "x", Kind: model.SourceGitPull, URL: "ftp://x/y"}})
			return err
		}, api.ErrBadRequest,
			`source x: unsupported Git URL "ftp://x/y": berth fetches Git over https://, http://, ssh://, git:// and file:// URLs and git@host:path, not ftp://`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.sentinel) || err.Error() != tt.want {
				t.Fatalf("err = %v\nwant %q, matching %v", err, tt.want, tt.sentinel)
			}
		})
	}
}

func updateCA(ctl *control.Control, name string) error {
	ca := "-----BEGIN CERTIFICATE-----"
	_, err := ctl.UpdateSource(context.Background(), name, &api.SourceUpdateRequest{CA: &ca})
	return err
}
