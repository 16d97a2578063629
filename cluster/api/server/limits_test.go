package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/api/server"
	"github.com/berthd/berth/spec"
)

// countingBody reads a request body to its end and remembers how much it read.
type countingBody struct{ n int64 }

func (c *countingBody) read(r io.Reader) error {
	n, err := io.Copy(io.Discard, r)
	c.n += n
	return err
}

func (b *backend) LoadImage(_ context.Context, r io.Reader, _ api.ImageLoadOptions) (*api.ImageLoadResponse, error) {
	return &api.ImageLoadResponse{}, b.loaded.read(r)
}

func serve(h http.Handler, method, path string, body io.Reader) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, body))
	return rec
}

// Client requests are bounded and decoded strictly; what streams (image archives, Git
// pushes) is not bounded.
func TestRequestBodies(t *testing.T) {
	b := newBackend(t)
	local := server.NewLocalHandler(b)
	for _, c := range []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"unknown field", "/v1/stacks", `{"stack": {"name": "web"}, "prun": true}`, http.StatusBadRequest, `unknown field "prun"`},
		{"unknown nested field", "/v1/stacks", `{"stack": {"name": "web", "servces": {}}}`, http.StatusBadRequest, `unknown field "servces"`},
		{"unknown field of a small request", "/v1/nodes/n1/update", `{"label_add": {"a": "b"}}`, http.StatusBadRequest, `unknown field "label_add"`},
		{"stack over its limit", "/v1/stacks", `{"stack": {"name": "` + strings.Repeat("a", spec.MaxStackRequestBytes) + `"}}`,
			http.StatusRequestEntityTooLarge, "the body of POST /v1/stacks is larger than 16 MiB, its limit"},
		{"plan over its limit", "/v1/plan", `{"source": "` + strings.Repeat("a", spec.MaxStackRequestBytes) + `"}`,
			http.StatusRequestEntityTooLarge, "larger than 16 MiB"},
		{"secret over its limit", "/v1/secrets", `{"name": "` + strings.Repeat("a", spec.MaxObjectRequestBytes) + `"}`,
			http.StatusRequestEntityTooLarge, "the body of POST /v1/secrets is larger than 2 MiB"},
		{"node update over its limit", "/v1/nodes/n1/update", `{"labels_add": {"k": "` + strings.Repeat("v", 3<<20) + `"}}`,
			http.StatusRequestEntityTooLarge, "the body of POST /v1/nodes/{ref}/update is larger than 1 MiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := serve(local, http.MethodPost, c.path, strings.NewReader(c.body))
			var e api.Error
			_ = json.Unmarshal(rec.Body.Bytes(), &e)
			if rec.Code != c.status || !strings.Contains(e.Message, c.want) {
				t.Fatalf("%d %.300s, want %d saying %q", rec.Code, rec.Body.String(), c.status, c.want)
			}
		})
	}

	// An archive larger than any request limit reaches the backend whole.
	archive := bytes.Repeat([]byte{1}, spec.MaxStackRequestBytes+1)
	if rec := serve(local, http.MethodPost, "/v1/images/load", bytes.NewReader(archive)); rec.Code != http.StatusOK || b.loaded.n != int64(len(archive)) {
		t.Errorf("image load: %d %s, the backend read %d of %d bytes", rec.Code, rec.Body.String(), b.loaded.n, len(archive))
	}
	var pushed countingBody
	remote := server.NewRemoteHandler(b, server.WithPublicHandler("/git/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := pushed.read(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	})))
	if rec := serve(remote, http.MethodPost, "/git/apps.git/git-receive-pack", bytes.NewReader(archive)); rec.Code != http.StatusOK || pushed.n != int64(len(archive)) {
		t.Errorf("git push: %d %s, the handler read %d of %d bytes", rec.Code, rec.Body.String(), pushed.n, len(archive))
	}
}

// The client maps 413 back to api.ErrTooLarge.
func TestTooLargeKeepsItsMeaning(t *testing.T) {
	c := serveLocal(t, newBackend(t))
	_, err := c.CreateSecret(context.Background(), api.ObjectCreateRequest{Name: "big", Data: bytes.Repeat([]byte{1}, spec.MaxObjectRequestBytes)})
	if !errors.Is(err, api.ErrTooLarge) {
		t.Fatalf("CreateSecret of %d bytes: %v, want ErrTooLarge", spec.MaxObjectRequestBytes, err)
	}
}

// A body that is not JSON is named as such, without the code's name in front (issue 18).
func TestMalformedBodySaysSo(t *testing.T) {
	rec := serve(server.NewLocalHandler(newBackend(t)), http.MethodPost, "/v1/stacks", strings.NewReader(`{"stack":`))
	var e api.Error
	_ = json.Unmarshal(rec.Body.Bytes(), &e)
	if rec.Code != http.StatusBadRequest || !strings.HasPrefix(e.Message, "request body is not valid JSON: ") {
		t.Fatalf("%d %s, want 400 starting with %q", rec.Code, rec.Body.String(), "request body is not valid JSON: ")
	}
}
