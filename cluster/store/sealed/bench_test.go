package sealed

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

func BenchmarkSeal4KiB(b *testing.B) {
	kr, _ := mustCreate(b, b.TempDir(), false)
	plain := make([]byte, 4<<10)
	rand.Read(plain)
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Seal(plain); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen4KiB(b *testing.B) {
	kr, _ := mustCreate(b, b.TempDir(), false)
	plain := make([]byte, 4<<10)
	rand.Read(plain)
	sealed, err := kr.Seal(plain)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Open(sealed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreLogs1000 stores batches of 1,000 entries in raftboltdb,
// plain and through the sealed wrapper, in the same run, with fsync (what
// a manager does) and without (to show the crypto cost alone).
func BenchmarkStoreLogs1000(b *testing.B) {
	const batch = 1000
	for _, size := range []int{512, 4 << 10} {
		for _, noSync := range []bool{false, true} {
			for _, sealedRun := range []bool{false, true} {
				name := fmt.Sprintf("entry=%dB/fsync=%v/%s", size, !noSync, map[bool]string{false: "plain", true: "sealed"}[sealedRun])
				b.Run(name, func(b *testing.B) {
					dir := b.TempDir()
					bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), NoSync: noSync})
					if err != nil {
						b.Fatal(err)
					}
					defer bolt.Close()
					var store raft.LogStore = bolt
					if sealedRun {
						kr, _ := mustCreate(b, dir, false)
						store = NewLogStore(bolt, kr)
					}
					data := make([]byte, size)
					rand.Read(data)
					logs := make([]*raft.Log, batch)
					next := uint64(1)
					b.SetBytes(int64(batch * size))
					b.ReportAllocs()
					for b.Loop() {
						for i := range logs {
							logs[i] = &raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: data}
							next++
						}
						if err := store.StoreLogs(logs); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkSnapshotStream seals and opens a 16 MiB snapshot stream in
// memory: the cost sealing adds to taking and restoring a snapshot.
func BenchmarkSnapshotStream(b *testing.B) {
	kr, _ := mustCreate(b, b.TempDir(), false)
	plain := make([]byte, 16<<20)
	rand.Read(plain)
	var sealed bytes.Buffer
	b.Run("seal", func(b *testing.B) {
		b.SetBytes(int64(len(plain)))
		for b.Loop() {
			sealed.Reset()
			w, err := kr.newStreamWriter(&sealed)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(w, bytes.NewReader(plain)); err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		b.SetBytes(int64(len(plain)))
		for b.Loop() {
			r, err := kr.newStreamReader(bytes.NewReader(sealed.Bytes()))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
