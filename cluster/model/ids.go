package model

import (
	"crypto/rand"
	"math/bits"
	"sync"
)

// IDLength is the length of the IDs NewID makes: 128 random bits in base36, the shape
// of Docker Swarm's IDs (so listings look the same, and prefixes work the same).
const IDLength = 25

// idBuf hands out random bytes from one read of many: the leader makes an ID for
// every task it creates, a million of them for the C1M benchmark, and a system call
// per ID would cost more than the rest of making the task.
var idBuf struct {
	sync.Mutex
	b   [4096]byte
	off int
}

func init() { idBuf.off = len(idBuf.b) }

// NewID returns a random ID. Rows' IDs are made by the proposer of the command that
// creates them, never by the FSM (which must be deterministic) and never by a joining
// node (which could then choose another node's identity).
func NewID() string {
	var r [16]byte
	idBuf.Lock()
	if idBuf.off+len(r) > len(idBuf.b) {
		if _, err := rand.Read(idBuf.b[:]); err != nil {
			idBuf.Unlock()
			// crypto/rand does not fail on Linux; if it ever does, nothing is safe.
			panic("read random bytes: " + err.Error())
		}
		idBuf.off = 0
	}
	copy(r[:], idBuf.b[idBuf.off:])
	clear(idBuf.b[idBuf.off : idBuf.off+len(r)])
	idBuf.off += len(r)
	idBuf.Unlock()
	hi := uint64(r[0])<<56 | uint64(r[1])<<48 | uint64(r[2])<<40 | uint64(r[3])<<32 | uint64(r[4])<<24 | uint64(r[5])<<16 | uint64(r[6])<<8 | uint64(r[7])
	lo := uint64(r[8])<<56 | uint64(r[9])<<48 | uint64(r[10])<<40 | uint64(r[11])<<32 | uint64(r[12])<<24 | uint64(r[13])<<16 | uint64(r[14])<<8 | uint64(r[15])
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	var out [IDLength]byte
	for i := IDLength - 1; i >= 0; i-- {
		// Divide the 128-bit number hi:lo by 36.
		var rem uint64
		hi, rem = bits.Div64(0, hi, 36)
		lo, rem = bits.Div64(rem, lo, 36)
		out[i] = digits[rem]
	}
	return string(out[:])
}
