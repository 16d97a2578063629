package spec

// The limits below bound what a stack, a request or an object may hold, so that no
// file or request can make the managers hold (and raft replicate) more than they can
// afford. Every one is checked by the managers whatever the client did; the README's
// "Limits" section lists them for users.
const (
	// MaxNameLength bounds the names of stacks, services and networks, and the
	// cluster-wide `<stack>_<service>` names: a DNS label, as in Swarm.
	MaxNameLength = 63
	// MaxObjectNameLength bounds the names of secrets, configs and volumes, as
	// Swarm does for secrets and configs.
	MaxObjectNameLength = 64

	// MaxLabelKeyBytes, MaxLabelValueBytes and MaxLabels bound the labels of each
	// service, stack network, volume, secret, config and node. Real labels (Traefik
	// rules, OCI annotations) stay far below them.
	MaxLabelKeyBytes   = 256
	MaxLabelValueBytes = 4 << 10
	MaxLabels          = 128

	// MaxStackBytes bounds a stack's JSON encoding without the content of its secrets
	// and configs: what one raft entry carries for the spec. The 1,000 services of
	// spec/bench_test.go's generated stack, shaped like real ones, encode to 830 KiB.
	MaxStackBytes = 2 << 20
	// MaxObjectBytes bounds the content of one secret or config, as in Docker.
	MaxObjectBytes = 500 << 10

	// MaxRevisionLength bounds a revision or branch a client names.
	MaxRevisionLength = 256
	// MaxPathLength bounds a path (in a container, a repository or a URL): Linux's
	// PATH_MAX.
	MaxPathLength = 4096
)

// Request bodies the managers' API reads, largest first. A body over its limit is
// refused with 413 before it is decoded, so that a client cannot make a manager hold
// more than that in memory. Git pushes and image archives stream and are not bounded
// by these.
const (
	// MaxStackRequestBytes is a stack deploy or a plan: a spec of up to MaxStackBytes
	// and its secrets and configs, base64 in JSON (4/3 of their size): room for 20
	// secrets or configs of the maximum size besides the largest spec.
	MaxStackRequestBytes = 16 << 20
	// MaxObjectRequestBytes is a secret or config create: MaxObjectBytes in base64
	// and MaxLabels labels of the maximum size.
	MaxObjectRequestBytes = 2 << 20
	// MaxRequestBytes is every other request: the largest valid one, a node update
	// with MaxLabels labels of the maximum size, is about 550 KiB.
	MaxRequestBytes = 1 << 20
)
