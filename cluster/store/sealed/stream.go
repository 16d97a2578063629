package sealed

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Sealed stream format (snapshots), after the STREAM construction of
// Hoang, Reyhanitabar, Rogaway and Vizár, as used by age and Tink:
//
//	header  magic "BSNP" (4) | version 1 (1) | data key id (4, BE) | salt (32)
//	chunks  AES-256-GCM(stream key, nonce_i, chunk_i, header || final_i)
//
// The stream key is HKDF-SHA256(DEK, salt, streamLabel), new for every
// stream, so chunk nonces can be a plain counter (nonce_i = 0^4 || i as
// 8 bytes BE) without ever repeating under one key. Every chunk holds
// exactly streamChunkSize plaintext bytes except the last, which holds
// fewer (possibly none) and is the only one authenticated with final = 1:
// reordering, dropping, truncating or extending the stream all fail to
// open. Because the layout is fixed, the plaintext size follows from the
// stored size (plaintextSize) without reading the stream, which raft needs
// for SnapshotMeta.Size.
const (
	streamMagic     = "BSNP"
	streamVersion   = 1
	streamSaltSize  = 32
	streamHeaderLen = 4 + 1 + 4 + streamSaltSize
	streamChunkSize = 64 << 10
	streamLabel     = "berth snapshot stream v1"
)

// streamWriter seals what is written to it onto w in chunks. Close writes
// the final chunk; it does not close w.
type streamWriter struct {
	w       io.Writer
	aead    cipher.AEAD
	header  []byte
	buf     []byte // pending plaintext, less than a chunk
	out     []byte // ciphertext scratch
	counter uint64
	err     error // sticky: a stream with a hole must not be finished
	closed  bool
}

func (k *Keyring) newStreamWriter(w io.Writer) (*streamWriter, error) {
	id, dk, err := k.current()
	if err != nil {
		return nil, err
	}
	header := make([]byte, streamHeaderLen)
	copy(header, streamMagic)
	header[4] = streamVersion
	binary.BigEndian.PutUint32(header[5:9], id)
	if _, err := rand.Read(header[9:]); err != nil {
		return nil, fmt.Errorf("seal stream: %w", err)
	}
	aead, err := streamAEAD(dk, header[9:])
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(header); err != nil {
		return nil, fmt.Errorf("seal stream: write header: %w", err)
	}
	return &streamWriter{
		w:      w,
		aead:   aead,
		header: header,
		buf:    make([]byte, 0, streamChunkSize),
		out:    make([]byte, 0, streamChunkSize+gcmTagSize),
	}, nil
}

func streamAEAD(dk *dataKey, salt []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, dk.raw, salt, streamLabel, dekSize)
	if err != nil {
		return nil, fmt.Errorf("derive stream key: %w", err)
	}
	return newGCM(key)
}

func (s *streamWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.closed {
		return 0, errors.New("seal stream: write after close")
	}
	n := 0
	for len(p) > 0 {
		c := copy(s.buf[len(s.buf):streamChunkSize], p)
		s.buf = s.buf[:len(s.buf)+c]
		p = p[c:]
		n += c
		// A full chunk is never the final one, so it can go out now.
		if len(s.buf) == streamChunkSize {
			if err := s.flush(false); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// Close seals the final chunk, which holds what is pending: always less
// than a chunk, possibly nothing.
func (s *streamWriter) Close() error {
	if s.err != nil {
		return s.err
	}
	if s.closed {
		return nil
	}
	s.closed = true
	return s.flush(true)
}

func (s *streamWriter) flush(final bool) error {
	var nonce [gcmNonceSize]byte
	binary.BigEndian.PutUint64(nonce[4:], s.counter)
	s.counter++
	s.out = s.aead.Seal(s.out[:0], nonce[:], s.buf, chunkAAD(s.header, final))
	s.buf = s.buf[:0]
	if _, err := s.w.Write(s.out); err != nil {
		s.err = fmt.Errorf("seal stream: write: %w", err)
		return s.err
	}
	return nil
}

func chunkAAD(header []byte, final bool) []byte {
	a := make([]byte, len(header)+1)
	copy(a, header)
	if final {
		a[len(header)] = 1
	}
	return a
}

// streamReader opens a sealed stream from r chunk by chunk, so a snapshot
// of any size is restored in constant memory.
type streamReader struct {
	r       io.Reader
	aead    cipher.AEAD
	header  []byte
	in      []byte // ciphertext scratch
	plain   []byte // opened, not yet returned
	counter uint64
	done    bool  // final chunk opened
	err     error // sticky
}

func (k *Keyring) newStreamReader(r io.Reader) (*streamReader, error) {
	header := make([]byte, streamHeaderLen)
	if _, err := io.ReadFull(r, header); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: stream header truncated", ErrTampered)
		}
		return nil, fmt.Errorf("open stream: read header: %w", err)
	}
	if string(header[:4]) != streamMagic {
		return nil, fmt.Errorf("%w: not a sealed stream", ErrNotSealed)
	}
	if v := header[4]; v != streamVersion {
		return nil, fmt.Errorf("%w: stream version %d", ErrNotSealed, v)
	}
	dk, err := k.key(binary.BigEndian.Uint32(header[5:9]))
	if err != nil {
		return nil, err
	}
	aead, err := streamAEAD(dk, header[9:])
	if err != nil {
		return nil, err
	}
	return &streamReader{
		r:      r,
		aead:   aead,
		header: header,
		in:     make([]byte, streamChunkSize+gcmTagSize),
	}, nil
}

func (s *streamReader) Read(p []byte) (int, error) {
	for len(s.plain) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		if s.done {
			return 0, io.EOF
		}
		s.err = s.next()
	}
	n := copy(p, s.plain)
	s.plain = s.plain[n:]
	return n, nil
}

// next reads and opens one chunk. A full-size chunk is never final; a
// short one always is, and then the underlying reader is at its end.
func (s *streamReader) next() error {
	n, err := io.ReadFull(s.r, s.in)
	final := false
	switch {
	case err == nil:
	case errors.Is(err, io.ErrUnexpectedEOF) && n >= gcmTagSize:
		final = true
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: stream truncated after chunk %d", ErrTampered, s.counter)
	default:
		return fmt.Errorf("open stream: read: %w", err)
	}
	var nonce [gcmNonceSize]byte
	binary.BigEndian.PutUint64(nonce[4:], s.counter)
	// Opening in place is fine: s.in is refilled only once s.plain is spent.
	plain, err := s.aead.Open(s.in[:0], nonce[:], s.in[:n], chunkAAD(s.header, final))
	if err != nil {
		return fmt.Errorf("%w: stream chunk %d", ErrTampered, s.counter)
	}
	s.counter++
	s.plain = plain
	s.done = final
	return nil
}

// plaintextSize computes the plaintext length of a sealed stream of
// sealedSize bytes; ok is false if no valid stream has that size.
func plaintextSize(sealedSize int64) (size int64, ok bool) {
	body := sealedSize - streamHeaderLen - gcmTagSize // minus the final tag
	if body < 0 {
		return 0, false
	}
	const full = streamChunkSize + gcmTagSize
	chunks, last := body/full, body%full
	if last >= streamChunkSize {
		return 0, false
	}
	return chunks*streamChunkSize + last, true
}
