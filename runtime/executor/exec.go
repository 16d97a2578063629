package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
)

// ExecOutputLimit caps the combined output Exec keeps: a health check's verdict is its
// exit code, and its output is only shown to people.
const ExecOutputLimit = 64 << 10

// ioDrainTimeout bounds the wait for an exec'd process's output after it exited: a child
// it left behind may hold the pipes open.
const ioDrainTimeout = 2 * time.Second

// Exec runs argv in the running task, with the task's environment, user and working
// directory, and returns its exit code and combined stdout and stderr (at most
// ExecOutputLimit bytes). When ctx ends first the process is killed and ctx's error
// returned.
func (e *Executor) Exec(ctx context.Context, taskID string, argv []string) (int, []byte, error) {
	if len(argv) == 0 {
		return -1, nil, fmt.Errorf("executor: exec in %s: %w: empty command", taskID, ErrInvalid)
	}
	ctx = e.nsctx(ctx)
	cont, err := e.client.LoadContainer(ctx, taskID)
	if err != nil {
		return -1, nil, wrap(err, "exec in %s", taskID)
	}
	task, err := cont.Task(ctx, nil)
	if err != nil {
		return -1, nil, fmt.Errorf("executor: exec in %s: %w: %v", taskID, ErrNotRunning, err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return -1, nil, wrap(err, "exec in %s: status", taskID)
	}
	if st.Status != client.Running {
		return -1, nil, fmt.Errorf("executor: exec in %s: %w (%s)", taskID, ErrNotRunning, st.Status)
	}
	spec, err := cont.Spec(ctx)
	if err != nil {
		return -1, nil, wrap(err, "exec in %s: spec", taskID)
	}
	pspec := *spec.Process
	pspec.Args = argv
	pspec.Terminal = false

	var idb [8]byte
	rand.Read(idb[:])
	execID := "exec-" + hex.EncodeToString(idb[:])
	out := &cappedBuffer{max: ExecOutputLimit}
	proc, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(cio.WithStreams(nil, out, out)))
	if err != nil {
		return -1, nil, wrap(err, "exec in %s", taskID)
	}
	cleanup := context.WithoutCancel(ctx)
	defer func() {
		if _, err := proc.Delete(cleanup, client.WithProcessKill); err != nil {
			e.log.Debug("delete exec process", "task", taskID, "exec", execID, "err", err)
		}
	}()
	statusC, err := proc.Wait(ctx)
	if err != nil {
		return -1, nil, wrap(err, "exec in %s: wait", taskID)
	}
	if err := proc.Start(ctx); err != nil {
		return -1, nil, wrap(err, "exec %q in %s", argv[0], taskID)
	}
	select {
	case status := <-statusC:
		drained := make(chan struct{})
		go func() { proc.IO().Wait(); close(drained) }()
		select {
		case <-drained:
		case <-time.After(ioDrainTimeout):
			proc.IO().Cancel()
		}
		code, _, err := status.Result()
		if err != nil {
			return -1, out.Bytes(), wrap(err, "exec in %s: exit status", taskID)
		}
		return int(code), out.Bytes(), nil
	case <-ctx.Done():
		if err := proc.Kill(cleanup, syscall.SIGKILL); err != nil {
			e.log.Debug("kill exec process", "task", taskID, "exec", execID, "err", err)
		}
		return -1, out.Bytes(), fmt.Errorf("executor: exec in %s: %w", taskID, ctx.Err())
	}
}
