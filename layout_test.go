// The import rules of DESIGN.md section 2, checked on what `go list` reports, so that
// the arrows between packages keep pointing down.
package berth_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/berthd/berth/"

// listedPackage is the part of `go list -json` the rules read. Imports and Deps leave
// out test files.
type listedPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// importRule forbids the packages under one of the from prefixes to import (or, with
// deps, to link at all) anything under one of the forbid prefixes, except packages
// under one of the allow prefixes.
type importRule struct {
	name   string
	from   []string
	allow  []string
	deps   bool
	forbid []string
}

var importRules = []importRule{
	{name: "the agent links no raft", from: []string{"runtime/"}, deps: true,
		forbid: []string{"github.com/hashicorp/raft", "go.etcd.io/bbolt", "github.com/boltdb/bolt"}},
	{name: "cluster/api is the client: no manager internals and no raft", from: []string{"cluster/api"},
		allow: []string{"cluster/api/server"}, deps: true,
		forbid: []string{module + "cluster/store", module + "cluster/state", module + "cluster/command",
			module + "cluster/reconciler", module + "cluster/control", "github.com/hashicorp/raft", "github.com/hashicorp/go-memdb"}},
	{name: "nothing under cluster/ imports the applier", from: []string{"cluster/"},
		forbid: []string{module + "applier"}},
	{name: "the applier is a client of the control plane", from: []string{"applier"},
		forbid: []string{module + "cluster/store", module + "cluster/command", module + "cluster/reconciler",
			module + "cluster/orchestrator", module + "cluster/scheduler", "github.com/hashicorp/go-memdb"}},
	{name: "nothing imports cmd or the daemon", from: []string{""}, allow: []string{"cmd/", "daemon"},
		forbid: []string{module + "cmd/", module + "daemon"}},
	{name: "internal/ is for tests and benchmarks only", from: []string{""}, allow: []string{"internal/", "bench/"},
		forbid: []string{module + "internal/"}},
	{name: "test helpers sit below the benchmarks that use them", from: []string{"internal/"},
		forbid: []string{module + "bench/"}},
	{name: "raft only in cluster/store", from: []string{""}, allow: []string{"cluster/store", "internal/"},
		forbid: []string{"github.com/hashicorp/raft"}},
	{name: "containerd only in runtime/", from: []string{""}, allow: []string{"runtime/", "internal/"},
		forbid: []string{"github.com/containerd/containerd"}},
	{name: "netlink and nftables only in netstack/", from: []string{""}, allow: []string{"netstack", "internal/"},
		forbid: []string{"github.com/vishvananda/", "github.com/google/nftables"}},
	{name: "go-git only in applier/", from: []string{""}, allow: []string{"applier", "internal/"},
		forbid: []string{"github.com/go-git/"}},
	{name: "spec and scheduler are pure", from: []string{"spec", "cluster/scheduler"},
		forbid: []string{module + "cluster/state", module + "cluster/store", module + "cluster/command",
			module + "cluster/control", module + "cluster/api", module + "cluster/reconciler", module + "runtime/",
			module + "netstack", module + "applier", "net/http", "os/exec"}},
}

func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	for _, r := range importRules {
		t.Run(r.name, func(t *testing.T) {
			for _, p := range pkgs {
				if !r.applies(p.ImportPath) {
					continue
				}
				imports := p.Imports
				if r.deps {
					imports = p.Deps
				}
				for _, imp := range imports {
					if r.forbids(imp) {
						t.Errorf("%s imports %s", strings.TrimPrefix(p.ImportPath, module), imp)
					}
				}
			}
		})
	}
}

func (r importRule) applies(path string) bool {
	rel, ok := strings.CutPrefix(path, module)
	return ok && under(rel, r.from) && !under(rel, r.allow)
}

func (r importRule) forbids(imp string) bool { return under(imp, r.forbid) }

// under reports whether path is one of prefixes or below it ("" matches every path).
func under(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if p == "" || path == strings.TrimSuffix(p, "/") || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}

func listPackages(t *testing.T) []listedPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", "./...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages: not the whole module", len(pkgs))
	}
	return pkgs
}
