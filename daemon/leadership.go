package daemon

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
)

// recordLeadership commits, once per term this manager leads, that it took the lead:
// `berth events` on every manager tells leader changes from that record, and a
// survivor of a failover still has it. It waits for the cluster row, which the first
// leader of a new cluster writes after it is elected, then holds until leadership ends.
func (m *manager) recordLeadership(ctx context.Context) error {
	if err := waitFor(ctx, time.Minute, func() bool {
		_, err := m.state().ReadTxn().Cluster(nil)
		return err == nil
	}); err != nil {
		return fmt.Errorf("record the leadership: no cluster row: %w", err)
	}
	term, err := strconv.ParseUint(m.st.Stats()["term"], 10, 64)
	if err != nil {
		return fmt.Errorf("record the leadership: raft's term: %w", err)
	}
	rec := &model.LeaderRecord{NodeID: m.n.metaCopy().NodeID, Hostname: m.n.cfg.Hostname, Term: term, Since: time.Now().UTC()}
	if err := m.applyOnceUpgraded(ctx, rec); err != nil {
		return fmt.Errorf("record the leadership of term %d: %w", term, err)
	}
	m.logger.Info("leadership recorded", "term", term)
	<-ctx.Done()
	return nil
}

// applyOnceUpgraded commits the record, waiting while a manager of the cluster runs a
// berth that cannot apply it (a rolling upgrade in progress): that is a state to wait
// out, not an error to log every second.
func (m *manager) applyOnceUpgraded(ctx context.Context, rec *model.LeaderRecord) error {
	told := false
	for {
		_, err := m.st.ApplyLeader(ctx, command.CmdLeaderElected, rec)
		if !errors.Is(err, command.ErrProtocol) {
			return err
		}
		if !told {
			m.logger.Info("leader changes are recorded once every manager is upgraded", "reason", err)
			told = true
		}
		if !sleep(ctx, 5*time.Second) {
			return ctx.Err()
		}
	}
}
