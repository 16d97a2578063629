package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/netstack"
	"github.com/berthd/berth/runtime/executor"
	"github.com/berthd/berth/spec"
)

// prepare takes a task from assigned to a created container: runtime, image,
// sandbox, files. It gives up when the task stops wanting to run. An error means
// the task cannot run here (it is rejected); a lost manager is retried instead.
func (r *runner) prepare(ctx context.Context, t *model.Task) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	if t.Status.State.Before(model.TaskPreparing) {
		r.report(model.TaskStatus{State: model.TaskPreparing, Message: "preparing"})
	}
	rt, err := r.fetchRuntime(ctx)
	if err != nil {
		return err
	}
	r.rt = rt
	imageStart := time.Now()
	err = r.a.cfg.Executor.EnsureImage(ctx, rt.Spec.Image)
	r.a.cfg.Metrics.observeImage(imageStart, err)
	if err != nil {
		return fmt.Errorf("image %s: %w", rt.Spec.Image, err)
	}
	c := executor.Container{
		TaskID:   r.id,
		TaskName: t.Name(),
		Stack:    rt.Stack,
		Service:  t.ServiceName,
		SpecHash: t.SpecHash,
		Spec:     &rt.Spec,
		Volumes:  rt.Volumes,
		Hostname: rt.Spec.Hostname,
	}
	if c.Hostname == "" {
		c.Hostname = shortID(r.id)
	}
	// The sandbox is set up while the container is created: the container only
	// names the sandbox's paths, which its start needs.
	var setupErr chan error
	if nw := r.a.cfg.Network; nw != nil {
		atts, err := attachments(t, rt)
		if err != nil {
			return err
		}
		ports, err := hostPorts(&rt.Spec)
		if err != nil {
			return err
		}
		dns, err := dnsConfig(&rt.Spec)
		if err != nil {
			return err
		}
		setupErr = make(chan error, 1)
		go func() {
			start := time.Now()
			_, err := nw.Setup(ctx, r.id, c.Hostname, atts, ports, netstack.WithDNS(dns))
			r.a.cfg.Metrics.observeSetup(start, err)
			setupErr <- err
		}()
		sb := nw.Sandbox(r.id)
		c.NetNSPath = sb.NetNSPath
		c.Mounts = append(c.Mounts,
			executor.BindFile(sb.HostsPath, "/etc/hosts", false),
			executor.BindFile(sb.ResolvConfPath, "/etc/resolv.conf", false))
	}
	err = r.createContainer(ctx, c, rt)
	if setupErr != nil {
		if serr := <-setupErr; serr != nil {
			return errors.Join(fmt.Errorf("network: %w", serr), err)
		}
	}
	return err
}

// createContainer writes the task's files and creates its container.
func (r *runner) createContainer(ctx context.Context, c executor.Container, rt *api.TaskRuntime) error {
	files, err := writeTaskFiles(r.a.taskDir(r.id), rt.Secrets, rt.Configs)
	if err != nil {
		return err
	}
	c.Mounts = append(c.Mounts, files...)
	if err := r.a.cfg.Executor.Create(ctx, c); err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	r.created = true
	return nil
}

// fetchRuntime asks the managers for the task's runtime, retrying while they are
// unreachable: that is no reason to reject a task.
func (r *runner) fetchRuntime(ctx context.Context) (*api.TaskRuntime, error) {
	backoff := 200 * time.Millisecond
	for {
		rt, err := r.a.cfg.API.TaskRuntime(ctx, r.id)
		switch {
		case err == nil:
			return rt, nil
		case errors.Is(err, api.ErrTaskOutdated):
			return nil, errOutdated
		case errors.Is(err, api.ErrNotFound), errors.Is(err, api.ErrBadRequest):
			return nil, fmt.Errorf("task runtime: %w", err)
		}
		r.a.cfg.Logger.Warn("agent: fetching the task's runtime failed; retrying", "task", r.id, "error", err)
		if !sleep(ctx, backoff) {
			return nil, ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// attachments pairs the task's addresses (the leader's IPAM) with their networks.
func attachments(t *model.Task, rt *api.TaskRuntime) ([]netstack.Attachment, error) {
	nets := make(map[string]*model.Network, len(rt.Networks))
	for _, n := range rt.Networks {
		nets[n.ID] = n
	}
	var out []netstack.Attachment
	for _, a := range t.Networks {
		n := nets[a.Network]
		if n == nil {
			return nil, fmt.Errorf("network %s of the task is unknown", a.Network)
		}
		addr, err := netip.ParsePrefix(a.Addr)
		if err != nil {
			return nil, fmt.Errorf("network %s: address %q: %w", n.Name, a.Addr, err)
		}
		nw, err := netNetwork(n)
		if err != nil {
			return nil, err
		}
		mac, err := parseMAC(a.MAC)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", n.Name, err)
		}
		out = append(out, netstack.Attachment{
			Network: nw, Addr: addr, MAC: mac, Aliases: []string{rt.Spec.Name},
		})
	}
	return out, nil
}

// hostPorts are the task's host-mode published ports; ingress ports are the routing
// mesh's, which every node learns from its network view (netService).
func hostPorts(s *spec.Service) ([]netstack.PortMapping, error) {
	var out []netstack.PortMapping
	for _, p := range s.Ports {
		if p.Mode != spec.PortModeHost {
			continue
		}
		m, ok := portMapping(p)
		if !ok {
			return nil, fmt.Errorf("ports: host-mode port %d:%d: give a published port between 1 and 65535", p.Published, p.Target)
		}
		if p.HostIP != "" {
			ip, err := netip.ParseAddr(p.HostIP)
			if err != nil {
				return nil, fmt.Errorf("ports: host_ip %q: %w", p.HostIP, err)
			}
			m.HostIP = ip
		}
		out = append(out, m)
	}
	return out, nil
}

// portMapping is a published port as netstack takes it; ok is false when a number
// is not a port.
func portMapping(p spec.Port) (m netstack.PortMapping, ok bool) {
	if p.Published == 0 || p.Published > 65535 || p.Target == 0 || p.Target > 65535 {
		return m, false
	}
	return netstack.PortMapping{Protocol: p.Protocol, Published: uint16(p.Published), Target: uint16(p.Target)}, true
}

// parseMAC parses a hardware address; an empty one is none (netstack derives it).
func parseMAC(s string) (net.HardwareAddr, error) {
	if s == "" {
		return nil, nil
	}
	mac, err := net.ParseMAC(s)
	if err != nil {
		return nil, fmt.Errorf("MAC %q: %w", s, err)
	}
	return mac, nil
}

// dnsConfig is the service's dns, dns_search and dns_opt, for its tasks' resolver
// and resolv.conf.
func dnsConfig(s *spec.Service) (netstack.DNSConfig, error) {
	c := netstack.DNSConfig{Search: s.DNSSearch, Options: s.DNSOptions}
	for _, d := range s.DNS {
		addr, err := netip.ParseAddr(d)
		if err != nil {
			return c, fmt.Errorf("dns: %w", err)
		}
		c.Servers = append(c.Servers, addr)
	}
	return c, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
