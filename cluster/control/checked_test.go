package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/api/server"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// deployOnly serves the API's stack deploys with a manager's Control; a test calls
// nothing else of the backend.
type deployOnly struct {
	server.Backend
	c *control.Control
}

func (d deployOnly) Status() api.Status { return api.Status{Phase: api.PhaseManager} }

func (d deployOnly) DeployStack(ctx context.Context, req *api.StackDeployRequest) (*api.StackDeployResponse, error) {
	return d.c.DeployStack(ctx, req)
}

// A stack a client posts to /v1/stacks is decoded by the API server and checked in
// full by the manager, although syncs of stacks the manager loaded itself skip that
// check: it is refused with 400 naming the field, and nothing is stored. A body that
// claims the stack was checked is refused as an unknown field.
func TestClientStacksAreValidated(t *testing.T) {
	_, m := oneManager(t)
	srv := server.NewLocalHandler(deployOnly{c: m.Control})
	for name, tc := range map[string]struct {
		change func(*api.StackDeployRequest) any
		want   string
	}{
		"mode": {func(r *api.StackDeployRequest) any {
			r.Stack.Services["api"].Deploy.Mode = "globl"
			return r
		}, `service api, deploy.mode: mode \"globl\" is not valid`},
		"image": {func(r *api.StackDeployRequest) any {
			r.Stack.Services["api"].Image = "app\n:1"
			return r
		}, "service api, image: image"},
		"service name": {func(r *api.StackDeployRequest) any {
			s := r.Stack.Services["api"]
			delete(r.Stack.Services, "api")
			s.Name = "../../etc/passwd"
			r.Stack.Services[s.Name] = s
			return r
		}, "invalid service name"},
		"claims it was checked": {func(r *api.StackDeployRequest) any {
			r.Stack.Services["api"].Deploy.Mode = "globl"
			return map[string]any{"stack": r.Stack, "secret_data": r.SecretData, "checked": true}
		}, `unknown field \"checked\"`},
	} {
		req := stack("app:1", "x")
		body, err := json.Marshal(tc.change(req))
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/stacks", bytes.NewReader(body)))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s: %d %s, want 400 saying %s", name, rec.Code, rec.Body, tc.want)
		}
		if _, err := m.Store.State().ReadTxn().Stack(nil, "web"); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("%s: the refused stack was stored: %v", name, err)
		}
	}
}

// The fast path that skips spec.Validate takes a spec.Checked, which only spec.Load
// in this process makes: nothing a client sends decodes into one, the requests the
// API decodes hold none, and the zero Checked is refused.
func TestLoadedStackCommandTakesOnlyLoadedStacks(t *testing.T) {
	var smuggled struct{ Stack spec.Checked }
	if err := json.Unmarshal([]byte(`{"Stack": {"name": "web", "stack": {"name": "web"}, "services": {}}}`), &smuggled); err != nil {
		t.Fatal(err)
	}
	if smuggled.Stack.Stack() != nil {
		t.Fatalf("JSON decoded into a spec.Checked: %+v", smuggled.Stack.Stack())
	}
	if _, err := control.LoadedStackCommand(smuggled.Stack, false, model.NewID); !errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("the zero Checked: %v, want a bad request", err)
	}
	for _, req := range []any{api.StackDeployRequest{}, api.PlanRequest{}} {
		if path := findType(reflect.TypeOf(req), reflect.TypeFor[spec.Checked](), map[reflect.Type]bool{}); path != "" {
			t.Errorf("%T holds a spec.Checked at %s: a client could reach the fast path", req, path)
		}
	}

	loaded, _, err := spec.LoadChecked(context.Background(), spec.LoadOptions{Stack: "web",
		Files: []spec.File{{Name: "compose.yaml", Content: []byte("services:\n  api:\n    image: app:1\n")}}})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := control.LoadedStackCommand(loaded, false, model.NewID)
	if err != nil {
		t.Fatal(err)
	}
	full, err := control.StackCommand(api.NewStackDeployRequest(loaded.Stack(), false), model.NewID)
	if err != nil {
		t.Fatal(err)
	}
	if fast.Stack.SpecHash != full.Stack.SpecHash {
		t.Errorf("the fast path hashes %s, the full one %s", fast.Stack.SpecHash, full.Stack.SpecHash)
	}
}

// findType returns the path to a value of type want inside a value of type t, or "".
func findType(t, want reflect.Type, seen map[reflect.Type]bool) string {
	if t == want {
		return "."
	}
	if seen[t] {
		return ""
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		if t.Kind() == reflect.Map {
			if p := findType(t.Key(), want, seen); p != "" {
				return "[key]" + p
			}
		}
		if p := findType(t.Elem(), want, seen); p != "" {
			return "[]" + p
		}
	case reflect.Struct:
		for i := range t.NumField() {
			if p := findType(t.Field(i).Type, want, seen); p != "" {
				return "." + t.Field(i).Name + p
			}
		}
	}
	return ""
}
