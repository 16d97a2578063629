package netstack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// networksPath is the file that lists the task's networks (IDs, one per line, in
// attachment order): what a restarted daemon starts the task's steps again with.
func (n *Netstack) networksPath(taskID string) string {
	return filepath.Join(n.tasksDir(), taskID, "networks")
}

// startTask records the task's networks, then starts every task step for it.
func (n *Netstack) startTask(ctx context.Context, taskID string, networks []string) error {
	data := strings.Join(networks, "\n")
	if len(networks) > 0 {
		data += "\n"
	}
	if err := writeFileIfChanged(n.networksPath(taskID), []byte(data)); err != nil {
		return err
	}
	for _, step := range n.taskSteps() {
		if err := step.start(ctx, taskID, networks); err != nil {
			return fmt.Errorf("%s: %w", step.name, err)
		}
	}
	return nil
}

// stopTask stops every task step for the task (its file goes with the task's).
func (n *Netstack) stopTask(taskID string) {
	for _, step := range n.taskSteps() {
		step.stop(taskID)
	}
}

// taskNetworks reads the networks Setup recorded for the task.
func (n *Netstack) taskNetworks(taskID string) ([]string, error) {
	data, err := os.ReadFile(n.networksPath(taskID))
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(data)), nil
}

// restartTasks starts the task steps again for every task that has a networks
// file and a namespace: those of a daemon restarted under running tasks.
func (n *Netstack) restartTasks(ctx context.Context) {
	entries, err := os.ReadDir(n.tasksDir())
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			n.logger.WarnContext(ctx, "netstack: list tasks to restart their steps", "error", err)
		}
		return
	}
	for _, e := range entries {
		id := e.Name()
		if checkTaskID(id) != nil {
			continue
		}
		networks, err := n.taskNetworks(id)
		if err != nil {
			continue // no networks file: no Setup finished here
		}
		if ok, err := isNetNSMount(n.Sandbox(id).NetNSPath); err != nil || !ok {
			continue
		}
		for _, step := range n.taskSteps() {
			if err := step.start(ctx, id, networks); err != nil {
				n.logger.WarnContext(ctx, "netstack: restart a task's networking", "task", id, "step", step.name, "error", err)
			}
		}
	}
}
