// Package command is what a raft entry means: the command types (the first byte of
// every entry; values are never reused), their bodies, their encoding (JSON, or the
// binary form of wire.go for the bodies that carry tasks by the thousand), and the
// function that applies each of them to a state.WriteTxn. Everything non-deterministic
// (IDs, times, random secrets) is decided by the proposer and carried in the body, so
// every manager applies the same bytes the same way.
//
// It has no raft in it: cluster/store's FSM hands every entry to Apply, and a dry run
// applies the same commands to a fork of the state with Simulate.
package command
