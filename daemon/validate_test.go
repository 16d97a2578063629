package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api"
)

// rawPost sends body as it is to the node's socket, bypassing the CLI and the client.
func rawPost(t *testing.T, socket, path, body string) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	resp, err := hc.Post("http://berth"+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e api.Error
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Message
}

// stackBody is a deploy request for stack web whose service api has the given JSON
// fields; the rest of the request follows tail.
func stackBody(name, service, fields, tail string) string {
	return fmt.Sprintf(`{"stack": {"name": %q, "services": {%q: {"name": %q, "image": "nginx:1.27",
		"deploy": {"mode": "replicated", "replicas": 1, "endpoint_mode": "vip"}%s}}, "networks": {}}%s}`, name, service, service, fields, tail)
}

func labels(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"l%d": "v"`, i)
	}
	return "{" + b.String() + "}"
}

// TestAPIRefusesWhatItCannotStore sends the bad requests of issue 15 straight to a
// manager's socket: each is refused with the field at fault, and nothing is stored.
func TestAPIRefusesWhatItCannotStore(t *testing.T) {
	dir := shortTempDir(t)
	m := startNode(t, dir, "m1")
	ctx := context.Background()
	if _, err := m.c.Init(ctx, api.InitRequest{}); err != nil {
		t.Fatal(err)
	}
	socket := dir + "/m1.sock"
	rlo := "api\u202egnp.exe"
	for _, c := range []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"mode typo", "/v1/stacks", strings.Replace(stackBody("web", "api", "", ""), `"replicated"`, `"globl"`, 1), 400,
			`service api, deploy.mode: mode "globl" is not valid; did you mean "global"?`},
		{"empty image", "/v1/stacks", strings.Replace(stackBody("web", "api", "", ""), "nginx:1.27", "", 1), 400, "service api, image: image is required"},
		{"image with a newline", "/v1/stacks", strings.Replace(stackBody("web", "api", "", ""), "nginx:1.27", `nginx\nx`, 1), 400,
			`service api, image: image "nginx\nx" is not a valid reference`},
		{"service name climbing out", "/v1/stacks", stackBody("web", "../../etc/passwd", "", ""), 400, `services["../../etc/passwd"]: invalid service name`},
		{"service name with a slash", "/v1/stacks", stackBody("web", "a/b", "", ""), 400, `services["a/b"]: invalid service name`},
		{"service name with a right-to-left override", "/v1/stacks", stackBody("web", rlo, "", ""), 400, `services["api\u202egnp.exe"]: invalid service name`},
		{"secret target climbing out", "/v1/stacks",
			stackBody("web", "api", `, "secrets": [{"source": "pw", "target": "../../../../etc/shadow"}]`, `, "secret_data": {"pw": "eA=="}`),
			400, `service api, secrets[0].target: "../../../../etc/shadow" is not a clean absolute path`},
		{"stack name of 100,000 characters", "/v1/stacks", stackBody(strings.Repeat("a", 100_000), "api", "", ""), 400,
			"name: invalid stack name \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"…: it is 100000 characters long; the limit is 63"},
		{"unknown field", "/v1/stacks", stackBody("web", "api", "", `, "prun": true`), 400, `unknown field "prun"`},
		{"a label value of 1 MB", "/v1/stacks", stackBody("web", "api", `, "labels": {"big": "`+strings.Repeat("x", 1<<20)+`"}`, ""), 400,
			`service api, labels["big"]: the value is 1048576 bytes long; the limit is 4096`},
		{"a label value of 50 MB", "/v1/stacks", stackBody("web", "api", `, "labels": {"big": "`+strings.Repeat("x", 50<<20)+`"}`, ""), 413,
			"larger than 16 MiB"},
		{"a plan of a bad stack", "/v1/plan", `{"stacks": [` + stackBody("web", "a/b", "", "") + `]}`, 400, `services["a/b"]: invalid service name`},
		{"source name of 100,000 characters", "/v1/sources", `{"source": {"name": "` + strings.Repeat("s", 100_000) + `", "kind": "git-push"}}`, 400,
			"it is 100000 characters long; the limit is 63"},
		{"source branch with a newline", "/v1/sources", `{"source": {"name": "apps", "kind": "git-push", "branch": "main\nx"}}`, 400,
			"holds a control or bidirectional-formatting character"},
		{"source pin with a newline", "/v1/sources/apps/update", `{"pin": "main\nx"}`, 400, `pin (--to) "main\nx" holds a control`},
		{"unknown field of a source update", "/v1/sources/apps/update", `{"pinn": "main"}`, 400, `unknown field "pinn"`},
		{"node label key of 1 MB", "/v1/nodes/m1/update", `{"labels_add": {"` + strings.Repeat("k", 1_000_000) + `": "v"}}`, 400,
			"is 1000000 bytes long; the limit is 256"},
		{"node label value of 3 MB", "/v1/nodes/m1/update", `{"labels_add": {"k": "` + strings.Repeat("v", 3_000_000) + `"}}`, 413, "larger than 1 MiB"},
		{"100,000 node labels", "/v1/nodes/m1/update", `{"labels_add": ` + labels(100_000) + `}`, 413, "larger than 1 MiB"},
		{"129 node labels", "/v1/nodes/m1/update", `{"labels_add": ` + labels(129) + `}`, 400, "129 labels; the limit is 128"},
		{"secret with 129 labels", "/v1/secrets", `{"name": "pw", "data": "eA==", "labels": ` + labels(129) + `}`, 400, "129 labels; the limit is 128"},
		{"secret name", "/v1/secrets", `{"name": "../pw", "data": "eA=="}`, 400, `invalid secret name "../pw"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, msg := rawPost(t, socket, c.path, c.body)
			if status != c.status || !strings.Contains(msg, c.want) {
				t.Fatalf("%d %.300q, want %d saying %q", status, msg, c.status, c.want)
			}
			if len(msg) > 2000 {
				t.Errorf("the message is %d bytes long", len(msg))
			}
		})
	}

	// Counts only: what a failure would print could be megabytes.
	stacks, _, err := m.c.Stacks(ctx, api.Query{})
	if err != nil || len(stacks) != 0 {
		t.Errorf("%d stacks stored (%v)", len(stacks), err)
	}
	sources, _, err := m.c.Sources(ctx, api.Query{})
	if err != nil || len(sources) != 0 {
		t.Errorf("%d sources stored (%v)", len(sources), err)
	}
	secrets, _, err := m.c.Secrets(ctx, api.Query{})
	if err != nil || len(secrets) != 0 {
		t.Errorf("%d secrets stored (%v)", len(secrets), err)
	}
	if nd, _, err := m.c.Node(ctx, "m1", api.Query{}); err != nil {
		t.Error(err)
	} else if len(nd.Labels) != 0 {
		t.Errorf("%d node labels stored", len(nd.Labels))
	}

	// The good request is stored.
	if status, msg := rawPost(t, socket, "/v1/stacks", stackBody("web", "api", "", "")); status != http.StatusOK {
		t.Fatalf("a good stack: %d %s", status, msg)
	}
}
