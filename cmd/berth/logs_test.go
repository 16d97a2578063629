package main

import (
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
)

func TestLogTail(t *testing.T) {
	for tail, want := range map[string]int{"all": 0, "0": 0, "25": 25, "10abc": -1, "-3": -1, "": -1} {
		o, err := (&logFlags{tail: tail}).options(time.Now())
		switch {
		case want < 0 && err == nil:
			t.Errorf("--tail %q: accepted as %d", tail, o.Tail)
		case want >= 0 && (err != nil || o.Tail != want):
			t.Errorf("--tail %q: %d, %v; want %d", tail, o.Tail, err, want)
		}
	}
}

func TestLogTime(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Time
		bad  bool
	}{
		{v: ""},
		{v: "42m", want: now.Add(-42 * time.Minute)},
		{v: "2026-12-07T10:00:00Z", want: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)},
		{v: "2026-12-07T10:00:00.5+01:00", want: time.Date(2026, 12, 7, 9, 0, 0, 5e8, time.UTC)},
		{v: "2026-12-07", want: time.Date(2026, 12, 7, 0, 0, 0, 0, time.Local)},
		{v: "1796637600", want: time.Unix(1796637600, 0)},
		{v: "1796637600.000000001", want: time.Unix(1796637600, 1)},
		{v: "yesterday", bad: true},
		{v: "-5", bad: true},
	} {
		got, err := logTime("since", tc.v, now)
		switch {
		case tc.bad && err == nil:
			t.Errorf("%q: accepted as %s", tc.v, got)
		case !tc.bad && (err != nil || !got.Equal(tc.want)):
			t.Errorf("%q: %s, %v; want %s", tc.v, got, err, tc.want)
		}
	}
}

func TestFindTaskByIDNameOrPrefix(t *testing.T) {
	task := func(id, name string) *api.TaskInfo { return &api.TaskInfo{Task: &model.Task{ID: id}, Name: name} }
	tasks := []*api.TaskInfo{task("abc123", "web.1"), task("abd456", "web.1"), task("xyz789", "web.2")}
	for ref, want := range map[string]string{"abd456": "abd456", "web.1": "abc123", "xy": "xyz789", "ab": "", "web.3": ""} {
		got := findTask(tasks, ref)
		if (got == nil && want != "") || (got != nil && got.ID != want) {
			t.Errorf("%q: %v, want %q", ref, got, want)
		}
	}
}
