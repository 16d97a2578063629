package command

import "github.com/berthd/berth/cluster/state"

// Simulate applies a command to st the way the FSM would apply it as the next raft
// entry, and returns the error the entry would fail with. It is for a dry run on a
// state.Store.Fork: what a deploy, a sync or a plan would write, without proposing
// anything.
func Simulate(st *state.Store, t Type, body any) error {
	data, err := Encode(t, body)
	if err != nil {
		return err
	}
	index := st.ReadTxn().Index() + 1
	return st.Update(index, func(tx *state.WriteTxn) error { return Apply(tx, data) })
}
