package sealed

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// sealStream seals plain in writes of the given size and returns the
// sealed bytes.
func sealStream(t *testing.T, kr *Keyring, plain []byte, writeSize int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := kr.newStreamWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for p := plain; len(p) > 0; {
		n := min(writeSize, len(p))
		if m, err := w.Write(p[:n]); err != nil || m != n {
			t.Fatalf("Write = %d, %v", m, err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func openStream(kr *Keyring, sealed []byte) ([]byte, error) {
	r, err := kr.newStreamReader(bytes.NewReader(sealed))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestStreamRoundTrip(t *testing.T) {
	kr, _ := mustCreate(t, t.TempDir(), false)
	const c = streamChunkSize
	for _, size := range []int{0, 1, c - 1, c, c + 1, 3 * c, 3*c + 17} {
		for _, writeSize := range []int{1 << 20, 4096, 7} {
			if writeSize == 7 && size > c+1 {
				continue // slow and adds nothing
			}
			plain := make([]byte, size)
			rand.Read(plain)
			sealed := sealStream(t, kr, plain, writeSize)
			if got, ok := plaintextSize(int64(len(sealed))); !ok || got != int64(size) {
				t.Fatalf("size %d: plaintextSize(%d) = %d, %v", size, len(sealed), got, ok)
			}
			got, err := openStream(kr, sealed)
			if err != nil {
				t.Fatalf("size %d, writes of %d: %v", size, writeSize, err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatalf("size %d, writes of %d: round trip differs", size, writeSize)
			}
		}
	}
}

func TestStreamDetectsTampering(t *testing.T) {
	kr, _ := mustCreate(t, t.TempDir(), false)
	const c = streamChunkSize
	const full = c + gcmTagSize
	plain := bytes.Repeat(marker, (2*c+100)/len(marker)+1)[:2*c+100] // two full chunks and a short one
	sealed := sealStream(t, kr, plain, 1<<20)
	h := streamHeaderLen
	if len(sealed) != h+2*full+100+gcmTagSize {
		t.Fatalf("unexpected layout: %d bytes", len(sealed))
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	header, chunk0, chunk1, last := sealed[:h], sealed[h:h+full], sealed[h+full:h+2*full], sealed[h+2*full:]

	// An empty stream's final chunk, to splice onto others.
	emptyFinal := sealStream(t, kr, nil, 1)[h:]

	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTampered},
		{"header only", header, ErrTampered},
		{"bad magic", flip(0), ErrNotSealed},
		{"bad version", flip(4), ErrNotSealed},
		{"unknown key", flip(8), ErrUnknownKeyID},
		{"salt", flip(10), ErrTampered},
		{"first chunk", flip(h + 5), ErrTampered},
		{"last chunk", flip(len(sealed) - 1), ErrTampered},
		{"final chunk dropped", cat(header, chunk0, chunk1), ErrTampered},
		{"truncated mid chunk", sealed[:h+full+10], ErrTampered},
		{"truncated last byte", sealed[:len(sealed)-1], ErrTampered},
		{"chunks swapped", cat(header, chunk1, chunk0, last), ErrTampered},
		{"chunk dropped", cat(header, chunk0, last), ErrTampered},
		{"extended", cat(sealed, []byte{0}), ErrTampered},
		{"other stream's final chunk", cat(header, chunk0, chunk1, emptyFinal), ErrTampered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := openStream(kr, tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("open = %d bytes, %v; want %v", len(got), err, tt.want)
			}
		})
	}
}

func TestPlaintextSizeRejectsImpossibleSizes(t *testing.T) {
	for _, n := range []int64{0, streamHeaderLen, streamHeaderLen + gcmTagSize - 1, streamHeaderLen + gcmTagSize + streamChunkSize} {
		if _, ok := plaintextSize(n); ok {
			t.Errorf("plaintextSize(%d) accepted", n)
		}
	}
}

func newFileSnapshots(t testing.TB, dir string) *raft.FileSnapshotStore {
	t.Helper()
	fs, err := raft.NewFileSnapshotStoreWithLogger(dir, 3, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestSnapshotStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	kr, _ := mustCreate(t, dir, true)
	store := NewSnapshotStore(newFileSnapshots(t, dir), kr)
	_, trans := raft.NewInmemTransport("")
	conf := raft.Configuration{Servers: []raft.Server{{ID: "a", Address: "a"}}}

	plain := bytes.Repeat(marker, 10000) // several chunks
	sink, err := store.Create(1, 10, 2, conf, 1, trans)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(sink, bytes.NewReader(plain))
	if err != nil || n != int64(len(plain)) {
		t.Fatalf("copy into sink: %d, %v", n, err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// A cancelled snapshot leaves nothing behind.
	cancelled, err := store.Create(1, 11, 2, conf, 1, trans)
	if err != nil {
		t.Fatal(err)
	}
	cancelled.Write(marker)
	if err := cancelled.Cancel(); err != nil {
		t.Fatal(err)
	}

	metas, err := store.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(metas) != 1 || metas[0].Size != int64(len(plain)) || metas[0].Index != 10 {
		t.Fatalf("List = %+v, want one snapshot of %d bytes at index 10", metas, len(plain))
	}
	meta, rc, err := store.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	// raft compares the bytes it streams to a follower with meta.Size.
	if meta.Size != int64(len(got)) || !bytes.Equal(got, plain) {
		t.Fatalf("Open: size %d, %d bytes read, equal=%v", meta.Size, len(got), bytes.Equal(got, plain))
	}

	assertNotOnDisk(t, dir, map[string][]byte{"marker": marker})

	// A restarted, still locked node can neither read nor write snapshots.
	locked := NewSnapshotStore(newFileSnapshots(t, dir), mustOpenKeyring(t, dir))
	if _, _, err := locked.Open(sink.ID()); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open while locked: %v, want ErrLocked", err)
	}
	if _, err := locked.Create(1, 12, 2, conf, 1, trans); !errors.Is(err, ErrLocked) {
		t.Fatalf("Create while locked: %v, want ErrLocked", err)
	}
}
