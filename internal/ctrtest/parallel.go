package ctrtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Snapshotter is the snapshotter RunParallel uses: berth's default
// (runtime/executor.DefaultSnapshotter), so that a baseline pays for the same kind of
// root filesystem as berth's tasks.
const Snapshotter = "overlayfs"

// LabelParallel marks the containers RunParallel makes (its value is the batch), so
// that RemoveContainers finds them and berth's agent, which only looks at containers
// labelled io.berth.task, leaves them alone in a namespace it shares.
const LabelParallel = "io.berth.ctrtest.batch"

// RunOption changes the containers RunParallel makes.
type RunOption func(*runConfig)

type runConfig struct {
	specOpts []oci.SpecOpts
	setup    ContainerSetup
}

// ContainerSetup returns what the container with the given ID gets beyond the
// defaults. It runs in the container's goroutine, inside the measured time.
type ContainerSetup func(id string) (Setup, error)

// Setup is what a ContainerSetup adds to one container, in terms that need no
// containerd package of the caller.
type Setup struct {
	// Mounts are added to the spec's.
	Mounts []specs.Mount
	// LogBinary, if set, receives the container's output, started by the shim with
	// LogArgs (containerd's binary:// logging); without it the output is dropped.
	LogBinary string
	LogArgs   map[string]string
}

// WithSetup gives each container what setup returns for it, after the default ones:
// the bare client making the containers another runtime makes.
func WithSetup(setup ContainerSetup) RunOption {
	return func(c *runConfig) { c.setup = setup }
}

// WithDefaultSeccomp gives the containers containerd's default seccomp profile, the
// one berth's executor (and Docker) applies to unprivileged tasks: runc compiles and
// loads it at every start, which a bare client does not pay.
func WithDefaultSeccomp() RunOption {
	return func(c *runConfig) { c.specOpts = append(c.specOpts, seccomp.WithDefaultProfile()) }
}

// RunParallel is what a bare containerd client does to run n containers of image at
// once: one goroutine per container gets the image, creates the container with a new
// snapshot and a spec from the image with argv as its command (so its own network
// namespace with only loopback, as runc gives by default), creates its task without IO
// and starts it. It returns the time from the start of the first call to the return
// of the last Start. The image must be in the namespace and unpacked for Snapshotter.
//
// The containers stay running, labelled LabelParallel; RemoveContainers removes them,
// also what a failed call left.
func (c *Client) RunParallel(ctx context.Context, image string, n int, argv []string, opts ...RunOption) (time.Duration, error) {
	ctx = c.ctx(ctx)
	var cfg runConfig
	for _, o := range opts {
		o(&cfg)
	}
	var b [4]byte
	rand.Read(b[:])
	batch := hex.EncodeToString(b[:])
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			errs[i] = c.runOne(ctx, fmt.Sprintf("ctrtest-%s-%d", batch, i), batch, image, argv, cfg)
		})
	}
	wg.Wait()
	took := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("ctrtest: run %d containers of %s: %w", n, image, err)
	}
	return took, nil
}

func (c *Client) runOne(ctx context.Context, id, batch, image string, argv []string, cfg runConfig) error {
	img, err := c.c.GetImage(ctx, image)
	if err != nil {
		return fmt.Errorf("%s: image: %w", id, err)
	}
	specOpts := append([]oci.SpecOpts{oci.WithImageConfigArgs(img, argv), oci.WithHostname(id)}, cfg.specOpts...)
	io := cio.NullIO
	if cfg.setup != nil {
		setup, err := cfg.setup(id)
		if err != nil {
			return fmt.Errorf("%s: set up: %w", id, err)
		}
		specOpts = append(specOpts, oci.WithMounts(setup.Mounts))
		if setup.LogBinary != "" {
			io = cio.BinaryIO(setup.LogBinary, setup.LogArgs)
		}
	}
	ct, err := c.c.NewContainer(ctx, id,
		containerd.WithImage(img),
		containerd.WithSnapshotter(Snapshotter),
		containerd.WithNewSnapshot(id, img),
		containerd.WithAdditionalContainerLabels(map[string]string{LabelParallel: batch}),
		containerd.WithNewSpec(specOpts...))
	if err != nil {
		return fmt.Errorf("%s: create container: %w", id, err)
	}
	task, err := ct.NewTask(ctx, io)
	if err != nil {
		return fmt.Errorf("%s: create task: %w", id, err)
	}
	if err := task.Start(ctx); err != nil {
		return fmt.Errorf("%s: start task: %w", id, err)
	}
	return nil
}

// RemoveContainers kills and deletes, in parallel, the tasks and containers (with
// their snapshots) of the namespace whose labels include every pair of match; an
// empty value matches any value of the label, so MatchParallel removes what
// RunParallel made.
func (c *Client) RemoveContainers(ctx context.Context, match map[string]string) error {
	ctx = c.ctx(ctx)
	var filters []string
	for k, v := range match {
		if v == "" {
			filters = append(filters, fmt.Sprintf("labels.%q", k))
		} else {
			filters = append(filters, fmt.Sprintf("labels.%q==%q", k, v))
		}
	}
	// containerd ORs filters given separately; joined by commas they AND.
	var filter []string
	if len(filters) > 0 {
		filter = []string{strings.Join(filters, ",")}
	}
	cs, err := c.c.Containers(ctx, filter...)
	if err != nil {
		return fmt.Errorf("ctrtest: list containers: %w", err)
	}
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, ct := range cs {
		wg.Go(func() {
			if task, err := ct.Task(ctx, nil); err == nil {
				if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
					errs[i] = fmt.Errorf("delete task %s: %w", ct.ID(), err)
					return
				}
			} else if !errdefs.IsNotFound(err) {
				errs[i] = fmt.Errorf("task of %s: %w", ct.ID(), err)
				return
			}
			if err := ct.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
				errs[i] = fmt.Errorf("delete container %s: %w", ct.ID(), err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ctrtest: remove containers: %w", err)
	}
	return nil
}

// MatchParallel matches every container RunParallel made, of any batch.
var MatchParallel = map[string]string{LabelParallel: ""}

// TaskStart is a task's main process started, as containerd's /tasks/start event
// tells it.
type TaskStart struct {
	ContainerID string
	Pid         uint32
	// At is when containerd published the event.
	At time.Time
}

// TaskStarts streams the namespace's task starts until ctx ends or the event stream
// breaks; then the channel closes. Subscribe before what starts the tasks.
func (c *Client) TaskStarts(ctx context.Context) (<-chan TaskStart, error) {
	ctx = c.ctx(ctx)
	evs, errs := c.c.Subscribe(ctx, fmt.Sprintf(`namespace==%q,topic=="/tasks/start"`, c.ns))
	// A stream that failed to open says so at once; a channel that would only close
	// tells the caller nothing.
	select {
	case err := <-errs:
		return nil, fmt.Errorf("ctrtest: subscribe to task starts: %w", err)
	default:
	}
	out := make(chan TaskStart, 256)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case <-errs:
				return
			case env := <-evs:
				if env == nil || env.Event == nil {
					continue
				}
				v, err := typeurl.UnmarshalAny(env.Event)
				if err != nil {
					continue
				}
				ts, ok := v.(*apievents.TaskStart)
				if !ok {
					continue
				}
				select {
				case out <- TaskStart{ContainerID: ts.ContainerID, Pid: ts.Pid, At: env.Timestamp}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
