package executor

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/berthd/berth/runtime/logdriver"
)

// LogOptions select the lines Logs renders: Tail, Since, Follow, the Stdout/Stderr
// streams (neither means both) and Timestamps.
type LogOptions = logdriver.ReadOptions

// Logs writes the task's output as plain lines to w. With Follow it keeps writing new
// lines until ctx ends, across log rotations and restarts of berth. The logs of a removed
// container can be read until RemoveLogs; a task with neither logs nor a container is
// ErrNotFound.
func (e *Executor) Logs(ctx context.Context, taskID string, o LogOptions, w io.Writer) error {
	if err := checkTaskID(taskID); err != nil {
		return err
	}
	dir := e.logDir(taskID)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if _, err := e.client.LoadContainer(e.nsctx(ctx), taskID); err != nil {
			return wrap(err, "logs of %s", taskID)
		}
	}
	return logdriver.Read(ctx, dir, o, w)
}
