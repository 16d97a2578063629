package sealed

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealOpenRoundTrip(t *testing.T) {
	kr, _ := mustCreate(t, t.TempDir(), false)
	for _, size := range []int{0, 1, 31, 4 << 10, 1 << 20} {
		plain := bytes.Repeat([]byte{'x'}, size)
		sealed, err := kr.Seal(plain)
		if err != nil {
			t.Fatalf("Seal(%d bytes): %v", size, err)
		}
		if len(sealed) != size+envelopeOverhead {
			t.Fatalf("sealed %d bytes into %d, want %d", size, len(sealed), size+envelopeOverhead)
		}
		got, err := kr.Open(sealed)
		if err != nil {
			t.Fatalf("Open(%d bytes): %v", size, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("round trip of %d bytes differs", size)
		}
	}
}

func TestSealUsesFreshNonces(t *testing.T) {
	kr, _ := mustCreate(t, t.TempDir(), false)
	a, _ := kr.Seal(marker)
	b, _ := kr.Seal(marker)
	if bytes.Equal(a, b) {
		t.Fatal("sealing the same plaintext twice gave the same bytes")
	}
	if bytes.Contains(a, marker) {
		t.Fatal("sealed value contains the plaintext")
	}
}

func TestOpenDetectsTampering(t *testing.T) {
	kr, _ := mustCreate(t, t.TempDir(), false)
	sealed, err := kr.Seal(marker)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := mustCreate(t, t.TempDir(), false)
	fromOther, _ := other.Seal(marker)

	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrNotSealed},
		{"plaintext", marker, ErrNotSealed},
		{"magic", flip(0), ErrNotSealed},
		{"version", flip(4), ErrNotSealed},
		{"key id", flip(8), ErrUnknownKeyID},
		{"nonce", flip(envelopeHeaderLen), ErrTampered},
		{"ciphertext", flip(envelopeHeaderLen + gcmNonceSize + 3), ErrTampered},
		{"tag", flip(len(sealed) - 1), ErrTampered},
		{"truncated tag", sealed[:len(sealed)-1], ErrTampered},
		{"header only", sealed[:envelopeHeaderLen], ErrTampered},
		{"extended", append(bytes.Clone(sealed), 0), ErrTampered},
		{"another keyring's key 1", fromOther, ErrTampered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := kr.Open(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %q, %v; want %v", got, err, tt.want)
			}
		})
	}

	// Every single-bit change anywhere is caught, not just the ones above.
	for i := range sealed {
		for bit := range 8 {
			b := bytes.Clone(sealed)
			b[i] ^= 1 << bit
			if _, err := kr.Open(b); err == nil {
				t.Fatalf("flipping bit %d of byte %d went unnoticed", bit, i)
			}
		}
	}
}

func TestSealContextBinding(t *testing.T) {
	kr, _ := mustCreate(t, t.TempDir(), false)
	sealed, err := kr.seal(marker, []byte("entry 1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.open(sealed, []byte("entry 2")); !errors.Is(err, ErrTampered) {
		t.Fatalf("open under another context: %v, want ErrTampered", err)
	}
	if _, err := kr.Open(sealed); !errors.Is(err, ErrTampered) {
		t.Fatalf("open without context: %v, want ErrTampered", err)
	}
	if got, err := kr.open(sealed, []byte("entry 1")); err != nil || !bytes.Equal(got, marker) {
		t.Fatalf("open under its own context: %q, %v", got, err)
	}
}
