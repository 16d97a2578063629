package control

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/reconciler"
	"github.com/berthd/berth/cluster/scheduler"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// A preview follows the rollout it starts through at most previewRounds orchestrator
// passes and previewHorizon of simulated time (update delays, monitor periods and
// restart windows are skipped over, not waited for).
const (
	previewRounds  = 500
	previewHorizon = time.Hour
)

// PreviewStacks is a dry run of `stack deploy` of each request against the live state
// st: the stacks' diffs, and where their tasks would land. Nothing is written to st.
func PreviewStacks(st *state.Store, reqs []*api.StackDeployRequest, newID func() string, now time.Time) (*api.PlanResponse, error) {
	before := st.ReadTxn()
	fork := st.Fork()
	var oldSpecs, newSpecs []*spec.Stack
	var names []string
	for _, req := range reqs {
		cmd, err := StackCommand(req, newID)
		if err != nil {
			return nil, err
		}
		name := cmd.Stack.Name
		cur, err := before.Stack(nil, name)
		switch {
		case err == nil:
			oldSpecs = append(oldSpecs, cur.Spec)
		case !errors.Is(err, state.ErrNotFound):
			return nil, err
		}
		newSpecs = append(newSpecs, cmd.Stack.Spec)
		names = append(names, name)
		if err := command.Simulate(fork, command.CmdStackDeploy, cmd); err != nil {
			return nil, fmt.Errorf("stack %s: %w", name, err)
		}
	}
	resp := &api.PlanResponse{Diffs: spec.DiffStacks(oldSpecs, newSpecs)}
	var err error
	resp.Placement, resp.Settled, err = FollowRollout(before, fork, names, newID, now)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// previewSync simulates the sync of the revision sha (its stack commands cmds, which
// it marks as that revision's) on a fork of st and follows the rollout it starts:
// where the tasks would land. before is st as read before, what the rollout is
// compared with.
func previewSync(st *state.Store, before *state.ReadTxn, src *model.Source, cmds []*command.StackDeploy, sha string, newID func() string, now time.Time) ([]*api.ServicePlacement, bool, error) {
	for _, c := range cmds {
		c.Stack.Revision = sha
	}
	fork := st.Fork()
	sync := &command.SourceSync{Name: src.Name, Now: now.UTC(), Status: model.SyncSynced,
		Record: model.SyncRecord{Revision: sha}, Apply: true, Stacks: cmds, Prune: src.Prune}
	if err := command.Simulate(fork, command.CmdSourceSync, sync); err != nil {
		return nil, false, fmt.Errorf("source %s: revision %s: %w", src.Name, shortRevision(sha), err)
	}
	// The stacks whose services may change: the revision's, and those it prunes.
	stacks := map[string]bool{}
	for _, c := range cmds {
		stacks[c.Stack.Name] = true
	}
	if src.Prune {
		owned, err := before.StacksBySource(nil, src.Name)
		if err != nil {
			return nil, false, err
		}
		for _, o := range owned {
			stacks[o.Name] = true
		}
	}
	return FollowRollout(before, fork, slices.Sorted(maps.Keys(stacks)), newID, now)
}

func shortRevision(sha string) string { return sha[:min(len(sha), 12)] }

// FollowRollout runs the orchestrator and the scheduler on fork, where the stacks were
// just written, and plays the agents' part (what is placed runs, what is told to stop
// stops), pass after pass until the stacks' services settle: the rollout as the
// leader would carry it out, with the same code, in the time it takes to compute.
// settled is false when it had not settled within previewRounds or previewHorizon.
func FollowRollout(before *state.ReadTxn, fork *state.Store, stacks []string, newID func() string, now time.Time) (_ []*api.ServicePlacement, settled bool, _ error) {
	ids := map[string]bool{}
	for _, tx := range []*state.ReadTxn{before, fork.ReadTxn()} {
		for _, stack := range stacks {
			svcs, err := tx.ServicesByStack(nil, stack)
			if err != nil {
				return nil, false, err
			}
			for _, s := range svcs {
				ids[s.ID] = true
			}
		}
	}
	services := slices.Sorted(maps.Keys(ids))
	start := now
	for range previewRounds {
		tx := fork.ReadTxn()
		plans, next, err := previewPass(tx, services, newID, now)
		if err != nil {
			return nil, false, err
		}
		if len(plans) > 0 {
			if err := command.Simulate(fork, command.CmdPlanApply, &command.PlanApply{Plans: plans}); err != nil {
				return nil, false, fmt.Errorf("preview: %w", err)
			}
		}
		reports, err := agentReports(fork.ReadTxn(), services, now)
		if err != nil {
			return nil, false, err
		}
		if len(reports) > 0 {
			if err := command.Simulate(fork, command.CmdTaskStatus, &command.TaskStatusBatch{Reports: reports}); err != nil {
				return nil, false, fmt.Errorf("preview: %w", err)
			}
		}
		if len(plans) > 0 || len(reports) > 0 {
			// Time moves on a little, so that what waits for a task to have run
			// for a while (an update's monitor period) sees it do so.
			now = now.Add(time.Second)
			continue
		}
		if next.IsZero() {
			settled = true
			break
		}
		if next.Sub(start) > previewHorizon {
			break
		}
		now = next
	}
	placement, err := placements(before, fork.ReadTxn(), services)
	return placement, settled, err
}

// previewPass is one orchestrator pass over the services, as the leader's reconciler
// makes it, without the network addresses (which place nothing).
func previewPass(tx *state.ReadTxn, services []string, newID func() string, now time.Time) (plans []*orchestrator.Plan, next time.Time, _ error) {
	nodes, err := tx.Nodes(nil)
	if err != nil {
		return nil, time.Time{}, err
	}
	tasks, err := tx.Tasks(nil)
	if err != nil {
		return nil, time.Time{}, err
	}
	svcs, err := tx.Services(nil)
	if err != nil {
		return nil, time.Time{}, err
	}
	specs := make(map[string]*spec.Service, len(svcs))
	for _, s := range svcs {
		specs[s.ID] = &s.Spec
	}
	infos := scheduler.NodeInfosFromState(nodes, tasks, func(id string) *spec.Service { return specs[id] })
	pass := orchestrator.NewPass(nodes, infos, reconciler.PassOptions(tx), now, newID)
	for _, id := range services {
		sp, err := reconciler.PlanService(tx, pass, id)
		if err != nil {
			return nil, time.Time{}, err
		}
		if sp == nil {
			continue
		}
		if c := sp.NextCheck; !c.IsZero() && (next.IsZero() || c.Before(next)) {
			next = c
		}
		if !sp.Empty() {
			plans = append(plans, &sp.Plan)
		}
	}
	return plans, next, nil
}

// agentReports are what the nodes' agents would report: a placed task runs (a job's
// completes), a task told to stop stops.
func agentReports(tx *state.ReadTxn, services []string, now time.Time) ([]command.TaskStatusReport, error) {
	var out []command.TaskStatusReport
	for _, id := range services {
		tasks, err := tx.TasksByService(nil, id)
		if err != nil {
			return nil, err
		}
		for _, t := range tasks {
			if t.NodeID == "" || t.Status.State.Before(model.TaskAssigned) || t.Status.State.Terminal() {
				continue
			}
			to := model.TaskRunning
			switch {
			case t.DesiredState == model.TaskComplete:
				to = model.TaskComplete
			case t.DesiredState != model.TaskRunning:
				to = model.TaskShutdown
			case t.Status.State == model.TaskRunning:
				continue
			}
			out = append(out, command.TaskStatusReport{NodeID: t.NodeID, TaskID: t.ID,
				Status: model.TaskStatus{State: to, Message: "preview", Timestamp: now}})
		}
	}
	return out, nil
}

// placements compares the services' tasks before and after the rollout.
func placements(before, after *state.ReadTxn, services []string) ([]*api.ServicePlacement, error) {
	hostname := func(id string) string {
		if n, err := after.Node(nil, id); err == nil {
			return n.Hostname
		}
		return id
	}
	var out []*api.ServicePlacement
	for _, id := range services {
		old, err := before.TasksByService(nil, id)
		if err != nil {
			return nil, err
		}
		cur, err := after.TasksByService(nil, id)
		if err != nil {
			return nil, err
		}
		sp := &api.ServicePlacement{Service: serviceName(before, after, id)}
		existed := map[string]bool{}
		// What ran before, by slot (by node for a global service's tasks).
		ran := map[string]*model.Task{}
		for _, t := range old {
			existed[t.ID] = true
			if active(t) && t.NodeID != "" && !t.Status.State.Before(model.TaskAssigned) {
				ran[placementSlot(t)] = t
			}
		}
		unplaced := map[string]int{}
		filled := map[string]bool{}
		for _, t := range cur {
			if !active(t) {
				continue
			}
			if t.Status.State.Before(model.TaskAssigned) {
				unplaced[t.Status.Err]++
				continue
			}
			filled[placementSlot(t)] = true
			if existed[t.ID] {
				continue
			}
			tp := api.TaskPlacement{Slot: t.Slot, Node: hostname(t.NodeID)}
			if prev := ran[placementSlot(t)]; prev != nil {
				tp.Replaces = true
				if prev.NodeID != t.NodeID {
					tp.From = hostname(prev.NodeID)
				}
			}
			sp.Tasks = append(sp.Tasks, tp)
		}
		for key := range ran {
			if !filled[key] {
				sp.Stopped++
			}
		}
		for _, reason := range slices.Sorted(maps.Keys(unplaced)) {
			sp.Unplaced = append(sp.Unplaced, api.UnplacedTasks{Count: unplaced[reason], Reason: reason})
		}
		if svc, err := after.Service(nil, id); err == nil && svc.UpdateStatus.State != "" &&
			svc.UpdateStatus.State != model.UpdateCompleted && svc.UpdateStatus != updateStatusOf(before, id) {
			sp.Update = string(svc.UpdateStatus.State) + ": " + svc.UpdateStatus.Message
		}
		if len(sp.Tasks) == 0 && sp.Stopped == 0 && len(sp.Unplaced) == 0 && sp.Update == "" {
			continue
		}
		slices.SortFunc(sp.Tasks, func(a, b api.TaskPlacement) int {
			return cmp.Or(cmp.Compare(a.Slot, b.Slot), cmp.Compare(a.Node, b.Node))
		})
		out = append(out, sp)
	}
	slices.SortFunc(out, func(a, b *api.ServicePlacement) int { return cmp.Compare(a.Service, b.Service) })
	return out, nil
}

// active: the task is meant to run (or to complete, a job's) and has not ended.
func active(t *model.Task) bool {
	return (t.DesiredState == model.TaskRunning || t.DesiredState == model.TaskComplete) && !t.Status.State.Terminal()
}

// placementSlot names what a task fills: its slot, or its node for a global service's.
func placementSlot(t *model.Task) string {
	if t.Slot == 0 {
		return "node:" + t.NodeID
	}
	return fmt.Sprint("slot:", t.Slot)
}

func updateStatusOf(tx *state.ReadTxn, id string) model.UpdateStatus {
	if s, err := tx.Service(nil, id); err == nil {
		return s.UpdateStatus
	}
	return model.UpdateStatus{}
}

func serviceName(before, after *state.ReadTxn, id string) string {
	for _, tx := range []*state.ReadTxn{after, before} {
		if s, err := tx.Service(nil, id); err == nil {
			return s.Name
		}
	}
	return id
}
