package executor

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"

	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/spec"
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

// Labels that carry a service's logging: rotation from Create to each start of its
// task, so that a restarted agent starts the log driver as the spec said.
const (
	labelLogMaxSize  = "io.berth.log.max-size"
	labelLogMaxFiles = "io.berth.log.max-files"
)

// logLabels are the container labels of a service's log rotation; none when it takes
// the node's.
func logLabels(l *spec.Logging) map[string]string {
	labels := map[string]string{}
	if l == nil {
		return labels
	}
	if l.MaxSize > 0 {
		labels[labelLogMaxSize] = strconv.FormatInt(l.MaxSize, 10)
	}
	if l.MaxFiles > 0 {
		labels[labelLogMaxFiles] = strconv.Itoa(l.MaxFiles)
	}
	return labels
}

// logConfig is the node's log rotation with what a container's labels override, for
// its log driver writing to dir. A label that does not parse (written by hand) leaves
// the node's value.
func (e *Executor) logConfig(labels map[string]string, dir string) logdriver.Config {
	cfg := e.logCfg
	cfg.Dir = dir
	if n, err := strconv.ParseInt(labels[labelLogMaxSize], 10, 64); err == nil && n > 0 {
		cfg.MaxSize = n
	}
	if n, err := strconv.Atoi(labels[labelLogMaxFiles]); err == nil && n > 0 {
		cfg.MaxFiles = n
	}
	return cfg
}
