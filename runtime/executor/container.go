package executor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"syscall"
	"time"

	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/spec"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Container labels. The containerd container id is the task id.
const (
	LabelTask     = "io.berth.task"
	LabelTaskName = "io.berth.task-name"
	LabelStack    = "io.berth.stack"
	LabelService  = "io.berth.service"
	LabelSpecHash = "io.berth.spec-hash"

	labelStopGrace = "io.berth.stop-grace-period"
)

// Container is what the agent asks the executor to create for one task.
type Container struct {
	TaskID   string // containerd container id; letters, digits, '_', '.', '-'
	TaskName string // e.g. web_api.1
	Stack    string
	Service  string
	SpecHash string
	Spec     *spec.Service
	// Hostname defaults to Spec.Hostname, then to the first 12 characters of TaskID.
	Hostname string
	// NetNSPath is a network namespace (made by netstack) to join; "" gives the task a
	// new namespace with only loopback.
	NetNSPath string
	// Mounts are extra mounts prepared by the agent: secrets, /etc/hosts, resolv.conf.
	Mounts []specs.Mount
	// Volumes maps the spec's volume mount sources to node-local volume names (the
	// stack file's `name:`); a source missing here is named <stack>_<source>.
	Volumes map[string]string
}

// State of a berth container as List reports it.
type State string

// States.
const (
	StateCreated State = "created" // never started
	StateRunning State = "running"
	StateStopped State = "stopped" // its process exited (or was lost with containerd's state)
)

// Info describes one berth container.
type Info struct {
	TaskID, TaskName, Stack, Service, SpecHash string
	Image                                      string
	Labels                                     map[string]string
	State                                      State
	Pid                                        uint32 // when running
	// ExitCode and ExitedAt are set when State is StateStopped. ExitCode is -1 when the
	// task's exit was not recorded (containerd lost the task, e.g. across a reboot).
	ExitCode  int
	ExitedAt  time.Time
	CreatedAt time.Time
}

// Create makes the container for c: validates the spec, prepares its mounts and root
// filesystem snapshot, and records it in containerd. The image must be present
// (EnsureImage or ImportImage first). A container of the same task id that already exists
// is left as it is.
func (e *Executor) Create(ctx context.Context, c Container) error {
	if err := checkTaskID(c.TaskID); err != nil {
		return err
	}
	if c.Spec == nil || c.Spec.Image == "" {
		return fmt.Errorf("executor: create %s: %w: no service spec or image", c.TaskID, ErrInvalid)
	}
	ctx = e.nsctx(ctx)
	img, err := e.image(ctx, c.Spec.Image)
	if err != nil {
		return fmt.Errorf("executor: create %s: %w", c.TaskID, err)
	}
	if err := e.unpack(ctx, img); err != nil {
		return err
	}

	stopLabels, err := stopSettings(c.Spec)
	if err != nil {
		return fmt.Errorf("executor: create %s: %w", c.TaskID, err)
	}
	vols, err := driverVolumes(c)
	if err != nil {
		return fmt.Errorf("executor: create %s: %w", c.TaskID, err)
	}
	e.warnUnboundedVolumes(c)
	created := false
	if len(vols) > 0 {
		// Until the container exists it is not counted as a user: no removal
		// of another may unmount the volume in between.
		e.volumeMu.Lock()
		defer e.volumeMu.Unlock()
		defer func() {
			if created {
				return
			}
			if err := e.releaseVolumes(ctx, vols); err != nil {
				e.log.Warn("unmounting the volumes of a container not created failed", "task", c.TaskID, "error", err)
			}
		}()
		if err := e.mountVolumes(ctx, vols); err != nil {
			return fmt.Errorf("executor: create %s: %w", c.TaskID, err)
		}
	}
	mounts, err := e.mounts(c)
	if err != nil {
		return fmt.Errorf("executor: create %s: %w", c.TaskID, err)
	}
	hostname := c.Hostname
	if hostname == "" {
		hostname = c.Spec.Hostname
	}
	if hostname == "" {
		hostname = c.TaskID[:min(12, len(c.TaskID))]
	}
	specOpts, err := e.specOpts(c, img, hostname, mounts)
	if err != nil {
		return fmt.Errorf("executor: create %s: %w", c.TaskID, err)
	}

	labels := maps.Clone(c.Spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, stopLabels)
	maps.Copy(labels, volumeLabels(vols))
	maps.Copy(labels, logLabels(c.Spec.Logging))
	maps.Copy(labels, map[string]string{
		LabelTask: c.TaskID, LabelTaskName: c.TaskName, LabelStack: c.Stack,
		LabelService: c.Service, LabelSpecHash: c.SpecHash,
	})
	opts := []client.NewContainerOpts{
		client.WithImage(img),
		client.WithSnapshotter(e.snapshotter),
		client.WithNewSnapshot(c.TaskID, img),
	}
	if c.Spec.StopSignal == "" {
		opts = append(opts, client.WithImageStopSignal(img, "SIGTERM"))
	}
	opts = append(opts,
		client.WithAdditionalContainerLabels(labels),
		client.WithNewSpec(specOpts...))
	cont, err := e.client.NewContainer(ctx, c.TaskID, opts...)
	if err != nil {
		// Made before (its snapshot or itself): creating it again is a no-op.
		if errdefs.IsAlreadyExists(err) {
			created = true
			return nil
		}
		if errdefs.IsNotFound(err) {
			// The image's snapshots may be gone (an image removed and loaded
			// again): look again next time.
			e.unpacked.Delete(img.Target().Digest)
		}
		// Errors of the spec options (an unknown user, no command) are the spec's fault.
		if errors.Is(err, ErrInvalid) {
			return fmt.Errorf("executor: create %s: %w", c.TaskID, err)
		}
		return wrap(err, "create %s", c.TaskID)
	}
	created = true
	e.fresh.Store(c.TaskID, cont)
	e.log.Info("created container", "task", c.TaskID, "name", c.TaskName, "image", c.Spec.Image)
	return nil
}

// Start runs the task's process, its output going to the log driver. A running task is
// left alone; a stopped one is started again (same container, same logs).
func (e *Executor) Start(ctx context.Context, taskID string) error {
	ctx = e.nsctx(ctx)
	if cont, ok := e.fresh.LoadAndDelete(taskID); ok {
		return e.startTask(ctx, cont.(client.Container))
	}
	cont, err := e.client.LoadContainer(ctx, taskID)
	if err != nil {
		return wrap(err, "start %s", taskID)
	}
	task, err := cont.Task(ctx, nil)
	switch {
	case err == nil:
		st, err := task.Status(ctx)
		if err != nil {
			return wrap(err, "start %s: status", taskID)
		}
		switch st.Status {
		case client.Running, client.Paused, client.Pausing:
			return nil
		case client.Created:
			return wrap(task.Start(ctx), "start %s", taskID)
		}
		if _, err := task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			return wrap(err, "start %s: delete the previous task", taskID)
		}
	case !errdefs.IsNotFound(err):
		return wrap(err, "start %s", taskID)
	}
	return e.startTask(ctx, cont)
}

// startTask makes the container's task and starts it.
func (e *Executor) startTask(ctx context.Context, cont client.Container) error {
	taskID := cont.ID()
	info, err := cont.Info(ctx, client.WithoutRefreshedMetadata)
	if err != nil {
		return wrap(err, "start %s: container info", taskID)
	}
	if err := e.remountVolumes(ctx, info.Labels); err != nil {
		return fmt.Errorf("executor: start %s: %w", taskID, err)
	}
	// The log directory also marks the container as started once (see info): a
	// file system write, where a label would be a containerd metadata commit.
	dir := e.logDir(taskID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("executor: start %s: log directory: %w", taskID, err)
	}
	creator := cio.NullIO
	if e.logDriver != "" {
		creator = cio.BinaryIO(e.logDriver, logdriver.Args(e.logConfig(info.Labels, dir)))
	}
	task, err := cont.NewTask(ctx, creator)
	if err != nil {
		return wrap(err, "start %s: create task", taskID)
	}
	if err := task.Start(ctx); err != nil {
		if _, derr := task.Delete(context.WithoutCancel(ctx), client.WithProcessKill); derr != nil {
			e.log.Warn("delete a task that failed to start", "task", taskID, "err", derr)
		}
		return wrap(err, "start %s", taskID)
	}
	e.log.Info("started task", "task", taskID, "pid", task.Pid())
	return nil
}

// Stop sends the task its stop signal (stop_signal, the image's, or SIGTERM), waits the
// stop grace period (default 10s) and then kills every process of the task. A task that
// does not exist or does not run is left as it is. If ctx ends first, Stop returns its
// error and the task may still be running.
func (e *Executor) Stop(ctx context.Context, taskID string) error {
	ctx = e.nsctx(ctx)
	cont, err := e.client.LoadContainer(ctx, taskID)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return wrap(err, "stop %s", taskID)
	}
	task, err := cont.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return wrap(err, "stop %s", taskID)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return wrap(err, "stop %s: status", taskID)
	}
	switch st.Status {
	case client.Stopped:
		return nil
	case client.Created:
		// Never started: there is nothing to signal, only the waiting process to drop.
		_, err := task.Delete(ctx, client.WithProcessKill)
		return wrap(ignoreNotFound(err), "stop %s", taskID)
	}

	sig, err := client.GetStopSignal(ctx, cont, syscall.SIGTERM)
	if err != nil {
		return wrap(err, "stop %s: stop signal", taskID)
	}
	grace := DefaultStopGracePeriod
	if labels, err := cont.Labels(ctx); err == nil {
		if d, err := time.ParseDuration(labels[labelStopGrace]); err == nil {
			grace = d
		}
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		return wrap(err, "stop %s: wait", taskID)
	}
	if st.Status == client.Paused {
		// A frozen process cannot act on its signal.
		if err := task.Resume(ctx); err != nil && !errdefs.IsNotFound(err) {
			return wrap(err, "stop %s: resume", taskID)
		}
	}
	if err := task.Kill(ctx, sig); err != nil {
		if errdefs.IsNotFound(err) {
			return nil
		}
		return wrap(err, "stop %s: signal %v", taskID, sig)
	}
	e.log.Info("stopping task", "task", taskID, "signal", sig, "grace", grace)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("executor: stop %s: %w", taskID, ctx.Err())
	case <-timer.C:
	}
	e.log.Info("grace period over, killing task", "task", taskID)
	if err := task.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return wrap(err, "stop %s: kill", taskID)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("executor: stop %s: %w", taskID, ctx.Err())
	}
}

// Remove deletes the task (killing it if it runs), the container, its snapshot and its
// anonymous volumes. Named volumes stay, and so do the logs, which outlive the container
// until RemoveLogs. Removing what does not exist is not an error.
func (e *Executor) Remove(ctx context.Context, taskID string) error {
	if err := checkTaskID(taskID); err != nil {
		return err
	}
	ctx = e.nsctx(ctx)
	e.fresh.Delete(taskID)
	cont, err := e.client.LoadContainer(ctx, taskID)
	switch {
	case err == nil:
		info, err := cont.Info(ctx, client.WithoutRefreshedMetadata)
		if err != nil {
			return wrap(err, "remove %s", taskID)
		}
		vols := labelledVolumes(info.Labels)
		if len(vols) > 0 {
			e.volumeMu.Lock()
			defer e.volumeMu.Unlock()
		}
		task, err := cont.Task(ctx, nil)
		if err == nil {
			_, err = task.Delete(ctx, client.WithProcessKill)
		}
		if err := ignoreNotFound(err); err != nil {
			return wrap(err, "remove %s: delete task", taskID)
		}
		if err := ignoreNotFound(cont.Delete(ctx, client.WithSnapshotCleanup)); err != nil {
			return wrap(err, "remove %s", taskID)
		}
		e.log.Info("removed container", "task", taskID)
		if err := e.releaseVolumes(ctx, vols); err != nil {
			return fmt.Errorf("executor: remove %s: %w", taskID, err)
		}
	case !errdefs.IsNotFound(err):
		return wrap(err, "remove %s", taskID)
	}
	if err := os.RemoveAll(e.anonymousDir(taskID)); err != nil {
		return fmt.Errorf("executor: remove %s: %w", taskID, err)
	}
	return nil
}

// RemoveLogs deletes a task's log files. The log driver of a task that still runs keeps
// writing to its open file until the task ends, so call it after Remove.
func (e *Executor) RemoveLogs(taskID string) error {
	if err := checkTaskID(taskID); err != nil {
		return err
	}
	if err := os.RemoveAll(e.logDir(taskID)); err != nil {
		return fmt.Errorf("executor: remove logs of %s: %w", taskID, err)
	}
	return nil
}

func ignoreNotFound(err error) error {
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// List returns every berth container in the namespace with its state, so that an agent
// that restarts can adopt the tasks that kept running and report the ones that exited.
func (e *Executor) List(ctx context.Context) ([]Info, error) {
	ctx = e.nsctx(ctx)
	conts, err := e.client.Containers(ctx, fmt.Sprintf("labels.%q", LabelTask))
	if err != nil {
		return nil, wrap(err, "list containers")
	}
	infos := make([]Info, 0, len(conts))
	for _, c := range conts {
		info, err := e.info(ctx, c)
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// Inspect returns one berth container's Info.
func (e *Executor) Inspect(ctx context.Context, taskID string) (Info, error) {
	ctx = e.nsctx(ctx)
	c, err := e.client.LoadContainer(ctx, taskID)
	if err != nil {
		return Info{}, wrap(err, "inspect %s", taskID)
	}
	return e.info(ctx, c)
}

func (e *Executor) info(ctx context.Context, c client.Container) (Info, error) {
	ci, err := c.Info(ctx, client.WithoutRefreshedMetadata)
	if err != nil {
		return Info{}, wrap(err, "inspect %s", c.ID())
	}
	info := Info{
		TaskID:    c.ID(),
		TaskName:  ci.Labels[LabelTaskName],
		Stack:     ci.Labels[LabelStack],
		Service:   ci.Labels[LabelService],
		SpecHash:  ci.Labels[LabelSpecHash],
		Image:     ci.Image,
		Labels:    ci.Labels,
		State:     StateCreated,
		CreatedAt: ci.CreatedAt,
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		// A container whose task containerd lost (a reboot) reads as stopped if its
		// task was ever started, as never started otherwise.
		if _, err := os.Stat(e.logDir(c.ID())); err == nil {
			info.State, info.ExitCode = StateStopped, -1
		}
		return info, nil
	}
	if err != nil {
		return Info{}, wrap(err, "inspect %s: task", c.ID())
	}
	st, err := task.Status(ctx)
	if errdefs.IsNotFound(err) {
		return info, nil
	}
	if err != nil {
		return Info{}, wrap(err, "inspect %s: status", c.ID())
	}
	switch st.Status {
	case client.Running, client.Paused, client.Pausing:
		info.State, info.Pid = StateRunning, task.Pid()
	case client.Stopped:
		info.State, info.ExitCode, info.ExitedAt = StateStopped, int(st.ExitStatus), st.ExitTime
	}
	return info, nil
}
