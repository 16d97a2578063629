package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/internal/netlab"
	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/internal/testimage"
	"github.com/berthd/berth/netstack/ipam"
)

// meshImage is the image of the networking tests: busybox with httpd, wget, nslookup.
const meshImage = "berth.test/mesh:1"

// meshStack: web answers its hostname on 8080 (one task per node, published through
// the routing mesh; the health check makes "running" mean "listening"); client only
// sleeps, to ask from, on the manager (the node the tests never kill); both on one
// overlay network.
const meshStack = `services:
  web:
    image: ` + meshImage + `
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
    networks: [front]
    ports: ["8080:8080"]
    healthcheck:
      test: ["CMD", "timeout", "2", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
      retries: 3
    stop_grace_period: 2s
    deploy:
      replicas: 3
      placement:
        max_replicas_per_node: 1
      update_config:
        order: stop-first
  client:
    image: ` + meshImage + `
    command: ["sleep", "100000"]
    networks: [front]
    stop_grace_period: 1s
    deploy:
      placement:
        constraints: [node.role == manager]
networks:
  front: {}
`

// meshLab is a 3-node lab (1 manager, 2 workers) with the mesh image on every node.
type meshLab struct {
	*netlab.Lab
	t   *testing.T
	dir string
}

func startMeshLab(t *testing.T, ctx context.Context) *meshLab {
	t.Helper()
	bin := berthBinary(t)
	ctrd := testenv.RequireContainerd(t)
	testenv.RequireNetNS(t)
	testenv.RequireCommand(t, "nsenter", "the lab starts its daemons in their nodes' namespaces")
	testenv.RequireCommand(t, "ctr", "the test runs commands inside task containers")
	dir := t.TempDir()
	lab, err := netlab.Start(ctx, netlab.Config{Nodes: 3, Managers: 1, Bin: bin, Dir: dir, Containerd: ctrd, HostLeg: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	})
	img := filepath.Join(dir, "image.tar")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := testimage.Build(f, testimage.Options{Name: meshImage}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := lab.LoadImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	return &meshLab{Lab: lab, t: t, dir: dir}
}

func (m *meshLab) cli(ctx context.Context, args ...string) string {
	m.t.Helper()
	out, err := m.CLI(ctx, 0, args...)
	if err != nil {
		m.t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (m *meshLab) deploy(ctx context.Context, stack, yaml string) {
	m.t.Helper()
	file := filepath.Join(m.dir, stack+".yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		m.t.Fatal(err)
	}
	m.cli(ctx, "stack", "deploy", "-c", file, "--detach=false", "--timeout", "55s", stack)
}

// running are the service's tasks observed and desired running.
func (m *meshLab) running(ctx context.Context, service string) []*api.TaskInfo {
	m.t.Helper()
	c, err := api.New(m.Node(0).Host)
	if err != nil {
		m.t.Fatal(err)
	}
	all, _, err := c.Tasks(ctx, api.TaskFilter{Service: service}, api.Query{})
	if err != nil {
		m.t.Fatalf("tasks of %s: %v", service, err)
	}
	var out []*api.TaskInfo
	for _, t := range all {
		if t.Status.State == "running" && t.DesiredState == "running" {
			out = append(out, t)
		}
	}
	return out
}

// node is the lab index of the node a task runs on.
func (m *meshLab) node(t *api.TaskInfo) int {
	m.t.Helper()
	for i := range m.Nodes() {
		if m.Node(i).Name == t.NodeHostname {
			return i
		}
	}
	m.t.Fatalf("task %s runs on %q, not a node of the lab", t.ID, t.NodeHostname)
	return -1
}

// exec runs a shell command inside the task's container.
func (m *meshLab) exec(ctx context.Context, t *api.TaskInfo, script string) (string, error) {
	ns := m.Node(m.node(t)).Namespace
	cmd := exec.CommandContext(ctx, "ctr", "-n", ns, "tasks", "exec", "--exec-id", fmt.Sprintf("t%d", time.Now().UnixNano()), t.ID, "sh", "-c", script)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// addrs are the tasks' addresses on their own networks (not the routing mesh's),
// without their prefix length.
func addrs(tasks []*api.TaskInfo) []string {
	var out []string
	for _, t := range tasks {
		for _, a := range t.Networks {
			if p, err := netip.ParsePrefix(a.Addr); err == nil && !ipam.IngressSubnet.Contains(p.Addr()) {
				out = append(out, p.Addr().String())
			}
		}
	}
	slices.Sort(out)
	return out
}

// nslookup returns the addresses busybox nslookup prints for name, from inside the
// task, through the embedded resolver.
func (m *meshLab) nslookup(ctx context.Context, from *api.TaskInfo, name string) []string {
	m.t.Helper()
	out, err := m.exec(ctx, from, "nslookup "+name+" 2>&1")
	var got []string
	seenName := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "Name:" {
			seenName = true
		}
		if seenName && len(f) >= 2 && f[0] == "Address:" {
			got = append(got, strings.TrimSuffix(f[1], ":53"))
		}
		if seenName && len(f) >= 3 && f[0] == "Address" {
			got = append(got, f[2])
		}
	}
	slices.Sort(got)
	if err != nil && len(got) == 0 {
		return nil
	}
	return slices.Compact(got)
}

// waitUpdated waits for the service's rolling update to complete.
func (m *meshLab) waitUpdated(ctx context.Context, service string) {
	m.t.Helper()
	eventually(m.t, 2*time.Minute, service+"'s update completed", func() (bool, string) {
		var svc []struct {
			UpdateStatus struct{ State, Message string } `json:"update_status"`
		}
		out := m.cli(ctx, "service", "inspect", service)
		if err := json.Unmarshal([]byte(out), &svc); err != nil || len(svc) != 1 {
			return false, out
		}
		return svc[0].UpdateStatus.State == "completed", fmt.Sprintf("%+v", svc[0].UpdateStatus)
	})
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %s", what, d, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// answers sends n requests from the task to url and returns who answered, by
// count, and the failures.
func (m *meshLab) answersFromTask(ctx context.Context, from *api.TaskInfo, url string, n int) (map[string]int, int) {
	m.t.Helper()
	out, err := m.exec(ctx, from, fmt.Sprintf(`for i in $(seq 1 %d); do timeout 3 wget -q -O - %s || echo FAIL; done`, n, url))
	if err != nil {
		m.t.Fatalf("requests from %s: %v\n%s", from.ID, err, out)
	}
	return tally(out)
}

func tally(out string) (map[string]int, int) {
	got, failed := map[string]int{}, 0
	for _, l := range strings.Fields(out) {
		if l == "FAIL" {
			failed++
		} else {
			got[l]++
		}
	}
	return got, failed
}

// answersFromHost sends n requests from the host (over the lab's host leg) to url.
func answersFromHost(ctx context.Context, url string, n int) (map[string]int, int) {
	got, failed := map[string]int{}, 0
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range n {
		body, err := get(ctx, client, url)
		if err != nil {
			failed++
			continue
		}
		got[strings.TrimSpace(body)]++
	}
	return got, failed
}

func get(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d, %v", resp.StatusCode, err)
	}
	return string(b), nil
}

func hostnames(tasks []*api.TaskInfo) []string {
	var out []string
	for _, t := range tasks {
		out = append(out, t.ID[:12])
	}
	slices.Sort(out)
	return out
}

func keys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestNetworkAcrossNodesProcess is issue 16's failure behaviour on 3 real nodes (each
// a daemon in a network namespace of its own, one shared containerd, real containers):
// names, the VIP and the routing mesh across nodes; isolation; daemon restarts;
// rolling updates under load; a node's death.
func TestNetworkAcrossNodesProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	m := startMeshLab(t, ctx)
	m.deploy(ctx, "mesh", meshStack)

	web := m.running(ctx, "mesh_web")
	clients := m.running(ctx, "mesh_client")
	if len(web) != 3 || len(clients) != 1 {
		t.Fatalf("running: %d web, %d client; want 3 and 1", len(web), len(clients))
	}
	client := clients[0]
	nodes := map[int]bool{}
	for _, w := range web {
		nodes[m.node(w)] = true
	}
	if len(nodes) != 3 {
		t.Fatalf("web's tasks run on %d nodes, want 3 (max_replicas_per_node: 1)", len(nodes))
	}

	t.Run("dns", func(t *testing.T) {
		var svc []struct {
			Endpoint struct {
				VIPs []struct{ Network, Addr string } `json:"vips"`
			} `json:"endpoint"`
		}
		if err := json.Unmarshal([]byte(m.cli(ctx, "service", "inspect", "mesh_web")), &svc); err != nil || len(svc) != 1 {
			t.Fatalf("service inspect mesh_web: %v %+v", err, svc)
		}
		// One VIP on front, one on the routing mesh's network.
		var vip string
		for _, v := range svc[0].Endpoint.VIPs {
			if a := netip.MustParsePrefix(v.Addr).Addr(); !ipam.IngressSubnet.Contains(a) {
				vip = a.String()
			}
		}
		if len(svc[0].Endpoint.VIPs) != 2 || vip == "" {
			t.Fatalf("mesh_web's VIPs: %+v; want one on front and one on ingress", svc[0].Endpoint.VIPs)
		}
		for _, name := range []string{"web", "mesh_web"} {
			if got := m.nslookup(ctx, client, name); !slices.Equal(got, []string{vip}) {
				t.Errorf("nslookup %s from the client: %v, want the VIP %s", name, got, vip)
			}
		}
		if got, want := m.nslookup(ctx, client, "tasks.web"), addrs(web); !slices.Equal(got, want) {
			t.Errorf("nslookup tasks.web: %v, want the tasks' addresses %v", got, want)
		}
		if got := m.nslookup(ctx, client, "nosuchservice"); len(got) != 0 {
			t.Errorf("nslookup nosuchservice: %v, want no address", got)
		}
	})

	t.Run("vip", func(t *testing.T) {
		got, failed := m.answersFromTask(ctx, client, "http://web:8080/", 30)
		if failed > 0 || !slices.Equal(keys(got), hostnames(web)) {
			t.Errorf("30 requests to http://web:8080/ from the client: answered by %v with %d failures; want all of %v, none failed", got, failed, hostnames(web))
		}
	})

	t.Run("routing mesh", func(t *testing.T) {
		for i := range m.Nodes() {
			url := fmt.Sprintf("http://%s:8080/", m.Node(i).Addr)
			got, failed := answersFromHost(ctx, url, 30)
			if failed > 0 || !slices.Equal(keys(got), hostnames(web)) {
				t.Errorf("30 requests to %s: answered by %v with %d failures; want all of %v, none failed", url, got, failed, hostnames(web))
			}
		}
	})

	t.Run("isolation", func(t *testing.T) { testIsolation(t, ctx, m) })
	t.Run("global", func(t *testing.T) { testGlobalPeers(t, ctx, m) })
	t.Run("daemon restarts", func(t *testing.T) { testDaemonRestarts(t, ctx, m, web) })
	t.Run("rolling update", func(t *testing.T) { testRollingUpdateUnderLoad(t, ctx, m, client) })
	t.Run("node death", func(t *testing.T) { testNodeDeath(t, ctx, m, client) })
	t.Run("leave", func(t *testing.T) { testLeaveLeavesNothing(t, ctx, m) })
}

// testLeaveLeavesNothing: a worker that leaves takes everything the cluster's
// networks made in its namespace: bridges, VXLAN devices, veths, the ingress
// address, nftables tables.
func testLeaveLeavesNothing(t *testing.T, ctx context.Context, m *meshLab) {
	const node = 1
	out, err := m.CLI(ctx, node, "leave", "--force")
	if err != nil {
		t.Fatalf("leave: %v\n%s", err, out)
	}
	links, err := m.Exec(ctx, node, "ip", "-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(links), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] != "lo:" && !strings.HasPrefix(f[1], "eth0") {
			t.Errorf("%s still has %s after leaving", m.Node(node).Name, f[1])
		}
	}
	if tables, err := m.Exec(ctx, node, "nft", "list", "tables"); err != nil || strings.TrimSpace(tables) != "" {
		t.Errorf("%s still has nftables tables after leaving: %q, %v", m.Node(node).Name, tables, err)
	}
}

// testIsolation: two stacks on two overlay networks, with tasks on different nodes,
// cannot reach each other; each reaches its own peer across nodes.
func testIsolation(t *testing.T, ctx context.Context, m *meshLab) {
	const pair = `services:
  a:
    image: ` + meshImage + `
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
    networks: [net]
    deploy:
      replicas: 2
      placement:
        max_replicas_per_node: 1
networks:
  net: {}
`
	m.deploy(ctx, "left", pair)
	m.deploy(ctx, "right", pair)
	left, right := m.running(ctx, "left_a"), m.running(ctx, "right_a")
	if len(left) != 2 || len(right) != 2 {
		t.Fatalf("running: %d left, %d right; want 2 each", len(left), len(right))
	}
	peer := addrs(left[1:])[0]
	if out, err := m.exec(ctx, left[0], "timeout 3 wget -q -O - http://"+peer+":8080/"); err != nil || strings.TrimSpace(out) != left[1].ID[:12] {
		t.Errorf("left_a.1 to its peer %s on another node: %q, %v; want %s", peer, out, err, left[1].ID[:12])
	}
	for _, r := range right {
		if m.node(r) == m.node(left[0]) {
			continue
		}
		other := addrs([]*api.TaskInfo{r})[0]
		if out, err := m.exec(ctx, left[0], "timeout 3 wget -q -O - http://"+other+":8080/"); err == nil {
			t.Errorf("left's task reached right's task %s on another node: %q", other, out)
		}
	}
	if got := m.nslookup(ctx, left[0], "tasks.right_a"); len(got) != 0 {
		t.Errorf("left's task resolves tasks.right_a to %v; networks it does not share are not its to see", got)
	}
	m.cli(ctx, "stack", "rm", "left")
	m.cli(ctx, "stack", "rm", "right")
}

// testGlobalPeers: a global service runs one task per node and each reaches every
// other by tasks.NAME.
func testGlobalPeers(t *testing.T, ctx context.Context, m *meshLab) {
	const global = `services:
  mon:
    image: ` + meshImage + `
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
    networks: [mon]
    deploy:
      mode: global
networks:
  mon: {}
`
	m.deploy(ctx, "global", global)
	mon := m.running(ctx, "global_mon")
	if len(mon) != m.Nodes() {
		t.Fatalf("global_mon runs %d tasks, want one per node (%d)", len(mon), m.Nodes())
	}
	want := addrs(mon)
	for _, from := range mon {
		if got := m.nslookup(ctx, from, "tasks.mon"); !slices.Equal(got, want) {
			t.Errorf("tasks.mon from %s: %v, want %v", from.ID, got, want)
		}
		for _, to := range mon {
			url := "http://" + addrs([]*api.TaskInfo{to})[0] + ":8080/"
			if out, err := m.exec(ctx, from, "timeout 3 wget -q -O - "+url); err != nil || strings.TrimSpace(out) != to.ID[:12] {
				t.Errorf("%s on %s to %s on %s: %q, %v", from.ID[:12], from.NodeHostname, to.ID[:12], to.NodeHostname, out, err)
			}
		}
	}
	m.cli(ctx, "stack", "rm", "global")
}

// dataPlaneCounts counts what netstack made in a node's namespace: links by kind,
// addresses, FDB and neighbour entries, nftables rules.
func (m *meshLab) dataPlaneCounts(ctx context.Context, i int) string {
	m.t.Helper()
	var b strings.Builder
	for _, c := range []struct{ what, cmd string }{
		{"vxlan devices", "ip -o link show type vxlan | wc -l"},
		{"bridges", "ip -o link show type bridge | wc -l"},
		{"veths", "ip -o link show type veth | wc -l"},
		{"addresses", "ip -o addr show | wc -l"},
		{"fdb entries", "bridge fdb show | grep -c ' dst ' || true"},
		{"neighbours", "ip neigh show nud permanent | wc -l"},
		{"nft rules", "nft -a list ruleset | grep -c handle || true"},
	} {
		out, err := m.Exec(ctx, i, "sh", "-c", c.cmd)
		if err != nil {
			m.t.Fatalf("%s on %s: %v\n%s", c.cmd, m.Node(i).Name, err, out)
		}
		fmt.Fprintf(&b, "%s=%s ", c.what, strings.TrimSpace(out))
	}
	return b.String()
}

// testDaemonRestarts: restarting a node's daemon 10 times keeps its tasks, their
// addresses and their peers' entries, and leaves no duplicate device, address,
// entry or rule.
func testDaemonRestarts(t *testing.T, ctx context.Context, m *meshLab, web []*api.TaskInfo) {
	const node = 1
	before := m.dataPlaneCounts(ctx, node)
	wantAddrs := addrs(m.running(ctx, "mesh_web"))
	for i := range 10 {
		if err := m.Restart(ctx, node); err != nil {
			t.Fatalf("restart %d of %s: %v", i+1, m.Node(node).Name, err)
		}
	}
	client := m.running(ctx, "mesh_client")[0]
	eventually(t, 30*time.Second, m.Node(node).Name+" ready again", func() (bool, string) {
		ls := m.cli(ctx, "node", "ls")
		for _, l := range strings.Split(ls, "\n") {
			if strings.Contains(l, m.Node(node).Name+" ") && strings.Contains(l, "Ready") {
				return true, ""
			}
		}
		return false, ls
	})
	// The restarted agent has applied its view once its tasks answer through it; the
	// counts are taken after that, twice, so that a late duplicate shows.
	if got, failed := m.answersFromTask(ctx, client, "http://web:8080/", 30); failed > 0 || len(got) != len(web) {
		t.Errorf("after the restarts, 30 requests to web: %v, %d failed", got, failed)
	}
	for range 2 {
		time.Sleep(time.Second)
		if after := m.dataPlaneCounts(ctx, node); after != before {
			t.Errorf("%s's data plane after 10 restarts: %s; before: %s", m.Node(node).Name, after, before)
		}
	}
	if got := addrs(m.running(ctx, "mesh_web")); !slices.Equal(got, wantAddrs) {
		t.Errorf("web's addresses after 10 restarts: %v, want %v", got, wantAddrs)
	}
}

// load sends requests until stopped, counting failures: through the VIP from the
// client task (a shell loop inside it) and through the routing mesh from the host.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
}

func (l *load) record(err error) {
	if err == nil {
		l.ok.Add(1)
		return
	}
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, err.Error())
	}
	l.mu.Unlock()
}

// testRollingUpdateUnderLoad: a rolling update of web, stop-first then start-first,
// under steady requests through the routing mesh and through the VIP, fails none:
// a task leaves DNS and the VIP before it stops, and a new one joins once healthy.
func testRollingUpdateUnderLoad(t *testing.T, ctx context.Context, m *meshLab, client *api.TaskInfo) {
	for _, order := range []string{"stop-first", "start-first"} {
		t.Run(order, func(t *testing.T) {
			stack := strings.Replace(meshStack, "order: stop-first", "order: "+order, 1)
			if order == "start-first" {
				// A second task beside the old one on its node: max 1 per node would
				// leave nowhere to start it.
				stack = strings.Replace(stack, "      placement:\n        max_replicas_per_node: 1\n", "", 1)
			}
			m.deploy(ctx, "mesh", stack)
			var mesh, vip load
			lctx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
				url := fmt.Sprintf("http://%s:8080/", m.Node(0).Addr)
				for lctx.Err() == nil {
					_, err := get(lctx, c, url)
					if lctx.Err() == nil {
						mesh.record(err)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
			wg.Add(1)
			go func() {
				defer wg.Done()
				// The loop runs inside the client until a stop file appears.
				out, err := m.exec(ctx, client, `rm -f /tmp/stop; while [ ! -e /tmp/stop ]; do if timeout 3 wget -q -O /dev/null http://web:8080/; then echo OK; else echo FAIL; fi; sleep 0.02; done`)
				if err != nil {
					vip.record(fmt.Errorf("load loop: %v: %s", err, out))
				}
				for _, l := range strings.Fields(out) {
					if l == "OK" {
						vip.record(nil)
					} else {
						vip.record(fmt.Errorf("request through the VIP failed"))
					}
				}
			}()
			time.Sleep(2 * time.Second)
			m.cli(ctx, "service", "update", "--force", "mesh_web")
			m.waitUpdated(ctx, "mesh_web")
			time.Sleep(2 * time.Second)
			stop()
			if out, err := m.exec(ctx, client, "touch /tmp/stop"); err != nil {
				t.Fatalf("stop the load loop: %v %s", err, out)
			}
			wg.Wait()
			for name, l := range map[string]*load{"routing mesh": &mesh, "VIP": &vip} {
				if l.failed.Load() > 0 || l.ok.Load() == 0 {
					t.Errorf("%s update, through the %s: %d requests ok, %d failed: %v", order, name, l.ok.Load(), l.failed.Load(), l.errs)
				}
				t.Logf("%s update, through the %s: %d requests, none failed", order, name, l.ok.Load())
			}
		})
	}
	m.deploy(ctx, "mesh", meshStack)
}

// testNodeDeath: a node dies (daemon and containers killed): its task leaves DNS and
// the VIP, requests keep succeeding, the replacement waits with its reason (max 1 per
// node, 2 nodes left), and a scale to 2 settles.
func testNodeDeath(t *testing.T, ctx context.Context, m *meshLab, client *api.TaskInfo) {
	const dead = 2
	if err := m.Kill(ctx, dead); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "tasks.web without the dead node's task", func() (bool, string) {
		got := m.nslookup(ctx, client, "tasks.web")
		return len(got) == 2, fmt.Sprintf("tasks.web = %v", got)
	})
	got, failed := m.answersFromTask(ctx, client, "http://web:8080/", 30)
	if failed > 0 || len(got) != 2 {
		t.Errorf("after node-3's death, 30 requests to web: %v, %d failed; want 2 tasks answering, none failing", got, failed)
	}
	eventually(t, 30*time.Second, "the replacement pending with its reason", func() (bool, string) {
		out := m.cli(ctx, "service", "ps", "--no-trunc", "mesh_web")
		return strings.Contains(out, "max_replicas_per_node") || strings.Contains(out, "max replicas per node"), out
	})
	m.cli(ctx, "service", "scale", "mesh_web=2")
	eventually(t, 30*time.Second, "mesh_web at 2/2", func() (bool, string) {
		ls := m.cli(ctx, "service", "ls")
		return strings.Contains(ls, "2/2"), ls
	})
}
