// Package ctrtest looks at containerd directly, with its own client, for tests that
// check what berth did without trusting berth's view of it.
package ctrtest

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
)

// Task is a container of the namespace and the state of its task.
type Task struct {
	ID     string
	Labels map[string]string
	// Status is containerd's: "running", "stopped", "created"..., or "" when the
	// container has no task.
	Status string
	Pid    uint32
}

// Client is a containerd client bound to one namespace.
type Client struct {
	c  *containerd.Client
	ns string
}

// New connects to containerd at addr for namespace ns.
func New(addr, ns string) (*Client, error) {
	c, err := containerd.New(addr)
	if err != nil {
		return nil, fmt.Errorf("containerd at %s: %w", addr, err)
	}
	return &Client{c: c, ns: ns}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

func (c *Client) ctx(ctx context.Context) context.Context { return namespaces.WithNamespace(ctx, c.ns) }

// Tasks lists the namespace's containers whose labels include every pair of match.
func (c *Client) Tasks(ctx context.Context, match map[string]string) ([]Task, error) {
	ctx = c.ctx(ctx)
	cs, err := c.c.Containers(ctx)
	if err != nil {
		return nil, err
	}
	var out []Task
	for _, ct := range cs {
		labels, err := ct.Labels(ctx)
		if errdefs.IsNotFound(err) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, err
		}
		if !matches(labels, match) {
			continue
		}
		t := Task{ID: ct.ID(), Labels: labels}
		task, err := ct.Task(ctx, nil)
		if err == nil {
			st, err := task.Status(ctx)
			switch {
			case err == nil:
				t.Status, t.Pid = string(st.Status), task.Pid()
			case !errdefs.IsNotFound(err):
				return nil, err
			}
		}
		out = append(out, t)
	}
	return out, nil
}

func matches(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Kill sends SIGKILL to a container's task, as a crash would.
func (c *Client) Kill(ctx context.Context, id string) error {
	ctx = c.ctx(ctx)
	ct, err := c.c.LoadContainer(ctx, id)
	if err != nil {
		return err
	}
	task, err := ct.Task(ctx, nil)
	if err != nil {
		return err
	}
	return task.Kill(ctx, syscall.SIGKILL)
}

// RemoveNamespace removes everything in the client's namespace.
func (c *Client) RemoveNamespace(ctx context.Context) error { return RemoveNamespace(ctx, c.c, c.ns) }

// RemoveNamespace removes everything in namespace ns (tasks, containers with their
// snapshots, images), then the namespace itself: the end of a test that made it.
func RemoveNamespace(ctx context.Context, client *containerd.Client, ns string) error {
	ctx = namespaces.WithNamespace(ctx, ns)
	var errs []error
	cs, err := client.Containers(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("list containers: %w", err))
	}
	for _, ct := range cs {
		if task, err := ct.Task(ctx, nil); err == nil {
			if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil {
				errs = append(errs, fmt.Errorf("delete task %s: %w", ct.ID(), err))
			}
		}
		if err := ct.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
			errs = append(errs, fmt.Errorf("delete container %s: %w", ct.ID(), err))
		}
	}
	imgs, err := client.ImageService().List(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("list images: %w", err))
	}
	for _, img := range imgs {
		if err := client.ImageService().Delete(ctx, img.Name, images.SynchronousDelete()); err != nil {
			errs = append(errs, fmt.Errorf("delete image %s: %w", img.Name, err))
		}
	}
	// Snapshots go with the garbage collection the synchronous delete ran; give a
	// slow snapshotter a moment before calling the namespace not empty.
	var nsErr error
	for range 50 {
		nsErr = client.NamespaceService().Delete(ctx, ns)
		if nsErr == nil || errdefs.IsNotFound(nsErr) {
			nsErr = nil
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if nsErr != nil {
		errs = append(errs, fmt.Errorf("delete namespace %s: %w", ns, nsErr))
	}
	return errors.Join(errs...)
}
