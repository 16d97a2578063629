package model

import (
	"math/big"
	"strings"
	"testing"
)

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id := NewID()
		if len(id) != IDLength || strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyz") != "" {
			t.Fatalf("ID %q", id)
		}
		if seen[id] {
			t.Fatalf("ID %q twice", id)
		}
		seen[id] = true
		// 128 bits fit in 25 base36 digits: the ID parses back below 2^128.
		n, ok := new(big.Int).SetString(id, 36)
		if !ok || n.BitLen() > 128 {
			t.Fatalf("ID %q is not a 128-bit number", id)
		}
	}
}

func BenchmarkNewID(b *testing.B) {
	for b.Loop() {
		_ = NewID()
	}
}
