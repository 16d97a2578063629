package api

import "time"

// The heartbeat protocol between every node and the leader, which both sides and the
// simulated agents of the benchmarks follow.

// DownAfter is how many heartbeat periods the leader waits before it declares a node
// down: five missed heartbeats, 5 s with the default period. A node beats every period
// and a late heartbeat is retried at the next one, so a loaded node or leader misses
// several in a row only when it is really gone.
const DownAfter = 5

// HeartbeatTimeout is how long a node waits for the answer to one heartbeat sent at
// period before it tries another manager: half the time until the leader would
// declare it down, at least a second. Not one period: a slow answer is not a missed
// beat (the leader records a beat when it arrives), and giving up on a request
// closes its HTTP/1.1 connection, so every slow answer would cost the leader, slow
// already, a new TLS handshake at the next beat.
func HeartbeatTimeout(period time.Duration) time.Duration {
	return max(DownAfter*period/2, time.Second)
}
