package reconciler_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// A plan that gives a task the address a VIP took while the plan was in flight is
// skipped by the FSM; the leader sees the VIP land on an address it gave, reads its
// view anew and plans again around the VIP. The /29 has five addresses: the dnsrr
// service's five tasks take them all in the first plan, and the other stack's VIP
// takes the highest first.
func TestPlanMeetingANewVIPIsPlannedAgain(t *testing.T) {
	f := newFlakyStore(t)
	f.must(t, command.CmdStackDeploy, stackCommand(t, "small", `
services:
  web:
    image: nginx:1
    deploy:
      endpoint_mode: dnsrr
      replicas: 5
networks:
  default:
    name: small
    ipam:
      config:
        - subnet: 10.77.0.0/29
`))
	other := stackCommand(t, "other", `
services:
  api:
    image: nginx:1
    networks: [shared]
    deploy:
      replicas: 0
networks:
  shared:
    name: small
    external: true
`)
	f.before = func() error { return command.Simulate(f.st, command.CmdStackDeploy, other) }
	reconcile(t, f)
	within(t, 10*time.Second, f.st, func(tx *state.ReadTxn) error {
		web, err := tx.ServiceByName(nil, "small_web")
		if err != nil {
			return err
		}
		api, err := tx.ServiceByName(nil, "other_api")
		if err != nil {
			return err
		}
		tasks, _ := tx.TasksByService(nil, web.ID)
		var held []string
		pending := ""
		for _, task := range tasks {
			for _, a := range task.Networks {
				held = append(held, a.Addr)
			}
			if task.Status.State == model.TaskPending {
				pending = task.Status.Err
			}
		}
		if len(held) != 4 || !strings.Contains(pending, "every address of subnet 10.77.0.0/29 is taken") {
			return fmt.Errorf("tasks hold %v, pending %q", held, pending)
		}
		if vip := api.Endpoint.VIPs; len(vip) != 1 || vip[0].Addr != "10.77.0.6/29" || slices.Contains(held, vip[0].Addr) {
			t.Fatalf("VIP %+v, tasks hold %v", vip, held)
		}
		return nil
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.before != nil {
		t.Error("no stack write raced a plan: the test tested nothing")
	}
}
