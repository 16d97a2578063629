package gitserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
)

type allowAll struct{}

func (allowAll) Authorize(context.Context, string, string, string, bool) error { return nil }
func (allowAll) PreReceive(context.Context, *Push) error                       { return nil }
func (allowAll) PostReceive(context.Context, *Push)                            {}

// FuzzRequests checks that no request body makes the handler panic.
func FuzzRequests(f *testing.F) {
	dir := f.TempDir()
	if _, err := git.PlainInit(dir, true); err != nil {
		f.Fatal(err)
	}
	h, err := NewHandler(Config{Dir: func(string) (string, error) { return dir, nil }, Hooks: allowAll{}})
	if err != nil {
		f.Fatal(err)
	}
	zero := strings.Repeat("0", 40)
	for _, seed := range []string{
		"0000",
		"0032want " + zero + "\n00000009done\n",
		"0043want " + zero + " multi_ack_detailed\n00000032have " + zero + "\n0000",
		"0035shallow " + zero + "\n",
		"0067" + zero + " " + strings.Repeat("1", 40) + " refs/heads/main\x00report-status side-band-64k\n0000PACK",
	} {
		f.Add(true, seed)
		f.Add(false, seed)
	}
	f.Fuzz(func(t *testing.T, upload bool, body string) {
		service := receivePack
		if upload {
			service = uploadPack
		}
		req := httptest.NewRequest(http.MethodPost, "/git/r.git/"+service, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-"+service+"-request")
		h.ServeHTTP(httptest.NewRecorder(), req)
	})
}
