package main

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/internal/clustertest"
	"github.com/berthd/berth/internal/netlab"
	"github.com/berthd/berth/internal/testimage"
)

const (
	image = "berth.test/netconv:1"
	stack = "nc"
	// meshSubnet is the overlay network's, so that a task's address on it is told
	// from its ingress one.
	meshSubnet = "10.77.0.0/24"
	webPort    = 8080
	soloPort   = 8081
)

// httpd is a service answering its hostname on 8080, on the mesh network.
const httpd = `    image: ` + image + `
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
    stop_grace_period: 1s
    networks: [mesh]`

// stackFile: web answers its hostname on every node (one task each); client is a
// task on the manager (node-1) to look from; solo is one task on node-3, published
// on every node through the routing mesh. A restart delay of 0 keeps the rounds
// short; it does not change what is measured.
const stackFile = `services:
  web:
` + httpd + `
    ports: [{target: 8080, published: 8080, mode: ingress}]
    deploy:
      replicas: 3
      restart_policy: {condition: any, delay: 0s}
      placement:
        max_replicas_per_node: 1
  client:
    image: ` + image + `
    command: ["sleep", "1000000"]
    stop_signal: SIGKILL
    networks: [mesh]
    deploy:
      placement:
        constraints: [node.hostname == node-1]
  solo:
` + httpd + `
    ports: [{target: 8080, published: 8081, mode: ingress}]
    deploy:
      placement:
        constraints: [node.hostname == node-3]
networks:
  mesh:
    driver: overlay
    ipam:
      config:
        - subnet: ` + meshSubnet + `
`

// bench is a running lab with the stack deployed.
type bench struct {
	lab        *netlab.Lab
	api        *api.Client
	containerd string
	client     nsTask     // the client task, on node-1
	vip        netip.Addr // web's VIP on mesh
}

// nsTask is a task and the path of its network namespace.
type nsTask struct{ id, netns string }

// startBench starts the lab, loads the image on every node, deploys the stack and
// waits until the client's resolver lists every web task. On failure it tears the
// lab down.
func startBench(ctx context.Context, o options) (*bench, error) {
	lab, err := netlab.Start(ctx, netlab.Config{Nodes: 3, Managers: 1, Bin: o.bin, Dir: o.dir,
		Containerd: o.containerd, HostLeg: true})
	if err != nil {
		return nil, fmt.Errorf("start the lab: %w", err)
	}
	b := &bench{lab: lab, containerd: o.containerd}
	if err := b.setup(ctx); err != nil {
		err = fmt.Errorf("%w\n%s", err, b.logTails())
		if cerr := lab.Close(); cerr != nil {
			err = fmt.Errorf("%w; tear the lab down: %v", err, cerr)
		}
		return nil, err
	}
	return b, nil
}

func (b *bench) setup(ctx context.Context) error {
	var err error
	if b.api, err = api.New(b.lab.Node(0).Host); err != nil {
		return err
	}
	dir := b.lab.State().Dir
	var img bytes.Buffer
	if err := testimage.Build(&img, testimage.Options{Name: image}); err != nil {
		return fmt.Errorf("build the image: %w", err)
	}
	tar, compose := filepath.Join(dir, "image.tar"), filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(tar, img.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(compose, []byte(stackFile), 0o644); err != nil {
		return err
	}
	if err := b.lab.LoadImage(ctx, tar); err != nil {
		return fmt.Errorf("load the image: %w", err)
	}
	if out, err := b.lab.CLI(ctx, 0, "stack", "deploy", "-c", compose, "--detach=false", "--timeout", "2m", stack); err != nil {
		return fmt.Errorf("stack deploy: %w\n%s", err, out)
	}
	if err := b.findClient(ctx); err != nil {
		return err
	}
	return b.findVIP(ctx)
}

// findClient finds the client task, on node-1.
func (b *bench) findClient(ctx context.Context) error {
	tasks, err := b.running(ctx, "client")
	if err != nil {
		return err
	}
	if len(tasks) != 1 || tasks[0].NodeHostname != b.lab.Node(0).Name {
		return fmt.Errorf("want one running client task on %s, have %d", b.lab.Node(0).Name, len(tasks))
	}
	id := tasks[0].ID
	b.client = nsTask{id: id, netns: filepath.Join(b.lab.Node(0).DataDir, "netns", id)}
	return nil
}

// findVIP asks the client's resolver for web's VIP, once every web task is in
// tasks.web.
func (b *bench) findVIP(ctx context.Context) error {
	if err := b.waitWeb(ctx, nil); err != nil {
		return err
	}
	return inNetNS(b.client.netns, func() error {
		addrs, err := lookup("web")
		if err != nil {
			return err
		}
		if len(addrs) != 1 {
			return fmt.Errorf("web resolves to %v in the client, want one VIP", addrs)
		}
		b.vip = addrs[0]
		return nil
	})
}

// running lists the stack's service's running tasks (desired and reported).
func (b *bench) running(ctx context.Context, service string) ([]*api.TaskInfo, error) {
	tasks, _, err := b.api.Tasks(ctx, api.TaskFilter{Service: stack + "_" + service}, api.Query{})
	if err != nil {
		return nil, fmt.Errorf("list %s's tasks: %w", service, err)
	}
	var out []*api.TaskInfo
	for _, t := range tasks {
		if t.DesiredState == model.TaskRunning && t.Status.State == model.TaskRunning {
			out = append(out, t)
		}
	}
	return out, nil
}

// meshAddr is a task's address on the mesh network.
func meshAddr(t *model.Task) (netip.Addr, bool) {
	subnet := netip.MustParsePrefix(meshSubnet)
	for _, a := range t.Networks {
		p, err := netip.ParsePrefix(a.Addr)
		if err == nil && subnet.Contains(p.Addr()) {
			return p.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// waitWeb waits until 3 web tasks run, each on its own node, and the client's
// resolver lists exactly their addresses; it returns them by node index in want
// (when not nil).
func (b *bench) waitWeb(ctx context.Context, want map[int]netip.Addr) error {
	return clustertest.Eventually(ctx, 2*time.Minute, func() error {
		tasks, err := b.running(ctx, "web")
		if err != nil {
			return err
		}
		var addrs []netip.Addr
		clear(want)
		for _, t := range tasks {
			a, ok := meshAddr(t.Task)
			if !ok {
				return fmt.Errorf("task %s has no address on %s", t.ID, meshSubnet)
			}
			addrs = append(addrs, a)
			if want != nil {
				want[nodeIndex(t.NodeHostname)] = a
			}
		}
		if len(addrs) != 3 || (want != nil && len(want) != 3) {
			return fmt.Errorf("%d web tasks run on nodes %v, want one on each of 3", len(addrs), want)
		}
		var listed []netip.Addr
		err = inNetNS(b.client.netns, func() (err error) { listed, err = lookup("tasks.web"); return err })
		if err != nil {
			return err
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		slices.SortFunc(listed, netip.Addr.Compare)
		if !slices.Equal(addrs, listed) {
			return fmt.Errorf("tasks.web lists %v, the running tasks have %v", listed, addrs)
		}
		return nil
	})
}

// nodeIndex is the index of the lab's node named node-<i+1>.
func nodeIndex(hostname string) int {
	var i int
	if _, err := fmt.Sscanf(hostname, "node-%d", &i); err != nil {
		return -1
	}
	return i - 1
}

// logTails is the end of every node's daemon log, for an error message.
func (b *bench) logTails() string {
	var s strings.Builder
	for i := range b.lab.Nodes() {
		n := b.lab.Node(i)
		data, _ := os.ReadFile(n.Log)
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		fmt.Fprintf(&s, "--- %s:\n%s\n", n.Name, strings.Join(lines[max(0, len(lines)-20):], "\n"))
	}
	return s.String()
}

// copyLogs copies every node's daemon log into dir, as <node>.log.
func (b *bench) copyLogs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range b.lab.Nodes() {
		n := b.lab.Node(i)
		data, err := os.ReadFile(n.Log)
		if err != nil {
			return fmt.Errorf("%s's log: %w", n.Name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, n.Name+".log"), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
