package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
)

type logFlags struct {
	opts     api.LogOptions
	tail     string
	noPrefix bool
}

func (f *logFlags) register(cmd *cobra.Command, prefix bool) {
	fl := cmd.Flags()
	fl.BoolVarP(&f.opts.Follow, "follow", "f", false, "Follow the log output")
	fl.StringVarP(&f.tail, "tail", "n", "all", "Number of lines to show from the end of the logs, or all")
	fl.BoolVarP(&f.opts.Timestamps, "timestamps", "t", false, "Show timestamps")
	fl.StringVar(&f.opts.Stream, "stream", "", "Show only stdout or stderr")
	if prefix {
		fl.BoolVar(&f.noPrefix, "no-task-name", false, "Do not prefix lines with the task's name and node")
	}
}

func (f *logFlags) options() (api.LogOptions, error) {
	o := f.opts
	if f.tail != "all" {
		n, err := strconv.Atoi(f.tail)
		if err != nil || n < 0 {
			return o, fmt.Errorf("--tail %q: give a number of lines, or all", f.tail)
		}
		o.Tail = n
	}
	return o, nil
}

func newServiceLogsCommand(host *hostFlag) *cobra.Command {
	var flags logFlags
	cmd := &cobra.Command{
		Use:   "logs [-f] [--tail N] [-t] SERVICE",
		Short: "Show the logs of a service's tasks",
		Long: `Show what the tasks of a service wrote to stdout and stderr, each line prefixed with
its task's name and node (as Docker does), from the nodes the tasks ran on. With -f,
follow them until interrupted.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := flags.options()
			if err != nil {
				return err
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			tasks, _, err := c.Tasks(cmd.Context(), api.TaskFilter{Service: args[0]}, api.Query{})
			if err != nil {
				return err
			}
			return serviceLogs(cmd.Context(), c, tasks, o, !flags.noPrefix, cmd.OutOrStdout())
		},
	}
	flags.register(cmd, true)
	return cmd
}

// serviceLogs streams the logs of every task that was placed, each through a line
// writer, so that concurrent streams never interleave within a line.
func serviceLogs(ctx context.Context, c *api.Client, tasks []*api.TaskInfo, o api.LogOptions, prefix bool, out io.Writer) error {
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	for _, t := range tasks {
		if t.NodeID == "" || !t.Status.State.After(model.TaskAssigned) {
			continue
		}
		p := ""
		if prefix {
			p = fmt.Sprintf("%s.%s@%s    | ", t.Name, shortID(t.ID, false), t.NodeHostname)
		}
		g.Go(func() error {
			lw := &lineWriter{out: out, mu: &mu, prefix: p}
			err := c.TaskLogs(ctx, t.ID, o, lw)
			lw.flush()
			return err
		})
	}
	return g.Wait()
}

// lineWriter writes whole lines, each with a prefix, under a lock shared by the
// streams of one command.
type lineWriter struct {
	out    io.Writer
	mu     *sync.Mutex
	prefix string
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		if err := w.emit(w.buf[:i+1]); err != nil {
			return 0, err
		}
		w.buf = w.buf[i+1:]
	}
}

func (w *lineWriter) emit(line []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	bw := bufio.NewWriter(w.out)
	bw.WriteString(w.prefix)
	bw.Write(line)
	return bw.Flush()
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		_ = w.emit(append(w.buf, '\n'))
		w.buf = nil
	}
}

func newTaskCommand(host *hostFlag) *cobra.Command {
	return groupCommand("task", "Inspect tasks", newTaskLogsCommand(host))
}

func newTaskLogsCommand(host *hostFlag) *cobra.Command {
	var flags logFlags
	cmd := &cobra.Command{
		Use:   "logs [-f] [--tail N] [-t] TASK",
		Short: "Show the logs of a task",
		Long: `Show what a task wrote to stdout and stderr, from the node it ran on. TASK is a task ID,
a unique prefix of one, or a task name (web_api.1: the slot's newest task).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := flags.options()
			if err != nil {
				return err
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			return c.TaskLogs(cmd.Context(), args[0], o, cmd.OutOrStdout())
		},
	}
	flags.register(cmd, false)
	return cmd
}
