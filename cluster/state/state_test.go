package state

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// tableCase drives the same upsert/get/list/delete checks over every table.
type tableCase struct {
	table string
	// mk returns the i-th valid row (i < 3). Rows are built so that the
	// lister's order is the order of i, while the primary keys sort the
	// other way where the lister does not sort by primary key.
	mk     func(i int) row
	upsert func(*WriteTxn, row) error
	get    func(*ReadTxn, row) (row, error)
	list   func(*ReadTxn) ([]row, error)
	del    func(*WriteTxn, row) error
	// change modifies a row (a copy) in a way the table accepts.
	change func(row)
	// listed transforms a stored row into what the lister returns.
	listed func(row) row
}

func rows[T any, P interface {
	*T
	row
}](in []*T, err error) ([]row, error) {
	out := make([]row, len(in))
	for i, r := range in {
		out[i] = P(r)
	}
	return out, err
}

func asRow[T any, P interface {
	*T
	row
}](r *T, err error) (row, error) {
	if r == nil {
		return nil, err
	}
	return P(r), err
}

func tableCases() []tableCase {
	rev := func(i int) string { return fmt.Sprintf("id-%d", 9-i) }
	return []tableCase{{
		table: TableCluster,
		mk: func(i int) row {
			return &model.Cluster{ID: "c", Settings: model.DefaultSettings(), JoinTokens: model.JoinTokens{Worker: "w"}}
		},
		upsert: func(w *WriteTxn, r row) error { return w.UpsertCluster(r.(*model.Cluster)) },
		get:    func(r *ReadTxn, _ row) (row, error) { return asRow(r.Cluster(nil)) },
		del:    func(w *WriteTxn, r row) error { return w.DeleteCluster(r.Key()) },
		change: func(r row) { r.(*model.Cluster).Autolock = true },
	}, {
		table: TableNodes,
		mk: func(i int) row {
			return &model.Node{ID: rev(i), Hostname: fmt.Sprintf("host-%d", i), Role: model.RoleWorker,
				Availability: model.AvailabilityActive, Status: model.NodeStatus{State: model.NodeReady},
				Labels: map[string]string{"os": "linux"}}
		},
		upsert: func(w *WriteTxn, r row) error { return w.UpsertNode(r.(*model.Node)) },
		get:    func(r *ReadTxn, k row) (row, error) { return asRow(r.Node(nil, k.Key())) },
		list:   func(r *ReadTxn) ([]row, error) { return rows(r.Nodes(nil)) },
		del:    func(w *WriteTxn, r row) error { return w.DeleteNode(r.Key()) },
		change: func(r row) { r.(*model.Node).Labels["zone"] = "a" },
	}, {
		table: TableSources,
		mk: func(i int) row {
			return &model.Source{Name: fmt.Sprintf("src-%d", i), Kind: model.SourceGitPull, URL: "https://x"}
		},
		upsert: func(w *WriteTxn, r row) error { return w.UpsertSource(r.(*model.Source)) },
		get:    func(r *ReadTxn, k row) (row, error) { return asRow(r.Source(nil, k.Key())) },
		list:   func(r *ReadTxn) ([]row, error) { return rows(r.Sources(nil)) },
		del:    func(w *WriteTxn, r row) error { return w.DeleteSource(r.Key()) },
		change: func(r row) { r.(*model.Source).Suspended = true },
	}, {
		table: TableStacks,
		mk: func(i int) row {
			name := fmt.Sprintf("stack-%d", i)
			return &model.Stack{Name: name, Source: "src", Revision: "abc",
				Spec: &spec.Stack{Name: name, Services: map[string]*spec.Service{"api": {Name: "api", Image: "busybox"}}}}
		},
		upsert: func(w *WriteTxn, r row) error { return w.UpsertStack(r.(*model.Stack)) },
		get:    func(r *ReadTxn, k row) (row, error) { return asRow(r.Stack(nil, k.Key())) },
		list:   func(r *ReadTxn) ([]row, error) { return rows(r.Stacks(nil)) },
		del:    func(w *WriteTxn, r row) error { return w.DeleteStack(r.Key()) },
		change: func(r row) { r.(*model.Stack).Spec.Services["api"].Image = "busybox:2" },
	}, {
		table: TableServices,
		mk: func(i int) row {
			return &model.Service{ID: rev(i), Name: fmt.Sprintf("web_svc-%d", i), Stack: "web",
				Spec: spec.Service{Name: fmt.Sprintf("svc-%d", i), Image: "busybox", Deploy: spec.Deploy{Replicas: ptr(uint64(0))}}}
		},
		upsert: func(w *WriteTxn, r row) error { return w.UpsertService(r.(*model.Service)) },
		get:    func(r *ReadTxn, k row) (row, error) { return asRow(r.Service(nil, k.Key())) },
		list:   func(r *ReadTxn) ([]row, error) { return rows(r.Services(nil)) },
		del:    func(w *WriteTxn, r row) error { return w.DeleteService(r.Key()) },
		change: func(r row) { *r.(*model.Service).Spec.Deploy.Replicas = 3 },
	}, {
		table: TableTasks,
		mk: func(i int) row {
			return &model.Task{ID: fmt.Sprintf("task-%d", i), ServiceID: "svc", Slot: uint64(i + 1),
				DesiredState: model.TaskRunning, Status: model.TaskStatus{State: model.TaskPending},
				Networks: []model.Attachment{{Network: "n", Addr: "10.0.0.2/24"}}}
		},
		upsert: func(w *WriteTxn, r row) error { return w.UpsertTask(r.(*model.Task)) },
		get:    func(r *ReadTxn, k row) (row, error) { return asRow(r.Task(nil, k.Key())) },
		list:   func(r *ReadTxn) ([]row, error) { return rows(r.Tasks(nil)) },
		del:    func(w *WriteTxn, r row) error { return w.DeleteTask(r.Key()) },
		change: func(r row) { r.(*model.Task).Networks[0].Addr = "10.0.0.3/24" },
	}, {
		table: TableNetworks,
		mk: func(i int) row {
			return &model.Network{ID: rev(i), Name: fmt.Sprintf("web_net-%d", i), Driver: "overlay", VNI: uint32(4096 + i)}
		},
		upsert: func(w *WriteTxn, r row) error { return w.UpsertNetwork(r.(*model.Network)) },
		get:    func(r *ReadTxn, k row) (row, error) { return asRow(r.Network(nil, k.Key())) },
		list:   func(r *ReadTxn) ([]row, error) { return rows(r.Networks(nil)) },
		del:    func(w *WriteTxn, r row) error { return w.DeleteNetwork(r.Key()) },
		change: func(r row) { r.(*model.Network).Internal = true },
	}, {
		table: TableSecrets,
		mk: func(i int) row {
			return &model.Secret{ID: rev(i), Name: fmt.Sprintf("web_pw-%d", i), Version: 1, Data: []byte("hunter2")}
		},
		upsert: func(w *WriteTxn, r row) error { return w.UpsertSecret(r.(*model.Secret)) },
		get:    func(r *ReadTxn, k row) (row, error) { return asRow(r.SecretByID(nil, k.Key())) },
		list:   func(r *ReadTxn) ([]row, error) { return rows(r.Secrets(nil)) },
		del:    func(w *WriteTxn, r row) error { return w.DeleteSecret(r.Key()) },
		change: func(r row) { r.(*model.Secret).Labels = map[string]string{"a": "b"} },
		listed: func(r row) row { return r.(*model.Secret).Redacted() },
	}, {
		table: TableConfigs,
		mk: func(i int) row {
			return &model.Config{ID: rev(i), Name: fmt.Sprintf("web_conf-%d", i), Version: 1, Data: []byte("x=1")}
		},
		upsert: func(w *WriteTxn, r row) error { return w.UpsertConfig(r.(*model.Config)) },
		get:    func(r *ReadTxn, k row) (row, error) { return asRow(r.ConfigByID(nil, k.Key())) },
		list:   func(r *ReadTxn) ([]row, error) { return rows(r.Configs(nil)) },
		del:    func(w *WriteTxn, r row) error { return w.DeleteConfig(r.Key()) },
		change: func(r row) { r.(*model.Config).Data[0] = 'y' },
	}, {
		table: TableVolumes,
		mk: func(i int) row {
			return &model.Volume{ID: rev(i), Node: "node-1", Name: fmt.Sprintf("data-%d", i), Options: map[string]string{"o": "1"}}
		},
		upsert: func(w *WriteTxn, r row) error { return w.UpsertVolume(r.(*model.Volume)) },
		get:    func(r *ReadTxn, k row) (row, error) { return asRow(r.Volume(nil, k.Key())) },
		list:   func(r *ReadTxn) ([]row, error) { return rows(r.Volumes(nil)) },
		del:    func(w *WriteTxn, r row) error { return w.DeleteVolume(r.Key()) },
		change: func(r row) { r.(*model.Volume).Options["o"] = "2" },
	}}
}

// copyRow deep-copies any row through its Copy method.
func copyRow(r row) row {
	return reflect.ValueOf(r).MethodByName("Copy").Call(nil)[0].Interface().(row)
}

// withMeta returns a copy of r with the given Meta.
func withMeta(r row, create, modify uint64) row {
	c := copyRow(r)
	*c.RowMeta() = model.Meta{CreateIndex: create, ModifyIndex: modify}
	return c
}

func TestTables(t *testing.T) {
	cases := tableCases()
	if len(cases) != len(Tables()) {
		t.Fatalf("%d table cases for %d tables", len(cases), len(Tables()))
	}
	for _, tc := range cases {
		t.Run(tc.table, func(t *testing.T) {
			s := newStore(t)
			n := 3
			if tc.table == TableCluster {
				n = 1
			}
			var in []row
			for i := range n {
				in = append(in, tc.mk(i))
			}

			// Insert at 10, in reverse so that the listers must sort.
			commit(t, s, 10, func(w *WriteTxn) error {
				for i := n - 1; i >= 0; i-- {
					if err := tc.upsert(w, in[i]); err != nil {
						return err
					}
				}
				return nil
			})
			for _, r := range in {
				if *r.RowMeta() != (model.Meta{}) {
					t.Errorf("upsert changed the caller's Meta: %+v", *r.RowMeta())
				}
			}
			r := s.ReadTxn()
			for _, want := range in {
				got, err := tc.get(r, want)
				if err != nil {
					t.Fatal(err)
				}
				if w := withMeta(want, 10, 10); !reflect.DeepEqual(got, w) {
					t.Errorf("get %s:\n got %+v\nwant %+v", want.Key(), got, w)
				}
			}
			if tc.list != nil {
				got, err := tc.list(r)
				if err != nil {
					t.Fatal(err)
				}
				var want []row
				for _, w := range in {
					w = withMeta(w, 10, 10)
					if tc.listed != nil {
						w = tc.listed(w)
					}
					want = append(want, w)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("list:\n got %v\nwant %v", keys(got), keys(want))
				}
			}
			if got := r.Index(tc.table); got != 10 {
				t.Errorf("table index = %d, want 10", got)
			}
			if got := r.Index(); got != 10 {
				t.Errorf("store index = %d, want 10", got)
			}

			// The store holds a copy: changing the caller's row changes nothing.
			tc.change(in[0])
			got, _ := tc.get(s.ReadTxn(), in[0])
			if reflect.DeepEqual(withMeta(got, 0, 0), in[0]) {
				t.Error("changing the upserted value changed the stored row")
			}

			// An update keeps CreateIndex and moves ModifyIndex.
			commit(t, s, 11, func(w *WriteTxn) error { return tc.upsert(w, in[0]) })
			got, err := tc.get(s.ReadTxn(), in[0])
			if err != nil {
				t.Fatal(err)
			}
			if w := withMeta(in[0], 10, 11); !reflect.DeepEqual(got, w) {
				t.Errorf("after update:\n got %+v\nwant %+v", got, w)
			}
			if got := s.ReadTxn().Index(tc.table); got != 11 {
				t.Errorf("table index after update = %d, want 11", got)
			}

			// A delete moves the table index; the row is gone.
			victim := in[n-1]
			commit(t, s, 12, func(w *WriteTxn) error { return tc.del(w, victim) })
			if _, err := tc.get(s.ReadTxn(), victim); !errors.Is(err, ErrNotFound) {
				t.Errorf("get after delete: %v, want ErrNotFound", err)
			}
			if got := s.ReadTxn().Index(tc.table); got != 12 {
				t.Errorf("table index after delete = %d, want 12", got)
			}

			// A failed delete writes nothing and moves no index.
			w := s.WriteTxn(13)
			if err := tc.del(w, victim); !errors.Is(err, ErrNotFound) {
				t.Errorf("second delete: %v, want ErrNotFound", err)
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			if got := s.ReadTxn().Index(tc.table); got != 12 {
				t.Errorf("table index after a failed delete = %d, want 12", got)
			}

			// Other tables' indexes did not move.
			for _, other := range Tables() {
				if other != tc.table && s.ReadTxn().Index(other) != 0 {
					t.Errorf("index of %s moved", other)
				}
			}
		})
	}
}

func keys(rs []row) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Key())
	}
	return out
}

func TestWriteWithoutIndexFails(t *testing.T) {
	s := newStore(t)
	w := s.WriteTxn(0)
	defer w.Abort()
	err := w.UpsertNetwork(&model.Network{ID: "n", Name: "n"})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("write at index 0: %v, want ErrInvalid", err)
	}
}

func TestInvalidRows(t *testing.T) {
	okNode := func() *model.Node {
		return &model.Node{ID: "n1", Hostname: "h1", Role: model.RoleWorker, Availability: model.AvailabilityActive,
			Status: model.NodeStatus{State: model.NodeUnknown}}
	}
	okTask := func() *model.Task {
		return &model.Task{ID: "t1", ServiceID: "s1", DesiredState: model.TaskRunning, Status: model.TaskStatus{State: model.TaskNew}}
	}
	tests := []struct {
		name  string
		write func(*WriteTxn) error
	}{
		{"nil cluster", func(w *WriteTxn) error { return w.UpsertCluster(nil) }},
		{"cluster without id", func(w *WriteTxn) error { return w.UpsertCluster(&model.Cluster{}) }},
		{"nil node", func(w *WriteTxn) error { return w.UpsertNode(nil) }},
		{"node without id", func(w *WriteTxn) error { n := okNode(); n.ID = ""; return w.UpsertNode(n) }},
		{"node without hostname", func(w *WriteTxn) error { n := okNode(); n.Hostname = ""; return w.UpsertNode(n) }},
		{"node id with NUL", func(w *WriteTxn) error { n := okNode(); n.ID = "a\x00b"; return w.UpsertNode(n) }},
		{"node role", func(w *WriteTxn) error { n := okNode(); n.Role = "boss"; return w.UpsertNode(n) }},
		{"node availability", func(w *WriteTxn) error { n := okNode(); n.Availability = ""; return w.UpsertNode(n) }},
		{"node state", func(w *WriteTxn) error { n := okNode(); n.Status.State = "up"; return w.UpsertNode(n) }},
		{"node reachability", func(w *WriteTxn) error {
			n := okNode()
			n.ManagerStatus = &model.ManagerStatus{Reachability: "maybe"}
			return w.UpsertNode(n)
		}},
		{"source without name", func(w *WriteTxn) error { return w.UpsertSource(&model.Source{Kind: model.SourceDir}) }},
		{"source kind", func(w *WriteTxn) error { return w.UpsertSource(&model.Source{Name: "s", Kind: "svn"}) }},
		{"source status", func(w *WriteTxn) error {
			return w.UpsertSource(&model.Source{Name: "s", Kind: model.SourceDir, Status: "meh"})
		}},
		{"stack without name", func(w *WriteTxn) error { return w.UpsertStack(&model.Stack{}) }},
		{"stack spec of another stack", func(w *WriteTxn) error {
			return w.UpsertStack(&model.Stack{Name: "a", Spec: &spec.Stack{Name: "b"}})
		}},
		{"service without id", func(w *WriteTxn) error { return w.UpsertService(&model.Service{Name: "a_b", Stack: "a"}) }},
		{"service of no stack not named as its spec", func(w *WriteTxn) error {
			return w.UpsertService(&model.Service{ID: "1", Name: "a_b", Spec: spec.Service{Name: "b"}})
		}},
		{"service name not stack_service", func(w *WriteTxn) error {
			return w.UpsertService(&model.Service{ID: "1", Name: "x_b", Stack: "a", Spec: spec.Service{Name: "b"}})
		}},
		{"service update state", func(w *WriteTxn) error {
			return w.UpsertService(&model.Service{ID: "1", Name: "a_b", Stack: "a", UpdateStatus: model.UpdateStatus{State: "rolling"}})
		}},
		{"task without id", func(w *WriteTxn) error { t := okTask(); t.ID = ""; return w.UpsertTask(t) }},
		{"task without service", func(w *WriteTxn) error { t := okTask(); t.ServiceID = ""; return w.UpsertTask(t) }},
		{"task desired state", func(w *WriteTxn) error { t := okTask(); t.DesiredState = ""; return w.UpsertTask(t) }},
		{"task state", func(w *WriteTxn) error { t := okTask(); t.Status.State = "ready"; return w.UpsertTask(t) }},
		{"nil task in batch", func(w *WriteTxn) error { return w.UpsertTasks([]*model.Task{okTask(), nil}) }},
		{"network without name", func(w *WriteTxn) error { return w.UpsertNetwork(&model.Network{ID: "n"}) }},
		{"secret version 0", func(w *WriteTxn) error { return w.UpsertSecret(&model.Secret{ID: "s", Name: "s"}) }},
		{"config without id", func(w *WriteTxn) error { return w.UpsertConfig(&model.Config{Name: "c", Version: 1}) }},
		{"volume without node", func(w *WriteTxn) error { return w.UpsertVolume(&model.Volume{ID: "v", Name: "v"}) }},
		{"label without key", func(w *WriteTxn) error { return w.SetNodeLabels("n", map[string]string{"": "x"}, nil) }},
		{"availability", func(w *WriteTxn) error { return w.SetNodeAvailability("n", "gone") }},
		{"node status", func(w *WriteTxn) error { return w.SetNodeStatus("n", model.NodeStatus{}) }},
		{"task status", func(w *WriteTxn) error { _, err := w.SetTaskStatus("t", model.TaskStatus{State: "up"}); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			w := s.WriteTxn(1)
			defer w.Abort()
			err := tc.write(w)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error: %q", err)
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			if idx := s.ReadTxn().Index(); idx != 0 {
				t.Errorf("a failed write moved the index to %d", idx)
			}
		})
	}
}

func TestUniqueness(t *testing.T) {
	node := func(id, host string) *model.Node {
		return &model.Node{ID: id, Hostname: host, Role: model.RoleWorker, Availability: model.AvailabilityActive,
			Status: model.NodeStatus{State: model.NodeReady}}
	}
	tests := []struct {
		name                 string
		first, dup, distinct func(*WriteTxn) error
	}{{
		name:     "cluster is a singleton",
		first:    func(w *WriteTxn) error { return w.UpsertCluster(&model.Cluster{ID: "c1"}) },
		dup:      func(w *WriteTxn) error { return w.UpsertCluster(&model.Cluster{ID: "c2"}) },
		distinct: func(w *WriteTxn) error { return w.UpsertCluster(&model.Cluster{ID: "c1", Autolock: true}) },
	}, {
		name:     "node hostname",
		first:    func(w *WriteTxn) error { return w.UpsertNode(node("n1", "h1")) },
		dup:      func(w *WriteTxn) error { return w.UpsertNode(node("n2", "h1")) },
		distinct: func(w *WriteTxn) error { return w.UpsertNode(node("n2", "h2")) },
	}, {
		name: "service name",
		first: func(w *WriteTxn) error {
			return w.UpsertService(&model.Service{ID: "s1", Name: "web_api", Stack: "web"})
		},
		dup: func(w *WriteTxn) error {
			return w.UpsertService(&model.Service{ID: "s2", Name: "web_api", Stack: "web"})
		},
		distinct: func(w *WriteTxn) error {
			return w.UpsertService(&model.Service{ID: "s2", Name: "web_db", Stack: "web"})
		},
	}, {
		name:     "network name",
		first:    func(w *WriteTxn) error { return w.UpsertNetwork(&model.Network{ID: "1", Name: "web_default"}) },
		dup:      func(w *WriteTxn) error { return w.UpsertNetwork(&model.Network{ID: "2", Name: "web_default"}) },
		distinct: func(w *WriteTxn) error { return w.UpsertNetwork(&model.Network{ID: "2", Name: "web_back"}) },
	}, {
		name:     "secret name and version",
		first:    func(w *WriteTxn) error { return w.UpsertSecret(&model.Secret{ID: "1", Name: "pw", Version: 1}) },
		dup:      func(w *WriteTxn) error { return w.UpsertSecret(&model.Secret{ID: "2", Name: "pw", Version: 1}) },
		distinct: func(w *WriteTxn) error { return w.UpsertSecret(&model.Secret{ID: "2", Name: "pw", Version: 2}) },
	}, {
		name:     "config name and version",
		first:    func(w *WriteTxn) error { return w.UpsertConfig(&model.Config{ID: "1", Name: "c", Version: 1}) },
		dup:      func(w *WriteTxn) error { return w.UpsertConfig(&model.Config{ID: "2", Name: "c", Version: 1}) },
		distinct: func(w *WriteTxn) error { return w.UpsertConfig(&model.Config{ID: "2", Name: "c", Version: 2}) },
	}, {
		name:     "volume node and name",
		first:    func(w *WriteTxn) error { return w.UpsertVolume(&model.Volume{ID: "1", Node: "n1", Name: "data"}) },
		dup:      func(w *WriteTxn) error { return w.UpsertVolume(&model.Volume{ID: "2", Node: "n1", Name: "data"}) },
		distinct: func(w *WriteTxn) error { return w.UpsertVolume(&model.Volume{ID: "2", Node: "n2", Name: "data"}) },
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			commit(t, s, 1, tc.first)
			w := s.WriteTxn(2)
			defer w.Abort()
			if err := tc.dup(w); !errors.Is(err, ErrConflict) {
				t.Fatalf("duplicate: %v, want ErrConflict", err)
			}
			if err := tc.distinct(w); err != nil {
				t.Fatalf("distinct row refused: %v", err)
			}
		})
	}
}

func TestRenameFreesUniqueKey(t *testing.T) {
	s := newStore(t)
	n := &model.Node{ID: "n1", Hostname: "old", Role: model.RoleWorker, Availability: model.AvailabilityActive, Status: model.NodeStatus{State: model.NodeReady}}
	commit(t, s, 1, func(w *WriteTxn) error { return w.UpsertNode(n) })
	n.Hostname = "new"
	commit(t, s, 2, func(w *WriteTxn) error { return w.UpsertNode(n) })
	r := s.ReadTxn()
	if _, err := r.NodeByHostname(nil, "old"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old hostname: %v, want ErrNotFound", err)
	}
	if got, err := r.NodeByHostname(nil, "new"); err != nil || got.ID != "n1" {
		t.Errorf("new hostname: %v, %v", got, err)
	}
	other := &model.Node{ID: "n2", Hostname: "old", Role: model.RoleWorker, Availability: model.AvailabilityActive, Status: model.NodeStatus{State: model.NodeReady}}
	commit(t, s, 3, func(w *WriteTxn) error { return w.UpsertNode(other) })
}

func TestTaskStateOrder(t *testing.T) {
	states := model.TaskStates()
	want := []model.TaskState{"new", "pending", "assigned", "accepted", "preparing", "starting", "running",
		"complete", "shutdown", "failed", "rejected", "remove", "orphaned"}
	if !slices.Equal(states, want) {
		t.Fatalf("TaskStates() = %v", states)
	}
	for i, a := range states {
		if !a.Valid() {
			t.Errorf("%s not valid", a)
		}
		if got := a.Terminal(); got != (i > 6) {
			t.Errorf("%s.Terminal() = %t", a, got)
		}
		for j, b := range states {
			wantCmp := 0
			switch {
			case i < j:
				wantCmp = -1
			case i > j:
				wantCmp = 1
			}
			if got := a.Compare(b); got != wantCmp {
				t.Errorf("%s.Compare(%s) = %d, want %d", a, b, got, wantCmp)
			}
			if a.Before(b) != (i < j) || a.After(b) != (i > j) {
				t.Errorf("%s Before/After %s wrong", a, b)
			}
		}
	}
	for _, bad := range []model.TaskState{"", "ready", "RUNNING"} {
		if bad.Valid() {
			t.Errorf("%q valid", bad)
		}
		if !bad.Before(model.TaskNew) {
			t.Errorf("unknown state %q does not sort first", bad)
		}
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	const secret = "hunter2-very-secret"
	s := newStore(t)
	sec := &model.Secret{ID: "s1", Name: "db_pw", Version: 1, Data: []byte(secret), Labels: map[string]string{"a": "b"}}
	cl := &model.Cluster{ID: "c1", JoinTokens: model.JoinTokens{Worker: secret + "-w", Manager: secret + "-m"},
		RootCAKey: secret + "-ca-key", UnlockKey: secret + "-unlock", Autolock: true}
	commit(t, s, 1, func(w *WriteTxn) error {
		if err := w.UpsertSecret(sec); err != nil {
			return err
		}
		return w.UpsertCluster(cl)
	})
	r := s.ReadTxn()
	stored, err := r.SecretByID(nil, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if string(stored.Data) != secret {
		t.Fatalf("SecretByID lost the data")
	}
	storedCluster, err := r.Cluster(nil)
	if err != nil {
		t.Fatal(err)
	}
	if storedCluster.JoinTokens.Worker == "" {
		t.Fatalf("Cluster lost the join tokens")
	}

	red := stored.Redacted()
	if red.Data != nil || red.Name != "db_pw" || red.Labels["a"] != "b" {
		t.Errorf("Redacted() = %+v", red)
	}
	if string(stored.Data) != secret {
		t.Error("Redacted changed the original")
	}
	if cr := storedCluster.Redacted(); cr.JoinTokens != (model.JoinTokens{}) || cr.RootCAKey != "" || cr.UnlockKey != "" ||
		storedCluster.JoinTokens.Worker == "" || storedCluster.RootCAKey == "" || storedCluster.UnlockKey == "" {
		t.Error("Cluster.Redacted wrong")
	}
	listed, err := r.Secrets(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].Data != nil {
		t.Errorf("Secrets() lists data: %v", listed)
	}

	var out bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		for _, v := range []any{stored, *stored, []*model.Secret{stored}, struct{ S *model.Secret }{stored},
			storedCluster, *storedCluster, map[string]*model.Cluster{"c": storedCluster}} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
	}
	fmt.Fprintln(&out, stored.String(), storedCluster.String())
	for _, h := range []slog.Handler{slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)} {
		slog.New(h).Info("x", "secret", stored, "secret_value", *stored, "cluster", storedCluster)
	}
	// Conflicts name the row, not its content.
	w := s.WriteTxn(2)
	err = w.UpsertSecret(&model.Secret{ID: "s2", Name: "db_pw", Version: 1, Data: []byte(secret)})
	w.Abort()
	fmt.Fprintln(&out, err)
	if strings.Contains(out.String(), secret) || strings.Contains(out.String(), "hunter2") ||
		strings.Contains(out.String(), fmt.Sprintf("%x", secret)) {
		t.Errorf("secret printed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "db_pw") {
		t.Errorf("String does not name the secret:\n%s", out.String())
	}
}

func TestSecretVersions(t *testing.T) {
	s := newStore(t)
	commit(t, s, 1, func(w *WriteTxn) error {
		// Versions above 255 check that the index sorts numerically; db2
		// checks that a name is not a prefix match of a longer one.
		for _, v := range []uint64{1, 2, 300, 10} {
			if err := w.UpsertSecret(&model.Secret{ID: fmt.Sprintf("db-%d", v), Name: "db", Version: v, Data: []byte{byte(v)}}); err != nil {
				return err
			}
			if err := w.UpsertConfig(&model.Config{ID: fmt.Sprintf("db-%d", v), Name: "db", Version: v}); err != nil {
				return err
			}
		}
		if err := w.UpsertConfig(&model.Config{ID: "db2", Name: "db2", Version: 1}); err != nil {
			return err
		}
		return w.UpsertSecret(&model.Secret{ID: "db2", Name: "db2", Version: 1})
	})
	r := s.ReadTxn()
	latest, err := r.Secret(nil, "db")
	if err != nil || latest.Version != 300 || latest.Data[0] != byte(300&0xff) {
		t.Errorf("Secret(db) = %v, %v; want version 300 with data", latest, err)
	}
	if c, err := r.Config(nil, "db"); err != nil || c.Version != 300 {
		t.Errorf("Config(db) = %v, %v; want version 300", c, err)
	}
	if v, err := r.SecretVersion(nil, "db", 2); err != nil || v.ID != "db-2" {
		t.Errorf("SecretVersion(db, 2) = %v, %v", v, err)
	}
	if v, err := r.ConfigVersion(nil, "db", 10); err != nil || v.ID != "db-10" {
		t.Errorf("ConfigVersion(db, 10) = %v, %v", v, err)
	}
	if _, err := r.SecretVersion(nil, "db", 3); !errors.Is(err, ErrNotFound) {
		t.Errorf("SecretVersion(db, 3): %v", err)
	}
	for _, missing := range []string{"d", "nope"} {
		if _, err := r.Secret(nil, missing); !errors.Is(err, ErrNotFound) {
			t.Errorf("Secret(%s): %v", missing, err)
		}
		if _, err := r.Config(nil, missing); !errors.Is(err, ErrNotFound) {
			t.Errorf("Config(%s): %v", missing, err)
		}
	}
	all, _ := r.Secrets(nil)
	var got []string
	for _, x := range all {
		got = append(got, fmt.Sprintf("%s@%d", x.Name, x.Version))
	}
	if want := []string{"db@1", "db@2", "db@10", "db@300", "db2@1"}; !slices.Equal(got, want) {
		t.Errorf("Secrets() order = %v, want %v", got, want)
	}
}

func TestStackDropsSecretContent(t *testing.T) {
	s := newStore(t)
	st := &model.Stack{Name: "db", Spec: &spec.Stack{Name: "db",
		Secrets: map[string]*spec.Secret{"pw": {FileObject: spec.FileObject{Name: "db_pw", Data: []byte("hunter2")}}},
		Configs: map[string]*spec.Config{"conf": {FileObject: spec.FileObject{Name: "db_conf", Data: []byte("x")}, Digest: "d"}},
	}}
	commit(t, s, 1, func(w *WriteTxn) error { return w.UpsertStack(st) })
	got, err := s.ReadTxn().Stack(nil, "db")
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Secrets["pw"].Data != nil || got.Spec.Configs["conf"].Data != nil {
		t.Error("stack row keeps secret or config content")
	}
	if got.Spec.Secrets["pw"].Name != "db_pw" || got.Spec.Configs["conf"].Digest != "d" {
		t.Errorf("stack spec lost more than content: %+v", got.Spec)
	}
	if string(st.Spec.Secrets["pw"].Data) != "hunter2" {
		t.Error("UpsertStack changed the caller's spec")
	}
}

func TestSourceHistoryCapped(t *testing.T) {
	s := newStore(t)
	src := &model.Source{Name: "infra", Kind: model.SourceGitPull}
	for i := range 15 {
		src.History = append(src.History, model.SyncRecord{Revision: fmt.Sprint(i), Result: model.SyncApplied})
	}
	commit(t, s, 1, func(w *WriteTxn) error { return w.UpsertSource(src) })
	got, _ := s.ReadTxn().Source(nil, "infra")
	if len(got.History) != model.SourceHistoryLimit || got.History[0].Revision != "5" || got.History[9].Revision != "14" {
		t.Errorf("history = %+v", got.History)
	}
	if len(src.History) != 15 {
		t.Error("UpsertSource changed the caller's history")
	}
}

func TestServicesByStackAndStacksBySource(t *testing.T) {
	s := newStore(t)
	commit(t, s, 1, func(w *WriteTxn) error {
		for _, sv := range []*model.Service{
			{ID: "1", Name: "web_db", Stack: "web"}, {ID: "2", Name: "web_api", Stack: "web"},
			{ID: "3", Name: "webx_api", Stack: "webx"}, {ID: "4", Name: "web", Spec: spec.Service{Name: "web"}},
		} {
			if err := w.UpsertService(sv); err != nil {
				return err
			}
		}
		for _, st := range []*model.Stack{{Name: "b", Source: "infra"}, {Name: "a", Source: "infra"}, {Name: "c"}} {
			if err := w.UpsertStack(st); err != nil {
				return err
			}
		}
		return nil
	})
	r := s.ReadTxn()
	svcs, _ := r.ServicesByStack(nil, "web")
	if ids := ids(svcs, func(s *model.Service) string { return s.ID }); !slices.Equal(ids, []string{"2", "1"}) {
		t.Errorf("ServicesByStack(web) = %v", ids)
	}
	if got, err := r.ServiceByName(nil, "webx_api"); err != nil || got.ID != "3" {
		t.Errorf("ServiceByName = %v, %v", got, err)
	}
	// A service of no stack (`service create`) is found by its name only.
	if got, err := r.ServiceByName(nil, "web"); err != nil || got.ID != "4" {
		t.Errorf("ServiceByName(web) = %v, %v", got, err)
	}
	stacks, _ := r.StacksBySource(nil, "infra")
	if names := ids(stacks, func(s *model.Stack) string { return s.Name }); !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("StacksBySource(infra) = %v", names)
	}
	if none, _ := r.StacksBySource(nil, "inf"); len(none) != 0 {
		t.Errorf("StacksBySource(inf) = %v", none)
	}
}

func ids[T any](rs []*T, id func(*T) string) []string {
	var out []string
	for _, r := range rs {
		out = append(out, id(r))
	}
	return out
}

func TestTaskIndexes(t *testing.T) {
	s := newStore(t)
	mk := func(id, svc string, slot uint64, node string, desired model.TaskState) *model.Task {
		return &model.Task{ID: id, ServiceID: svc, Slot: slot, NodeID: node, DesiredState: desired,
			Status: model.TaskStatus{State: model.TaskRunning}}
	}
	commit(t, s, 1, func(w *WriteTxn) error {
		return w.UpsertTasks([]*model.Task{
			mk("a", "svc1", 2, "n1", model.TaskRunning),
			mk("b", "svc1", 1, "n2", model.TaskRunning),
			mk("c", "svc1", 1, "n1", model.TaskShutdown), // slot 1's history
			mk("d", "svc1", 256, "", model.TaskRunning),  // pending, unassigned
			mk("e", "svc10", 1, "n1", model.TaskRunning),
			mk("f", "glob", 0, "n2", model.TaskRunning),
		})
	})
	r := s.ReadTxn()
	tid := func(ts []*model.Task, err error) []string {
		if err != nil {
			t.Fatal(err)
		}
		return ids(ts, func(t *model.Task) string { return t.ID })
	}
	for _, tc := range []struct {
		name string
		got  []string
		want []string
	}{
		{"Tasks", tid(r.Tasks(nil)), []string{"a", "b", "c", "d", "e", "f"}},
		{"TasksByService svc1", tid(r.TasksByService(nil, "svc1")), []string{"b", "c", "a", "d"}},
		{"TasksByService glob", tid(r.TasksByService(nil, "glob")), []string{"f"}},
		{"TasksBySlot svc1/1", tid(r.TasksBySlot(nil, "svc1", 1)), []string{"b", "c"}},
		{"TasksBySlot svc1/256", tid(r.TasksBySlot(nil, "svc1", 256)), []string{"d"}},
		{"TasksBySlot svc1/3", tid(r.TasksBySlot(nil, "svc1", 3)), nil},
		{"TasksByNode n1", tid(r.TasksByNode(nil, "n1")), []string{"a", "c", "e"}},
		{"TasksByNode n", tid(r.TasksByNode(nil, "n")), nil},
	} {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}

	// Assigning the pending task moves it between node index entries.
	d, _ := r.Task(nil, "d")
	d = d.Copy()
	d.NodeID = "n1"
	commit(t, s, 2, func(w *WriteTxn) error { return w.UpsertTask(d) })
	if got := tid(s.ReadTxn().TasksByNode(nil, "n1")); !slices.Equal(got, []string{"a", "c", "d", "e"}) {
		t.Errorf("after assignment TasksByNode(n1) = %v", got)
	}
	if got := tid(r.TasksByNode(nil, "n1")); !slices.Equal(got, []string{"a", "c", "e"}) {
		t.Errorf("an older read transaction saw the write: %v", got)
	}
}

func TestDeleteTasks(t *testing.T) {
	s := newStore(t)
	var batch []*model.Task
	for i := range 5 {
		batch = append(batch, &model.Task{ID: fmt.Sprint(i), ServiceID: "s", DesiredState: model.TaskRunning, Status: model.TaskStatus{State: model.TaskNew}})
	}
	commit(t, s, 1, func(w *WriteTxn) error { return w.UpsertTasks(batch) })

	w := s.WriteTxn(2)
	if err := w.DeleteTasks([]string{"0", "1", "missing"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeleteTasks with a missing id: %v", err)
	}
	if got, _ := w.Tasks(nil); len(got) != 5 {
		t.Errorf("a failed DeleteTasks deleted %d tasks", 5-len(got))
	}
	if err := w.DeleteTasks([]string{"0", "1", "0"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ReadTxn().Tasks(nil); len(got) != 3 {
		t.Errorf("%d tasks left, want 3", len(got))
	}
}

func TestUpsertTasksValidatesBatchFirst(t *testing.T) {
	s := newStore(t)
	w := s.WriteTxn(1)
	defer w.Abort()
	err := w.UpsertTasks([]*model.Task{
		{ID: "ok", ServiceID: "s", DesiredState: model.TaskRunning, Status: model.TaskStatus{State: model.TaskNew}},
		{ID: "bad", ServiceID: "s", DesiredState: "sideways", Status: model.TaskStatus{State: model.TaskNew}},
	})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"bad"`) {
		t.Fatalf("err = %v", err)
	}
	if _, err := w.Task(nil, "ok"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the valid task of a refused batch was written")
	}
}

func TestNodeHelpers(t *testing.T) {
	s := newStore(t)
	commit(t, s, 1, func(w *WriteTxn) error {
		return w.UpsertNode(&model.Node{ID: "n1", Hostname: "h1", Role: model.RoleWorker, Availability: model.AvailabilityActive,
			Status: model.NodeStatus{State: model.NodeUnknown}})
	})
	tests := []struct {
		name  string
		write func(*WriteTxn) error
		check func(*model.Node) bool
	}{
		{"add labels", func(w *WriteTxn) error {
			return w.SetNodeLabels("n1", map[string]string{"os": "linux", "zone": "a", "tmp": "1"}, nil)
		}, func(n *model.Node) bool { return len(n.Labels) == 3 && n.Labels["os"] == "linux" }},
		{"add and remove", func(w *WriteTxn) error {
			return w.SetNodeLabels("n1", map[string]string{"zone": "b"}, []string{"tmp", "absent"})
		}, func(n *model.Node) bool {
			return reflect.DeepEqual(n.Labels, map[string]string{"os": "linux", "zone": "b"})
		}},
		{"drain", func(w *WriteTxn) error { return w.SetNodeAvailability("n1", model.AvailabilityDrain) },
			func(n *model.Node) bool { return n.Availability == model.AvailabilityDrain }},
		{"status", func(w *WriteTxn) error {
			return w.SetNodeStatus("n1", model.NodeStatus{State: model.NodeDown, Message: "heartbeat failure"})
		}, func(n *model.Node) bool {
			return n.Status == model.NodeStatus{State: model.NodeDown, Message: "heartbeat failure"}
		}},
	}
	for i, tc := range tests {
		index := uint64(i + 2)
		before, _ := s.ReadTxn().Node(nil, "n1")
		commit(t, s, index, tc.write)
		after, err := s.ReadTxn().Node(nil, "n1")
		if err != nil {
			t.Fatal(err)
		}
		if !tc.check(after) {
			t.Errorf("%s: node = %+v", tc.name, after)
		}
		if after.CreateIndex != 1 || after.ModifyIndex != index || s.ReadTxn().Index(TableNodes) != index {
			t.Errorf("%s: meta %+v, table index %d", tc.name, after.Meta, s.ReadTxn().Index(TableNodes))
		}
		if before.ModifyIndex != index-1 {
			t.Errorf("%s: the stored row was changed in place", tc.name)
		}
	}
	w := s.WriteTxn(10)
	defer w.Abort()
	for _, err := range []error{
		w.SetNodeLabels("nope", map[string]string{"a": "b"}, nil),
		w.SetNodeAvailability("nope", model.AvailabilityPause),
		w.SetNodeStatus("nope", model.NodeStatus{State: model.NodeReady}),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("helper on a missing node: %v", err)
		}
	}
}

func TestSetTaskStatusIsMonotonic(t *testing.T) {
	s := newStore(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	commit(t, s, 1, func(w *WriteTxn) error {
		return w.UpsertTask(&model.Task{ID: "t", ServiceID: "s", DesiredState: model.TaskRunning,
			Status: model.TaskStatus{State: model.TaskAssigned}, CreatedAt: t0, UpdatedAt: t0})
	})
	steps := []struct {
		st      model.TaskStatus
		applied bool
		want    model.TaskState
	}{
		{model.TaskStatus{State: model.TaskRunning, Timestamp: t0.Add(2 * time.Second)}, true, model.TaskRunning},
		{model.TaskStatus{State: model.TaskStarting, Timestamp: t0.Add(time.Second)}, false, model.TaskRunning},
		{model.TaskStatus{State: model.TaskRunning, Message: "healthy", Timestamp: t0.Add(3 * time.Second)}, true, model.TaskRunning},
		{model.TaskStatus{State: model.TaskFailed, Err: "exit 1", ExitCode: 1, Timestamp: t0.Add(4 * time.Second)}, true, model.TaskFailed},
		{model.TaskStatus{State: model.TaskRunning, Timestamp: t0.Add(5 * time.Second)}, false, model.TaskFailed},
	}
	for i, step := range steps {
		var applied bool
		commit(t, s, uint64(i+2), func(w *WriteTxn) (err error) {
			applied, err = w.SetTaskStatus("t", step.st)
			return err
		})
		got, _ := s.ReadTxn().Task(nil, "t")
		if applied != step.applied || got.Status.State != step.want {
			t.Errorf("step %d: applied=%t state=%s, want %t %s", i, applied, got.Status.State, step.applied, step.want)
		}
		if applied && (got.Status != step.st || !got.UpdatedAt.Equal(step.st.Timestamp) || got.ModifyIndex != uint64(i+2)) {
			t.Errorf("step %d: task = %+v", i, got)
		}
	}
	w := s.WriteTxn(20)
	defer w.Abort()
	if _, err := w.SetTaskStatus("nope", model.TaskStatus{State: model.TaskRunning}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing task: %v", err)
	}
}

func TestCopyIsDeep(t *testing.T) {
	f := &filler{}
	for _, r := range []row{full[model.Cluster](f), full[model.Node](f), full[model.Source](f), full[model.Stack](f),
		full[model.Service](f), full[model.Task](f), full[model.Network](f), full[model.Secret](f), full[model.Config](f), full[model.Volume](f)} {
		c := copyRow(r)
		if !reflect.DeepEqual(c, r) {
			t.Errorf("%T.Copy() differs:\n got %+v\nwant %+v", r, c, r)
		}
		assertNoAliasing(t, r, c)
	}
	st := full[spec.Stack](f)
	c := spec.Clone(st)
	if !reflect.DeepEqual(c, st) {
		t.Error("spec.Clone(spec.Stack) differs")
	}
	assertNoAliasing(t, st, c)
}

func TestWriteTxnLifecycle(t *testing.T) {
	s := newStore(t)
	w := s.WriteTxn(1)
	if err := w.UpsertNetwork(&model.Network{ID: "n1", Name: "net"}); err != nil {
		t.Fatal(err)
	}
	if got, err := w.NetworkByName(nil, "net"); err != nil || got.ID != "n1" {
		t.Errorf("write txn does not read its own write: %v, %v", got, err)
	}
	if _, err := s.ReadTxn().Network(nil, "n1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("uncommitted write visible: %v", err)
	}
	if w.RaftIndex() != 1 {
		t.Errorf("RaftIndex() = %d", w.RaftIndex())
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	w.Abort() // no-op after Commit
	if err := w.Commit(); !errors.Is(err, ErrTxnClosed) {
		t.Errorf("second Commit: %v", err)
	}
	if err := w.UpsertNetwork(&model.Network{ID: "n2", Name: "net2"}); !errors.Is(err, ErrTxnClosed) {
		t.Errorf("write after Commit: %v", err)
	}
	if _, err := w.Networks(nil); !errors.Is(err, ErrTxnClosed) {
		t.Errorf("read after Commit: %v", err)
	}
	if _, err := w.Cluster(nil); !errors.Is(err, ErrTxnClosed) {
		t.Errorf("read after Commit: %v", err)
	}
	if w.Index(TableNetworks) != 0 {
		t.Error("Index on a closed txn")
	}

	// An aborted transaction leaves nothing and releases the writer lock.
	w = s.WriteTxn(2)
	_ = w.DeleteNetwork("n1")
	w.Abort()
	if _, err := s.ReadTxn().Network(nil, "n1"); err != nil {
		t.Errorf("aborted delete applied: %v", err)
	}
	commit(t, s, 3, func(w *WriteTxn) error { return w.DeleteNetwork("n1") })

	// Update aborts when fn fails.
	boom := errors.New("boom")
	err := s.Update(4, func(w *WriteTxn) error {
		if err := w.UpsertNetwork(&model.Network{ID: "n3", Name: "net3"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Update: %v", err)
	}
	if _, err := s.ReadTxn().Network(nil, "n3"); !errors.Is(err, ErrNotFound) || s.ReadTxn().Index() != 3 {
		t.Errorf("failed Update applied: %v, index %d", err, s.ReadTxn().Index())
	}
}

func TestTableIndexNeverMovesBack(t *testing.T) {
	s := newStore(t)
	commit(t, s, 10, func(w *WriteTxn) error { return w.UpsertNetwork(&model.Network{ID: "a", Name: "a"}) })
	commit(t, s, 7, func(w *WriteTxn) error { return w.UpsertNetwork(&model.Network{ID: "b", Name: "b"}) })
	if got := s.ReadTxn().Index(TableNetworks); got != 10 {
		t.Errorf("table index = %d, want 10", got)
	}
	commit(t, s, 11, func(w *WriteTxn) error { return w.UpsertVolume(&model.Volume{ID: "v", Node: "n", Name: "v"}) })
	r := s.ReadTxn()
	if r.Index(TableNetworks, TableVolumes) != 11 || r.Index(TableNetworks) != 10 || r.Index() != 11 ||
		r.Index(TableTasks) != 0 || r.Index("nosuchtable") != 0 {
		t.Error("Index over several tables wrong")
	}
}

func TestTaskName(t *testing.T) {
	for _, tc := range []struct {
		task model.Task
		want string
	}{
		{model.Task{ServiceName: "web_api", Slot: 3, NodeID: "n1"}, "web_api.3"},
		{model.Task{ServiceName: "mon_agent", NodeID: "n1"}, "mon_agent.n1"},
		{model.Task{ServiceID: "sid", Slot: 1}, "sid.1"},
	} {
		if got := tc.task.Name(); got != tc.want {
			t.Errorf("Name() = %q, want %q", got, tc.want)
		}
	}
}

func TestSetNodeRole(t *testing.T) {
	s := newStore(t)
	n := &model.Node{ID: "n1", Hostname: "h1", Role: model.RoleWorker, Availability: model.AvailabilityActive, Addr: "10.0.0.1:4270",
		Status: model.NodeStatus{State: model.NodeReady}}
	commit(t, s, 1, func(w *WriteTxn) error { return w.UpsertNode(n) })
	commit(t, s, 2, func(w *WriteTxn) error { return w.SetNodeRole("n1", model.RoleManager) })
	got, err := s.ReadTxn().Node(nil, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Role != model.RoleManager || got.ManagerStatus == nil || got.ManagerStatus.Addr != "10.0.0.1:4270" {
		t.Fatalf("promoted node = %+v, manager status %+v", got, got.ManagerStatus)
	}
	commit(t, s, 3, func(w *WriteTxn) error { return w.SetNodeRole("n1", model.RoleWorker) })
	got, _ = s.ReadTxn().Node(nil, "n1")
	if got.Role != model.RoleWorker || got.ManagerStatus != nil {
		t.Fatalf("demoted node = %+v", got)
	}
	w := s.WriteTxn(4)
	defer w.Abort()
	if err := w.SetNodeRole("n1", "boss"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown role: err = %v, want ErrInvalid", err)
	}
	if err := w.SetNodeRole("missing", model.RoleWorker); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing node: err = %v, want ErrNotFound", err)
	}
}
