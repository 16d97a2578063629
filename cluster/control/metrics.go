package control

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/scheduler"
	"github.com/berthd/berth/cluster/state"
)

// Collector returns the manager's metrics, read from raft and the replicated state at
// each scrape: they cost nothing between scrapes, and every manager answers alike
// for the state (only the leader's raft figures differ). Labels are bounded by what
// the cluster holds (services, sources, nodes' roles), never task IDs.
func (c *Control) Collector() prometheus.Collector { return newClusterMetrics(c) }

// raftStats is what the collector reads of raft besides control's Raft (store.Store).
type raftStats interface {
	Stats() map[string]string
	LastContact() time.Duration
}

type clusterMetrics struct {
	c                                  *Control
	leader, term, commit, applied      *prometheus.Desc
	lastContact                        *prometheus.Desc
	tasks, pending, nodes              *prometheus.Desc
	desired, running, upToDate         *prometheus.Desc
	sourceInfo, sourceApplied, lastRun *prometheus.Desc
}

func newClusterMetrics(c *Control) *clusterMetrics {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("berth_"+name, help, labels, nil)
	}
	return &clusterMetrics{
		c:             c,
		leader:        d("raft_leader", "1 when this manager is the raft leader."),
		term:          d("raft_term", "The raft term this manager is in."),
		commit:        d("raft_commit_index", "The last raft index this manager knows committed."),
		applied:       d("raft_applied_index", "The last raft index this manager applied to its state."),
		lastContact:   d("raft_last_contact_seconds", "Seconds since this follower last heard from the leader (0 on the leader)."),
		tasks:         d("tasks", "Tasks by state and desired state.", "state", "desired_state"),
		pending:       d("tasks_pending", "Tasks waiting for a node, by the class of the scheduler's reason.", "reason"),
		nodes:         d("nodes", "Nodes by role, state and availability.", "role", "state", "availability"),
		desired:       d("service_replicas_desired", "Tasks a service asks for (for a global service, the nodes that qualify).", "service", "stack"),
		running:       d("service_replicas_running", "Tasks of a service that run.", "service", "stack"),
		upToDate:      d("service_replicas_up_to_date", "Running tasks made from the service's current spec.", "service", "stack"),
		sourceInfo:    d("source_info", "A source's sync status and the revision it last applied (value 1).", "source", "kind", "status", "revision"),
		sourceApplied: d("source_last_applied_timestamp_seconds", "When a source last applied a revision (Unix time).", "source"),
		lastRun:       d("source_last_sync_timestamp_seconds", "When a source's last sync of each result ended (Unix time), from its history.", "source", "result"),
	}
}

// Describe implements prometheus.Collector.
func (m *clusterMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.leader, m.term, m.commit, m.applied, m.lastContact, m.tasks, m.pending,
		m.nodes, m.desired, m.running, m.upToDate, m.sourceInfo, m.sourceApplied, m.lastRun} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A failed read of the state is reported as
// an invalid metric, which the scrape shows as an error.
func (m *clusterMetrics) Collect(ch chan<- prometheus.Metric) {
	m.collectRaft(ch)
	tx := m.c.st.State().ReadTxn()
	for _, collect := range []func(*state.ReadTxn, chan<- prometheus.Metric) error{m.collectServices, m.collectNodes, m.collectSources} {
		if err := collect(tx, ch); err != nil {
			ch <- prometheus.NewInvalidMetric(m.tasks, err)
			return
		}
	}
}

func (m *clusterMetrics) collectRaft(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	if m.c.raft != nil {
		gauge(m.leader, boolValue(m.c.raft.IsLeader()))
	}
	rs, ok := m.c.raft.(raftStats)
	if !ok {
		return
	}
	stats := rs.Stats()
	for d, key := range map[*prometheus.Desc]string{m.term: "term", m.commit: "commit_index", m.applied: "applied_index"} {
		if v, err := strconv.ParseUint(stats[key], 10, 64); err == nil {
			gauge(d, float64(v))
		}
	}
	gauge(m.lastContact, rs.LastContact().Seconds())
}

// collectServices counts tasks, and each service's replicas as `service ls` does.
func (m *clusterMetrics) collectServices(tx *state.ReadTxn, ch chan<- prometheus.Metric) error {
	svcs, err := tx.Services(nil)
	if err != nil {
		return err
	}
	type stateKey struct{ state, desired model.TaskState }
	tasks := map[stateKey]int{}
	pending := map[string]int{}
	allowed := m.c.allowedNodes(tx)
	for _, s := range svcs {
		list, err := tx.TasksByService(nil, s.ID)
		if err != nil {
			return err
		}
		for _, t := range list {
			tasks[stateKey{t.Status.State, t.DesiredState}]++
		}
		st := ServiceStatus(s, list, allowed(s))
		for _, p := range st.Pending {
			pending[scheduler.ReasonClass(p.Reason)] += p.Tasks
		}
		for d, v := range map[*prometheus.Desc]uint64{m.desired: st.Desired, m.running: st.Running, m.upToDate: st.UpToDate} {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), s.Name, s.Stack)
		}
	}
	for k, n := range tasks {
		ch <- prometheus.MustNewConstMetric(m.tasks, prometheus.GaugeValue, float64(n), string(k.state), string(k.desired))
	}
	for class, n := range pending {
		ch <- prometheus.MustNewConstMetric(m.pending, prometheus.GaugeValue, float64(n), class)
	}
	return nil
}

func (m *clusterMetrics) collectNodes(tx *state.ReadTxn, ch chan<- prometheus.Metric) error {
	nodes, err := tx.Nodes(nil)
	if err != nil {
		return err
	}
	type nodeKey struct{ role, state, availability string }
	counts := map[nodeKey]int{}
	for _, n := range nodes {
		counts[nodeKey{string(n.Role), string(n.Status.State), string(n.Availability)}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(m.nodes, prometheus.GaugeValue, float64(n), k.role, k.state, k.availability)
	}
	return nil
}

func (m *clusterMetrics) collectSources(tx *state.ReadTxn, ch chan<- prometheus.Metric) error {
	sources, err := tx.Sources(nil)
	if err != nil {
		return err
	}
	for _, s := range sources {
		ch <- prometheus.MustNewConstMetric(m.sourceInfo, prometheus.GaugeValue, 1, s.Name, string(s.Kind), string(s.Status), s.LastAppliedRevision)
		if !s.LastAppliedAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(m.sourceApplied, prometheus.GaugeValue, unixSeconds(s.LastAppliedAt), s.Name)
		}
		last := map[model.SyncResult]time.Time{}
		for _, r := range s.History {
			if r.Time.After(last[r.Result]) {
				last[r.Result] = r.Time
			}
		}
		for result, at := range last {
			ch <- prometheus.MustNewConstMetric(m.lastRun, prometheus.GaugeValue, unixSeconds(at), s.Name, string(result))
		}
	}
	return nil
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
