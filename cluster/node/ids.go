package node

import (
	"crypto/rand"
	"math/big"
	"strings"
)

// idLen is the length of node and cluster IDs: 128 random bits in base36, the shape
// of Docker Swarm's IDs (so `node ls` looks the same, and prefixes work the same).
const idLen = 25

// newID returns a random ID. Node IDs are made by the manager that admits the node
// (init: the node itself), never by the joiner, so that a joiner cannot choose
// another node's identity.
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on Linux; if it ever does, nothing is safe.
		panic("read random bytes: " + err.Error())
	}
	s := new(big.Int).SetBytes(b[:]).Text(36)
	return strings.Repeat("0", idLen-len(s)) + s
}
