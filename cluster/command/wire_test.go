package command

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/state"
)

// wireTime is the time the bodies below carry.
var wireTime = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// The binary bodies decode to what was encoded, and refuse truncated or foreign bytes.
func TestWireRoundTrip(t *testing.T) {
	in := &PlanApply{Plans: []*orchestrator.Plan{{
		ServiceID: "s", SpecVersion: 3,
		Service: &orchestrator.ServiceUpdate{Rollback: true, UpdateStatus: model.UpdateStatus{State: "rollback_started", Message: "x", StartedAt: wireTime}},
		Create: []*model.Task{{ID: "a", ServiceID: "s", ServiceName: "web_s", Slot: 2, NodeID: "n", SpecVersion: 3,
			DesiredState: model.TaskRunning, Status: model.TaskStatus{State: model.TaskFailed, Message: "m", Err: "e", ExitCode: -3, Timestamp: wireTime},
			Networks:  []model.Attachment{{Network: "net", Addr: "10.0.0.2/24", MAC: "02:00"}},
			CreatedAt: wireTime, UpdatedAt: wireTime.Add(time.Nanosecond), SpecHash: "h", Image: "nginx:1.27", NotBefore: wireTime.Add(time.Hour),
			Restarts: model.Restarts{Count: 4, Recent: []time.Time{wireTime, wireTime.Add(time.Second)}}}},
		Update: []orchestrator.TaskUpdate{{ID: "b", DesiredState: model.TaskShutdown, NodeID: "n",
			Status: &model.TaskStatus{State: model.TaskOrphaned}, UpdatedAt: wireTime}, {ID: "c", UpdatedAt: wireTime},
			{ID: "f", NodeID: "n", Status: &model.TaskStatus{State: model.TaskAssigned},
				Networks: []model.Attachment{{Network: "net", Addr: "10.0.0.3/24", MAC: "02:03"}}, UpdatedAt: wireTime}},
		Delete: []string{"d", "e"},
	}, {ServiceID: "t"}}}
	data, err := Encode(CmdPlanApply, in)
	if err != nil {
		t.Fatal(err)
	}
	var out PlanApply
	d := newWireDecoder(data[1:])
	out.decodeWire(d)
	if err := d.done(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, &out) {
		t.Errorf("round trip\n got %+v\nwant %+v", out.Plans[0], in.Plans[0])
	}
	for n := 1; n < len(data)-1; n++ {
		var p PlanApply
		d := newWireDecoder(data[1:n])
		p.decodeWire(d)
		if d.done() == nil {
			t.Fatalf("a body truncated to %d of %d bytes decodes", n, len(data))
		}
	}
	bad := append([]byte{data[0], 99}, data[2:]...)
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(1, func(tx *state.WriteTxn) error { return Apply(tx, bad) }); err == nil || !strings.Contains(fmt.Sprint(err), "format 99") {
		t.Errorf("unknown format: %v", err)
	}
}

// A plan-apply body of wire format 1, as a berth before format 2 wrote it into its raft
// log: format 2 added the addresses of task updates.
const planApplyFormat1 = "0e010901730161016e0861737369676e6564036e65740b31302e302e302e322f32341130323a34323a30613a30303a30303a30320162016401010300010201000003000004000000000105060700018a80d0e2c6bfce972f000000000001080003010400000000018a80d0e2c6bfce972f0109"

func TestWireReadsFormat1(t *testing.T) {
	at := time.Unix(1700000000, 5).UTC()
	want := &PlanApply{Plans: []*orchestrator.Plan{{ServiceID: "s", SpecVersion: 3,
		Create: []*model.Task{{ID: "a", ServiceID: "s", NodeID: "n", Status: model.TaskStatus{State: model.TaskAssigned},
			Networks: []model.Attachment{{Network: "net", Addr: "10.0.0.2/24", MAC: "02:42:0a:00:00:02"}}, CreatedAt: at}},
		Update: []orchestrator.TaskUpdate{{ID: "b", NodeID: "n", Status: &model.TaskStatus{State: model.TaskAssigned}, UpdatedAt: at}},
		Delete: []string{"d"}}}}
	if got := decodeFixture(t, planApplyFormat1); !reflect.DeepEqual(want, got) {
		t.Errorf("format 1\n got %+v\nwant %+v", got.Plans[0], want.Plans[0])
	}
}

// A plan-apply body of wire format 2, as a berth before format 3 wrote it: format 3
// added the image of a task row. Its tasks have none (`service ps` then tells their
// image from the service's specs).
const planApplyFormat2 = "0e020e01730161057765625f73016e0772756e6e696e670861737369676e6564036e65740b31302e302e302e322f32341130323a34323a30613a30303a30303a3032016801620b31302e302e302e332f32341130323a34323a30613a30303a30303a3033016401010300010201030104030506000000000107080900018a80d0e2c6bfce972f000a000000010b000401060000000001070c0d018a80d0e2c6bfce972f010e"

func TestWireReadsFormat2(t *testing.T) {
	at := time.Unix(1700000000, 5).UTC()
	want := &PlanApply{Plans: []*orchestrator.Plan{{ServiceID: "s", SpecVersion: 3,
		Create: []*model.Task{{ID: "a", ServiceID: "s", ServiceName: "web_s", Slot: 1, NodeID: "n", SpecVersion: 3,
			DesiredState: model.TaskRunning, Status: model.TaskStatus{State: model.TaskAssigned},
			Networks: []model.Attachment{{Network: "net", Addr: "10.0.0.2/24", MAC: "02:42:0a:00:00:02"}}, CreatedAt: at, SpecHash: "h"}},
		Update: []orchestrator.TaskUpdate{{ID: "b", NodeID: "n", Status: &model.TaskStatus{State: model.TaskAssigned},
			Networks: []model.Attachment{{Network: "net", Addr: "10.0.0.3/24", MAC: "02:42:0a:00:00:03"}}, UpdatedAt: at}},
		Delete: []string{"d"}}}}
	if got := decodeFixture(t, planApplyFormat2); !reflect.DeepEqual(want, got) {
		t.Errorf("format 2\n got %+v\nwant %+v", got.Plans[0], want.Plans[0])
	}
}

// decodeFixture decodes a hex plan-apply entry, its times in UTC.
func decodeFixture(t *testing.T, body string) *PlanApply {
	t.Helper()
	data, err := hex.DecodeString(body)
	if err != nil {
		t.Fatal(err)
	}
	var got PlanApply
	d := newWireDecoder(data[1:])
	got.decodeWire(d)
	if err := d.done(); err != nil {
		t.Fatal(err)
	}
	for _, tk := range got.Plans[0].Create {
		tk.CreatedAt = tk.CreatedAt.UTC()
	}
	for i := range got.Plans[0].Update {
		got.Plans[0].Update[i].UpdatedAt = got.Plans[0].Update[i].UpdatedAt.UTC()
	}
	return &got
}
