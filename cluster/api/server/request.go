package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// DefaultWait is how long a blocking query waits when it gives an index but no wait.
const DefaultWait = 5 * time.Minute

// decode reads a client's JSON body into v, at most spec.MaxRequestBytes of it. An
// empty body leaves v as it is.
func decode(r *http.Request, v any) error { return decodeLimit(r, v, spec.MaxRequestBytes) }

// decodeLimit is decode with another size limit. A field v does not have is refused:
// silently dropping it would do less than the client asked (a misspelt option, a
// client newer than this manager).
func decodeLimit(r *http.Request, v any, limit int64) error {
	return decodeBody(r, v, limit, true)
}

// decodeInternal reads what another node of the cluster sent. Unknown fields are
// ignored there, so that nodes of different versions work together while a cluster
// is upgraded one node at a time.
func decodeInternal(r *http.Request, v any, limit int64) error {
	return decodeBody(r, v, limit, false)
}

func decodeBody(r *http.Request, v any, limit int64, strict bool) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, limit))
	if strict {
		dec.DisallowUnknownFields()
	}
	err := dec.Decode(v)
	var tooBig *http.MaxBytesError
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &tooBig):
		return fmt.Errorf("%w: the body of %s is larger than %s, its limit (see \"Limits\" in berth's README)", api.ErrTooLarge, r.Pattern, byteSize(tooBig.Limit))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest("the request has %s: this manager does not know it (a misspelling, or a client newer than the manager)",
			strings.TrimPrefix(err.Error(), "json: "))
	}
	return badRequest("request body is not valid JSON: %v", err)
}

// byteSize writes a limit as people read it: 16 MiB, 64 KiB.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// query reads ?index=N&wait=D (D a Go duration, or seconds).
func query(r *http.Request) (api.Query, error) {
	var q api.Query
	v := r.URL.Query()
	if s := v.Get("index"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return q, badRequest("index %q is not a raft index", s)
		}
		q.Index = n
	}
	if s := v.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			secs, err2 := strconv.ParseUint(s, 10, 32)
			if err2 != nil {
				return q, badRequest("wait %q is not a duration (e.g. 30s)", s)
			}
			d = time.Duration(secs) * time.Second
		}
		if d < 0 {
			return q, badRequest("wait %q is negative", s)
		}
		q.Wait = d
	}
	if q.Index > 0 && q.Wait == 0 {
		q.Wait = DefaultWait
	}
	q.Wait = min(q.Wait, state.MaxBlockingWait)
	return q, nil
}

func boolParam(r *http.Request, name string) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, badRequest("%s=%q is not a boolean", name, s)
	}
	return b, nil
}
