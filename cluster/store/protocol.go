package store

import (
	"fmt"

	"github.com/berthd/berth/cluster/command"
)

// admit is the leader's protocol gate, before an entry is written: a command goes into
// the log only once every manager can apply it, since a manager that cannot stops
// (fsm.Apply). The commands of protocol 1, every manager's, pass without a look.
func (s *Store) admit(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	t := command.Type(data[0])
	if !t.Known() {
		// Forwarded by a newer follower: this leader could not apply it itself.
		return fmt.Errorf("%w %d: the leader runs berth protocol %d; upgrade every manager first",
			command.ErrUnknown, uint8(t), command.Version)
	}
	if t.Since() <= 1 {
		return nil
	}
	managers, err := s.managers()
	if err != nil {
		return err
	}
	return command.CheckProtocol(t, managers)
}

// managers are the members of raft, voters or not, with the berth each one's node row
// says it runs (nothing for a manager of protocol 1). A member without a row is
// passed over: a manager enters raft only once its row records it as one (control's
// addVoter), so only this leader's own first moments, or a raft without berth's
// daemon around it (tests), have one.
func (s *Store) managers() ([]command.Manager, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read the raft configuration: %w", err)
	}
	tx := s.State().ReadTxn()
	var out []command.Manager
	for _, srv := range f.Configuration().Servers {
		if nd, err := tx.Node(nil, string(srv.ID)); err == nil {
			out = append(out, command.ManagerOf(nd))
		}
	}
	return out, nil
}
