package scheduler

import (
	"slices"
	"strings"
	"time"

	"github.com/berthd/berth/cluster/model"
)

// failKind names a filter, in filter order: the order of the constants is the order in
// which a node is checked and in which reasons list the counts.
type failKind uint8

const (
	passed failKind = iota
	failDown
	failNotReady
	failPaused
	failDraining
	failPlatform
	failConstraint // sub: index of the constraint
	failResources  // sub: resCPU, resMemory or resBoth
	failMaxReplicas
	failHostPort // sub: index of the port
)

// Which resources a node lacks.
const (
	resCPU = iota
	resMemory
	resBoth
)

// failure is the first filter a node failed; the zero value means it passed them all.
type failure struct {
	kind failKind
	sub  int
}

// request is a Request compiled once per call: constraints parsed, preferences
// resolved, ports listed, so that the per-node work allocates nothing.
type request struct {
	serviceID   string
	specVersion uint64
	constraints []constraint
	prefs       []preference
	need        Resources
	maxPerNode  int // 0: no cap
	ports       []HostPort
	platforms   []model.Platform
	threshold   int
	since       time.Time // failures at or after this instant count as recent
	avoid       []string

	// buckets lists every failure a reason can count, in filter order; bucket maps a
	// failure to its index there.
	buckets []failure
	offsets [failHostPort + 1]int
}

func compile(req *Request, now time.Time) *request {
	r := &request{
		serviceID:   req.ServiceID,
		specVersion: req.SpecVersion,
		need:        reservations(req.Service),
		ports:       hostPorts(req.Service),
		platforms:   req.Platforms,
		threshold:   req.FailureThreshold,
		avoid:       req.Avoid,
	}
	if r.threshold <= 0 {
		r.threshold = DefaultFailureThreshold
	}
	window := req.FailureWindow
	if window <= 0 {
		window = DefaultFailureWindow
	}
	r.since = now.Add(-window)
	if svc := req.Service; svc != nil {
		p := &svc.Deploy.Placement
		r.constraints = make([]constraint, len(p.Constraints))
		for i, c := range p.Constraints {
			r.constraints[i] = compileConstraint(c)
		}
		r.prefs = make([]preference, len(p.Preferences))
		for i, pref := range p.Preferences {
			r.prefs[i] = compilePreference(pref.Spread)
		}
		r.maxPerNode = int(min(p.MaxReplicasPerNode, uint64(maxInt)))
	}
	subs := func(k failKind) int {
		switch k {
		case failConstraint:
			return len(r.constraints)
		case failResources:
			return resBoth + 1
		case failHostPort:
			return len(r.ports)
		}
		return 1
	}
	for k := failDown; k <= failHostPort; k++ {
		r.offsets[k] = len(r.buckets)
		for s := range subs(k) {
			r.buckets = append(r.buckets, failure{kind: k, sub: s})
		}
	}
	return r
}

const maxInt = int(^uint(0) >> 1)

func (r *request) bucket(f failure) int { return r.offsets[f.kind] + f.sub }

// checkNode runs the filters that depend only on the node and the service: once per
// node and call.
func (r *request) checkNode(n *NodeInfo) failure {
	switch n.State {
	case model.NodeReady:
	case model.NodeDown:
		return failure{kind: failDown}
	default:
		return failure{kind: failNotReady}
	}
	switch n.Availability {
	case model.AvailabilityPause:
		return failure{kind: failPaused}
	case model.AvailabilityDrain:
		return failure{kind: failDraining}
	}
	if len(r.platforms) > 0 && !platformSupported(r.platforms, n.Platform) {
		return failure{kind: failPlatform}
	}
	for i := range r.constraints {
		if !r.constraints[i].match(n) {
			return failure{kind: failConstraint, sub: i}
		}
	}
	return failure{}
}

// checkCapacity runs the filters that change as tasks are placed, against a node's
// working counters: free resources and the service's task count. portsTaken says
// that this call already put a task, and so the service's host ports, on the node.
func (r *request) checkCapacity(n *NodeInfo, free Resources, serviceTasks int, portsTaken bool) failure {
	cpu := r.need.NanoCPUs > 0 && free.NanoCPUs < r.need.NanoCPUs
	mem := r.need.MemoryBytes > 0 && free.MemoryBytes < r.need.MemoryBytes
	switch {
	case cpu && mem:
		return failure{kind: failResources, sub: resBoth}
	case cpu:
		return failure{kind: failResources, sub: resCPU}
	case mem:
		return failure{kind: failResources, sub: resMemory}
	}
	if r.maxPerNode > 0 && serviceTasks >= r.maxPerNode {
		return failure{kind: failMaxReplicas}
	}
	if len(r.ports) > 0 {
		if portsTaken {
			return failure{kind: failHostPort}
		}
		for i, p := range r.ports {
			if n.HostPorts[p] > 0 {
				return failure{kind: failHostPort, sub: i}
			}
		}
	}
	return failure{}
}

// failedRecently reports whether the service version failed on n at least threshold
// times within the window, or the request asks to avoid n.
func (r *request) failedRecently(n *NodeInfo) bool {
	if slices.Contains(r.avoid, n.ID) {
		return true
	}
	count := 0
	for i := range n.Failures {
		f := &n.Failures[i]
		if f.SpecVersion == r.specVersion && f.ServiceID == r.serviceID && !f.At.Before(r.since) {
			count++
			if count >= r.threshold {
				return true
			}
		}
	}
	return false
}

// platformSupported matches a node's platform against the image's, as Swarm does:
// case-insensitively, with the common architecture aliases folded, and an empty field
// on the image side matching anything. A node that reports no platform matches only
// entries that leave both fields empty.
func platformSupported(image []model.Platform, node model.Platform) bool {
	os, arch := node.OS, normalizeArch(node.Arch)
	for _, p := range image {
		if (p.OS == "" || strings.EqualFold(p.OS, os)) &&
			(p.Arch == "" || strings.EqualFold(normalizeArch(p.Arch), arch)) {
			return true
		}
	}
	return false
}

func normalizeArch(arch string) string {
	switch strings.ToLower(arch) {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64":
		return "arm64"
	}
	return arch
}
