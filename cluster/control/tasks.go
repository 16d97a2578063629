package control

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/state"
)

// Tasks lists tasks with their names, nodes and images, by service name, then slot
// (node for global services), newest first: the order `service ps` prints them in,
// each slot's current task first and its history below.
func (c *Control) Tasks(ctx context.Context, f api.TaskFilter, q api.Query) ([]*api.TaskInfo, api.QueryMeta, error) {
	var out []*api.TaskInfo
	idx, err := c.blocking(ctx, q, []string{state.TableServices, state.TableTasks, state.TableNodes}, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
		out = nil
		tasks, err := filterTasks(tx, f)
		if err != nil {
			return 0, err
		}
		images := map[string]func(*model.Task) string{}
		stacks := map[string]string{}
		hosts := map[string]string{}
		for _, t := range tasks {
			image, ok := images[t.ServiceID]
			if !ok {
				svc, err := tx.Service(nil, t.ServiceID)
				if err == nil {
					image = imageOf(svc)
					stacks[t.ServiceID] = svc.Stack
				} else {
					image = func(t *model.Task) string { return t.Image }
				}
				images[t.ServiceID] = image
			}
			info := &api.TaskInfo{Task: t, Name: t.Name(), Stack: stacks[t.ServiceID], Image: image(t)}
			if t.NodeID != "" {
				h, ok := hosts[t.NodeID]
				if !ok {
					if n, err := tx.Node(nil, t.NodeID); err == nil {
						h = n.Hostname
					}
					hosts[t.NodeID] = h
				}
				info.NodeHostname = h
			}
			out = append(out, info)
		}
		slices.SortFunc(out, func(a, b *api.TaskInfo) int {
			return cmp.Or(strings.Compare(a.ServiceName, b.ServiceName), strings.Compare(a.ServiceID, b.ServiceID),
				cmp.Compare(a.Slot, b.Slot), strings.Compare(slotNode(a), slotNode(b)),
				b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.CreateIndex, a.CreateIndex), strings.Compare(a.ID, b.ID))
		})
		return tx.Index(state.TableServices, state.TableTasks, state.TableNodes), nil
	})
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	return out, api.QueryMeta{Index: idx}, nil
}

// slotNode groups a global service's tasks by node; replicated tasks group by slot.
func slotNode(t *api.TaskInfo) string {
	if t.Slot > 0 {
		return ""
	}
	return t.NodeID
}

func filterTasks(tx *state.ReadTxn, f api.TaskFilter) ([]*model.Task, error) {
	var tasks []*model.Task
	switch {
	case f.Service != "":
		s, err := resolveService(tx, f.Service)
		if err != nil {
			return nil, err
		}
		if f.Stack != "" && s.Stack != f.Stack {
			return nil, nil
		}
		tasks, err = tx.TasksByService(nil, s.ID)
		if err != nil {
			return nil, err
		}
	case f.Stack != "":
		svcs, err := tx.ServicesByStack(nil, f.Stack)
		if err != nil {
			return nil, err
		}
		if len(svcs) == 0 {
			if _, err := tx.Stack(nil, f.Stack); err != nil {
				return nil, &notFoundError{"stack", f.Stack}
			}
		}
		for _, s := range svcs {
			ts, err := tx.TasksByService(nil, s.ID)
			if err != nil {
				return nil, err
			}
			tasks = append(tasks, ts...)
		}
	default:
		var err error
		if tasks, err = tx.Tasks(nil); err != nil {
			return nil, err
		}
	}
	if f.Node != "" {
		n, err := resolveNode(tx, f.Node)
		if err != nil {
			return nil, err
		}
		tasks = slices.DeleteFunc(tasks, func(t *model.Task) bool { return t.NodeID != n.ID })
	}
	return tasks, nil
}

// imageOf tells the image a task of svc was made from: the one the task records, or,
// for a row written before tasks recorded it, the current spec's, or the previous
// spec's for a task made before the last update.
func imageOf(svc *model.Service) func(*model.Task) string {
	cur := orchestrator.TaskHash(svc)
	prev := ""
	if svc.PreviousSpec != nil {
		p := *svc
		p.Spec, p.Objects = *svc.PreviousSpec, svc.PreviousObjects
		prev = orchestrator.TaskHash(&p)
	}
	return func(t *model.Task) string {
		if t.Image != "" {
			return t.Image
		}
		if prev != "" && t.SpecHash == prev && t.SpecHash != cur {
			return svc.PreviousSpec.Image
		}
		return svc.Spec.Image
	}
}
