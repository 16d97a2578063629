// Package daemon is the composition root of `berth daemon`: it composes a running
// berth node from the data dir, the node's identity and certificates, the keyring, the
// raft store, the API on the unix socket and on the TCP port, heartbeats, the lock
// state, and the init, join, leave, unlock and role change flows. It is the only
// package that wires the control plane, the GitOps applier, the agent and netstack
// together; nothing imports it but cmd/berth. Node implements server.Backend. The
// manager's requests are cluster/control's: the node serves them through control in
// the phases that have a manager (backend.go) and gives control what it needs of the
// node (control.go).
//
// # Phases
//
// A node is inactive (only its socket: init, join, info), a worker (heartbeats to the
// leader), a manager (the TCP port, raft, everything), or locked (an autolocked
// manager after a restart: info, unlock and leave only, and no TCP port until
// unlocked).
//
// # Data dir
//
//	DIR/node.json            node id, cluster id, role, advertise address, known managers,
//	                         the unlock key generation its keyring follows (no secret)
//	DIR/daemon.lock          flock: one daemon per data dir
//	DIR/certs/ca.pem         the cluster CA certificate
//	DIR/certs/node.pem       this node's certificate (role and IDs inside)
//	DIR/certs/node-key.pem   its private key
//	DIR/raft/keys.json       the keyring: data keys wrapped by the key-encryption key
//	                         (stored beside them unless autolock is on)
//	DIR/raft/raft.db         raft log (entries sealed) and stable store
//	DIR/raft/snapshots/      sealed snapshots
//
// Directories are 0700, files 0600. A worker has no raft/ directory.
//
// # Where the secrets live
//
// The root CA key, the join tokens and (with autolock) the unlock key are fields of
// the Cluster row in the raft state, which is sealed at rest: any manager can sign
// certificates and answer joins after a failover, and a manager joining an autolocked
// cluster receives the unlock key over mutual TLS. API answers and logs carry the
// Redacted row only. Each manager keeps its keyring wrapped the way the row says
// (a watch on the row, outside the FSM); only a newer unlock key generation may
// rewrap it, so that replaying old entries after a restart never turns autolock off
// on disk.
//
// # Joining
//
// The joiner pins the manager's CA with the token's digest (ca.FetchAndVerifyCA),
// then sends a CSR, the token, its hostname and address to POST /v1/join. The manager
// checks the token against the Cluster row, makes the node ID (random, 25 base36
// characters: never chosen by the joiner), signs the certificate with the role the
// token grants, and writes the node through raft. A new manager then starts raft and
// asks the leader to add it as a voter (it must be listening before a one-voter
// cluster can commit a two-voter configuration), and `berth join` returns once it is
// a voter.
//
// # Heartbeats
//
// Every node heartbeats to the leader every heartbeat period (the cluster's setting,
// 1s by default); the leader heartbeats for itself in process. The leader keeps the
// last heartbeat of each node in memory only and writes transitions: down after 5
// periods without one, ready at the next. A new leader gives every node a full grace
// period. A node waits 2.5 periods for an answer (HeartbeatTimeout) and keeps its
// connection to the leader across heartbeats. Heartbeat answers carry the node's
// recorded role (promotions and demotions reach the node this way) and the managers'
// addresses. Manager reachability shown by `node ls` is worked out when answering:
// the raft leader is Leader, a voter whose heartbeats keep it ready is Reachable, any
// other manager Unreachable.
package daemon
