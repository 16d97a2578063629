package gitserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
)

// errProgressClosed is returned by writes to a Push's Progress after its hook returned.
var errProgressClosed = errors.New("progress closed: the hook has returned")

// stream is a response body whose writes reach the client at once. When the client asked
// for a side-band, data and progress are multiplexed on it; otherwise progress is dropped,
// as Git does.
type stream struct {
	mu  sync.Mutex
	w   io.Writer
	rc  *http.ResponseController
	mux *sideband.Muxer // nil without side-band
}

func newStream(w http.ResponseWriter, caps *capability.List) *stream {
	s := &stream{w: w, rc: http.NewResponseController(w)}
	switch {
	case caps.Supports(capability.Sideband64k):
		s.mux = sideband.NewMuxer(sideband.Sideband64k, w)
	case caps.Supports(capability.Sideband):
		s.mux = sideband.NewMuxer(sideband.Sideband, w)
	}
	return s
}

// Write writes response data: the pack or the report status.
func (s *stream) Write(p []byte) (int, error) {
	return s.write(sideband.PackData, p)
}

func (s *stream) write(ch sideband.Channel, p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	switch {
	case s.mux != nil:
		_, err = s.mux.WriteChannel(ch, p)
	case ch == sideband.PackData:
		_, err = s.w.Write(p)
	default:
		return len(p), nil
	}
	if err != nil {
		return 0, fmt.Errorf("write response: %w", err)
	}
	if err := s.rc.Flush(); err != nil {
		return 0, fmt.Errorf("flush response: %w", err)
	}
	return len(p), nil
}

// fatal shows msg to the client as a remote error; Git aborts on it.
func (s *stream) fatal(msg string) {
	_, _ = s.write(sideband.ErrorMessage, []byte(msg+"\n"))
}

// end ends the side-band, if any.
func (s *stream) end() error {
	if s.mux == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := pktline.NewEncoder(s.w).Flush(); err != nil {
		return fmt.Errorf("end side-band: %w", err)
	}
	return nil
}

// progress is the Progress writer a hook gets. It stops writing once closed, so that a
// goroutine the hook left behind cannot write after the response ended.
type progress struct {
	mu     sync.Mutex
	s      *stream
	closed bool
}

func (s *stream) progress() *progress {
	return &progress{s: s}
}

func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, errProgressClosed
	}
	return p.s.write(sideband.ProgressMessage, b)
}

func (p *progress) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
}

// repoLocks serializes the pushes to one repository, from the check of the old values
// to the moves of the references.
type repoLocks struct {
	mu    sync.Mutex
	locks map[string]*repoLock
}

type repoLock struct {
	sem   chan struct{}
	users int // pushes holding or waiting for sem; the entry goes when none are left
}

func newRepoLocks() *repoLocks {
	return &repoLocks{locks: map[string]*repoLock{}}
}

// lock waits for name's lock, or for ctx to end.
func (l *repoLocks) lock(ctx context.Context, name string) (unlock func(), err error) {
	l.mu.Lock()
	rl, ok := l.locks[name]
	if !ok {
		rl = &repoLock{sem: make(chan struct{}, 1)}
		l.locks[name] = rl
	}
	rl.users++
	l.mu.Unlock()

	release := func() {
		l.mu.Lock()
		rl.users--
		if rl.users == 0 {
			delete(l.locks, name)
		}
		l.mu.Unlock()
	}
	select {
	case rl.sem <- struct{}{}:
		return func() {
			<-rl.sem
			release()
		}, nil
	case <-ctx.Done():
		release()
		return nil, fmt.Errorf("wait for the other push to %s: %w", name, ctx.Err())
	}
}
