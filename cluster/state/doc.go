// Package state keeps berth's replicated data model: the rows of cluster/model
// (DESIGN.md section 3) in the tables of an in-memory go-memdb database, but for tasks,
// which have a store of their own (see Task storage); typed read and write
// transactions over them, watches that wake blocked readers, and O(1)
// snapshots that persist to and restore from a stream.
//
// Only the raft FSM (cluster/store) writes: every raft entry becomes one
// WriteTxn opened with the entry's raft index. Everything else reads.
//
// # Indexes
//
// Every row embeds Meta. The write transaction sets Meta.CreateIndex when a row
// is inserted and Meta.ModifyIndex on every write, from the raft index the
// transaction was opened with; whatever the caller put in Meta is ignored.
// Besides the rows, the store keeps one "table index" per table: the raft index
// of the last committed transaction that inserted, changed or deleted a row of
// that table. ReadTxn.Index reports it, and it is what blocking queries
// (?index=N&wait=30s) compare against. Deleting a row therefore moves the table
// index even though no remaining row carries the new index. A transaction that
// wrote nothing, or whose writes all failed, moves no table index.
//
// # Task storage
//
// A million tasks are written twice each (placed, then reported running) on every
// manager. In go-memdb every index of every row is a radix-tree leaf with watch
// channels, and every write re-inserts the row into all its indexes, even when no key
// changed: that cost 1.9 KB of memory per task per manager and three quarters of the
// CPU of the C1M benchmark (BENCHMARKS.md). Tasks therefore live beside memdb, in a
// taskTable (tasktable.go) of persistent B+trees (btree.go): ordered, because every
// task listing and the snapshot are in key order, which a hash trie would have to sort;
// written here, and small, so that a copied node can share its keys with its original
// and keys can hold IDs inline, without pointers (idKey: the GC neither scans the
// trees nor puts a write barrier on copying them), the changes that mattered most at
// a million rows after leaving memdb. Tasks' IDs, and the service and node IDs they
// hold, are therefore at most MaxIDLength (32) bytes.
// The rows, their Meta, the table index (ReadTxn.Index), Blocking, the feed and the
// snapshot format are as for the other tables.
//
//   - byID maps task IDs to rows; bySlot holds (service, slot, ID) and byNode
//     (node, ID) keys, without rows, so that a status report, which changes no
//     key, writes byID alone; nodeIndex holds the raft index of the last change
//     to each node's tasks (NodeTasksIndex).
//   - The trees are copy-on-write, so a committed table never changes and a read
//     transaction or a snapshot holds one in O(1). A write transaction works on a
//     copy of the table's root; the tree nodes it copies are its own, and it
//     changes them in place until it commits (like Clojure's transients), so an
//     entry of 1,024 rows copies each node it touches once, not once per row. A
//     copy shares the keys of its original until it changes them, so replacing a
//     row, or a child on the way down, copies values or child pointers only.
//   - Commit publishes memdb's new root and the task table together under
//     Store.rootMu, and ReadTxn and Snapshot take both under it: a reader sees
//     both as of the same commit. The memdb write transaction, which excludes
//     other writers, also guards the task table's writer.
//   - Watches: a task read adds the channel of the task table's index row to the
//     watch set, which every commit that writes a task closes, except TasksByNode:
//     agents watch their node's tasks through blocking queries, and thousands of
//     them must not all wake on every write. It adds a channel of its node, made
//     when first watched and closed by the commit that next changes that node's
//     tasks; a reader whose view is older than the node's last change gets a
//     closed channel instead, since the commit it missed may have closed the
//     node's channel before it asked.
//   - The change feed, which memdb's change tracking used to fill, is recorded by
//     the write transaction itself for every table, with the same rules.
//
// # Immutability
//
// memdb and the task table share rows between transactions and snapshots, so a
// row, once stored, must never change in place. The package enforces half of
// that: every write stores a deep copy of what it is given, so the caller keeps
// ownership of its value, except PutTasks, PutTask and ReplaceTask, which take
// ownership of fresh rows (the FSM's, decoded from a raft entry) to spare a
// million tasks a copy each. The other half is a rule for callers: rows returned
// by reads are shared with every other reader and must not be modified. To
// change a row, Copy it, change the copy and upsert that.
//
// # Errors
//
// Errors name the table and the row's key and wrap one of the sentinel errors
// (ErrNotFound, ErrConflict, ErrInvalid, ErrTxnClosed, ErrAbandoned), to be
// matched with errors.Is. They never carry secret data or join token secrets.
// A write that fails changes nothing, so the transaction is still consistent
// afterwards; whether to go on or to Abort is the caller's decision (the FSM
// aborts the whole entry).
//
// # Secrets
//
// Secret.Data is kept in the Secret table only: a Stack row's spec never holds
// secret or config content (UpsertStack drops spec.FileObject.Data, which the
// spec's JSON form leaves out anyway). Secret's String, Format and LogValue
// methods and the Secrets lister never show Data; Redacted returns a copy
// without it. Secret.Data does appear in the row's JSON encoding, because the
// agent that runs a task using the secret must receive it; API handlers that
// list or describe secrets must send Redacted copies. The same goes for the
// join token secrets of the Cluster row.
//
// # Change feed
//
// Store.Feed hands the rows every committed write transaction changed (before and
// after) to a consumer, in commit order: the leader's reconciler keeps its view of a
// million tasks up to date from it instead of rescanning. Writes track their changes
// only while a feed is open, and a feed that falls too far behind says it lost
// changes rather than holding the writer back.
//
// # Snapshot encoding
//
// Snapshot.Persist writes JSON Lines (one JSON value per line): a header
// {"format":"berth-state","version":1}, then for each table a section record
// {"table":"nodes","rows":N} followed by N rows in the table's JSON form (the
// same as the API's), then the table indexes as the section "index", then
// {"end":true}. JSON rather than gob because gob drops pointers to zero values
// (spec.Deploy.Replicas = 0 would come back nil, that is one replica) and
// ignores the JSON encoders of spec types; JSON is also the form the API and
// the raft commands use, so a snapshot can be read with jq. Rows are written in
// primary-key order, so equal states persist to equal bytes. The end record
// makes a truncated snapshot fail to restore instead of restoring part of the
// state. Restore ignores fields it does not know (a newer writer's additions);
// anything incompatible must bump the version, which Restore refuses.
//
// Two things do not survive JSON and are therefore not distinguished by the
// store at all: a nil map or slice and an empty one, and a time.Time's
// location and monotonic reading (the instant is kept to the nanosecond).
// Proposers should use UTC times.
package state
