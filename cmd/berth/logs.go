package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
)

type logFlags struct {
	opts         api.LogOptions
	tail         string
	since, until string
	noPrefix     bool
	noTrunc      bool
}

func (f *logFlags) register(cmd *cobra.Command, prefix bool) {
	fl := cmd.Flags()
	fl.BoolVarP(&f.opts.Follow, "follow", "f", false, "Follow the log output")
	fl.StringVarP(&f.tail, "tail", "n", "all", "Number of lines to show from the end of the logs, or all")
	fl.BoolVarP(&f.opts.Timestamps, "timestamps", "t", false, "Show timestamps")
	fl.StringVar(&f.opts.Stream, "stream", "", "Show only stdout or stderr")
	fl.StringVar(&f.since, "since", "", "Show lines written since a time (2026-12-07T10:00:00Z, 2026-12-07, a Unix time) or for a while (42m)")
	fl.StringVar(&f.until, "until", "", "Show lines written before a time (2026-12-07T10:00:00Z, 2026-12-07, a Unix time) or a while ago (42m)")
	if prefix {
		fl.BoolVar(&f.noPrefix, "no-task-name", false, "Do not prefix lines with the task's name and node")
		fl.BoolVar(&f.noPrefix, "raw", false, "Do not prefix lines with the task's name and node (Docker's name for --no-task-name)")
		fl.BoolVar(&f.noTrunc, "no-trunc", false, "Show whole task IDs in the prefix")
	}
}

func (f *logFlags) options(now time.Time) (api.LogOptions, error) {
	o := f.opts
	if f.tail != "all" {
		n, err := strconv.Atoi(f.tail)
		if err != nil || n < 0 {
			return o, fmt.Errorf("--tail %q: give a number of lines, or all", f.tail)
		}
		o.Tail = n
	}
	var err error
	if o.Since, err = logTime("since", f.since, now); err != nil {
		return o, err
	}
	if o.Until, err = logTime("until", f.until, now); err != nil {
		return o, err
	}
	return o, nil
}

// unixTime reads seconds since the epoch, with up to nine decimals (1796637600.5).
func unixTime(v string) (time.Time, bool) {
	sec, frac, _ := strings.Cut(v, ".")
	s, err := strconv.ParseUint(sec, 10, 63)
	if err != nil || len(frac) > 9 {
		return time.Time{}, false
	}
	var ns uint64
	if frac != "" {
		if ns, err = strconv.ParseUint(frac+strings.Repeat("0", 9-len(frac)), 10, 63); err != nil {
			return time.Time{}, false
		}
	}
	return time.Unix(int64(s), int64(ns)), true
}

// logTime reads --since and --until as Docker does: an RFC 3339 time, a date, a Unix
// time in seconds, or a duration that far before now. Empty is no bound.
func logTime(flag, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d.Abs()), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	if t, ok := unixTime(v); ok {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--%s %q: give a time (2026-12-07T10:00:00Z, 2026-12-07 or a Unix time) or a duration (42m)", flag, v)
}

func newServiceLogsCommand(host *hostFlag) *cobra.Command {
	var flags logFlags
	cmd := &cobra.Command{
		Use:   "logs [-f] [--tail N] [-t] [--since TIME] [--until TIME] [--raw] SERVICE|TASK",
		Short: "Show the logs of a service's tasks, or of one task",
		Long: `Show what the tasks of a service (or one task: its ID, a unique prefix of one, or its
name, web_api.1) wrote to stdout and stderr, each line prefixed with its task's name, ID
and node (as Docker does), from the nodes the tasks ran on. With -f, follow them until
interrupted, or until --until passes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := flags.options(time.Now())
			if err != nil {
				return err
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			tasks, err := logTasks(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			p := logPrefix{off: flags.noPrefix, wholeID: flags.noTrunc}
			return serviceLogs(cmd.Context(), c, tasks, o, p, cmd.OutOrStdout())
		},
	}
	flags.register(cmd, true)
	return cmd
}

// logTasks are the tasks `service logs REF` shows: the service's, or the one task REF
// names, as Docker's.
func logTasks(ctx context.Context, c *api.Client, ref string) ([]*api.TaskInfo, error) {
	tasks, _, err := c.Tasks(ctx, api.TaskFilter{Service: ref}, api.Query{})
	if !errors.Is(err, api.ErrNotFound) {
		return tasks, err
	}
	all, _, lerr := c.Tasks(ctx, api.TaskFilter{}, api.Query{})
	if lerr != nil {
		return nil, lerr
	}
	if t := findTask(all, ref); t != nil {
		return []*api.TaskInfo{t}, nil
	}
	return nil, fmt.Errorf("no such service or task: %s ('berth service ls' lists the services, 'berth service ps SERVICE' their tasks)", ref)
}

// findTask finds a task by ID, by name (the slot's newest task: tasks come newest
// first) or by unique ID prefix.
func findTask(tasks []*api.TaskInfo, ref string) *api.TaskInfo {
	var byPrefix []*api.TaskInfo
	for _, t := range tasks {
		if t.ID == ref || t.Name == ref {
			return t
		}
		if strings.HasPrefix(t.ID, ref) {
			byPrefix = append(byPrefix, t)
		}
	}
	if len(byPrefix) == 1 {
		return byPrefix[0]
	}
	return nil
}

// logPrefix names the task of each line as Docker does (name.ID@node), unless off.
type logPrefix struct {
	off, wholeID bool
}

func (p logPrefix) of(t *api.TaskInfo) string {
	if p.off {
		return ""
	}
	return fmt.Sprintf("%s.%s@%s    | ", t.Name, shortID(t.ID, p.wholeID), t.NodeHostname)
}

// serviceLogs streams the logs of every task that was placed, each through a line
// writer, so that concurrent streams never interleave within a line.
func serviceLogs(ctx context.Context, c *api.Client, tasks []*api.TaskInfo, o api.LogOptions, prefix logPrefix, out io.Writer) error {
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	for _, t := range tasks {
		if t.NodeID == "" || !t.Status.State.After(model.TaskAssigned) {
			continue
		}
		g.Go(func() error {
			lw := &lineWriter{out: out, mu: &mu, prefix: prefix.of(t)}
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
		Use:   "logs [-f] [--tail N] [-t] [--since TIME] [--until TIME] TASK",
		Short: "Show the logs of a task",
		Long: `Show what a task wrote to stdout and stderr, from the node it ran on. TASK is a task ID,
a unique prefix of one, or a task name (web_api.1: the slot's newest task).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := flags.options(time.Now())
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
