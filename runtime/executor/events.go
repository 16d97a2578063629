package executor

import (
	"context"
	"fmt"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/typeurl/v2"
)

// Exit reports that a task's main process exited.
type Exit struct {
	TaskID string
	Code   int
	At     time.Time
}

// Exits streams the exits of tasks' main processes in the namespace, from containerd's
// /tasks/exit events (exec'd processes such as health checks are left out). The channel
// closes when ctx ends or the event stream breaks (logged). Subscribe before starting
// tasks; after a (re)subscription, List tells what exited while nobody listened.
func (e *Executor) Exits(ctx context.Context) (<-chan Exit, error) {
	ctx = e.nsctx(ctx)
	filter := fmt.Sprintf(`namespace==%q,topic=="/tasks/exit"`, e.ns)
	evs, errs := e.client.Subscribe(ctx, filter)
	// Subscribe reports a failure to open the stream on errs at once; look before
	// handing out a channel that would only close.
	select {
	case err := <-errs:
		if err != nil {
			return nil, wrap(err, "subscribe to task exits")
		}
		return nil, fmt.Errorf("executor: subscribe to task exits: %w", ErrUnavailable)
	default:
	}
	out := make(chan Exit, 64)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-errs:
				if err != nil && ctx.Err() == nil {
					e.log.Error("task exit events stopped", "err", err)
				}
				return
			case env := <-evs:
				if env == nil || env.Event == nil {
					continue
				}
				v, err := typeurl.UnmarshalAny(env.Event)
				if err != nil {
					e.log.Warn("undecodable task event", "topic", env.Topic, "err", err)
					continue
				}
				te, ok := v.(*apievents.TaskExit)
				// An exec'd process has its own id; the main process's is the container's.
				if !ok || te.ID != te.ContainerID {
					continue
				}
				ex := Exit{TaskID: te.ContainerID, Code: int(te.ExitStatus), At: env.Timestamp}
				if te.ExitedAt != nil {
					ex.At = te.ExitedAt.AsTime()
				}
				select {
				case out <- ex:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
