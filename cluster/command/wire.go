package command

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unique"

	"github.com/berthd/berth/cluster/model"
)

// The commands that carry tasks by the thousand (plan-apply, task-status) are encoded in
// a compact binary form rather than JSON: every manager decodes every entry, and at a
// million tasks JSON's cost per task would rival the state's own. A body is
//
//	format byte (wireFormat)
//	string table: uvarint count, then uvarint length and bytes for each string
//	the command's fields, strings as uvarint indexes into the table (0 is "")
//
// Repeated strings (service IDs and names, spec hashes, node IDs, messages) are stored
// once per entry. Strings are decoded into substrings of one string, the table; those
// that rows keep for their lifetime and that many rows share (service IDs and names,
// node IDs, spec hashes, images, states, messages) are canonicalized with unique.Make instead
// (see word), so that the rows of all entries share one copy and a row keeps no
// entry's table alive but through its own unique strings (task ID, address).
//
// Format 2 added the addresses of a plan's task updates (orchestrator.TaskUpdate's
// Networks), format 3 the image of a task row (model.Task's Image); bodies of the
// older formats, in the logs of older clusters, are still read.
const wireFormat = 3

var errTruncated = errors.New("truncated")

type wireEncoder struct {
	body  []byte
	index map[string]uint64
	table []string
}

func newWireEncoder(sizeHint int) *wireEncoder {
	return &wireEncoder{body: make([]byte, 0, sizeHint), index: make(map[string]uint64)}
}

func (e *wireEncoder) uvarint(v uint64) { e.body = binary.AppendUvarint(e.body, v) }
func (e *wireEncoder) varint(v int64)   { e.body = binary.AppendVarint(e.body, v) }
func (e *wireEncoder) byte(b byte)      { e.body = append(e.body, b) }

func (e *wireEncoder) bool(b bool) {
	if b {
		e.byte(1)
	} else {
		e.byte(0)
	}
}

func (e *wireEncoder) str(s string) {
	if s == "" {
		e.uvarint(0)
		return
	}
	i, ok := e.index[s]
	if !ok {
		e.table = append(e.table, s)
		i = uint64(len(e.table))
		e.index[s] = i
	}
	e.uvarint(i)
}

// time encodes the instant to the nanosecond; the zero time stays zero.
func (e *wireEncoder) time(t time.Time) {
	if t.IsZero() {
		e.byte(0)
		return
	}
	e.byte(1)
	e.varint(t.UnixNano())
}

// bytes finishes the body: format, table, fields.
func (e *wireEncoder) bytes(prefix []byte) []byte {
	n := len(prefix) + 1 + binary.MaxVarintLen64 + len(e.body)
	for _, s := range e.table {
		n += binary.MaxVarintLen64 + len(s)
	}
	out := make([]byte, 0, n)
	out = append(out, prefix...)
	out = append(out, wireFormat)
	out = binary.AppendUvarint(out, uint64(len(e.table)))
	for _, s := range e.table {
		out = binary.AppendUvarint(out, uint64(len(s)))
		out = append(out, s...)
	}
	return append(out, e.body...)
}

type wireDecoder struct {
	b     []byte
	table []string
	// words caches word's answers by table index.
	words  []string
	format byte
	err    error
}

func newWireDecoder(b []byte) *wireDecoder {
	d := &wireDecoder{b: b}
	if len(b) == 0 {
		d.err = errTruncated
		return d
	}
	if b[0] < 1 || b[0] > wireFormat {
		d.err = fmt.Errorf("unknown encoding format %d (this manager runs an older berth than the cluster)", b[0])
		return d
	}
	d.format = b[0]
	d.b = b[1:]
	n := d.uvarint()
	if d.err != nil {
		return d
	}
	if n > uint64(len(d.b)) {
		d.err = errTruncated
		return d
	}
	// One string holds the whole table; the entries are substrings of it.
	type span struct{ from, to int }
	spans := make([]span, n)
	var size int
	start := d.b
	for i := range spans {
		l := d.uvarint()
		if d.err != nil || l > uint64(len(d.b)) {
			d.fail()
			return d
		}
		spans[i] = span{size, size + int(l)}
		size += int(l)
		d.b = d.b[l:]
	}
	// Copy the bytes of the strings (without their lengths) into one string.
	buf := make([]byte, 0, size)
	rest := start
	for range spans {
		l, k := binary.Uvarint(rest)
		rest = rest[k:]
		buf = append(buf, rest[:l]...)
		rest = rest[l:]
	}
	all := string(buf)
	d.table = make([]string, n)
	for i, s := range spans {
		d.table[i] = all[s.from:s.to]
	}
	return d
}

func (d *wireDecoder) fail() {
	if d.err == nil {
		d.err = errTruncated
	}
}

func (d *wireDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *wireDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *wireDecoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	b := d.b[0]
	d.b = d.b[1:]
	return b
}

func (d *wireDecoder) bool() bool { return d.byte() == 1 }

func (d *wireDecoder) str() string {
	i := d.strIndex()
	if i < 0 {
		return ""
	}
	return d.table[i]
}

// word is str for a string that rows keep and share (see wireFormat). Without it, a
// status report's row would keep the whole table of the report's entry (every task ID
// and node ID of 1,024 reports) alive for its message "started".
func (d *wireDecoder) word() string {
	i := d.strIndex()
	if i < 0 {
		return ""
	}
	if d.words == nil {
		d.words = make([]string, len(d.table))
	}
	w := d.words[i]
	if w == "" {
		w = unique.Make(d.table[i]).Value()
		d.words[i] = w
	}
	return w
}

// strIndex reads a string's table index, -1 for "" or an error.
func (d *wireDecoder) strIndex() int {
	i := d.uvarint()
	if i == 0 || d.err != nil {
		return -1
	}
	if i > uint64(len(d.table)) {
		d.err = fmt.Errorf("string %d of a table of %d", i, len(d.table))
		return -1
	}
	return int(i - 1)
}

func (d *wireDecoder) time() time.Time {
	if d.byte() == 0 || d.err != nil {
		return time.Time{}
	}
	return time.Unix(0, d.varint()).UTC()
}

// count reads a length and checks it against what is left, so that a corrupt length
// cannot make the decoder allocate gigabytes.
func (d *wireDecoder) count(minBytes int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)/max(minBytes, 1)) {
		d.fail()
		return 0
	}
	return int(n)
}

// done checks that the whole body was read.
func (d *wireDecoder) done() error {
	if d.err == nil && len(d.b) > 0 {
		return fmt.Errorf("%d bytes after the end", len(d.b))
	}
	return d.err
}

// Task rows and statuses.

func (e *wireEncoder) status(s *model.TaskStatus) {
	e.str(string(s.State))
	e.str(s.Message)
	e.str(s.Err)
	e.varint(int64(s.ExitCode))
	e.time(s.Timestamp)
}

func (d *wireDecoder) status() model.TaskStatus {
	return model.TaskStatus{
		State:     model.TaskState(d.word()),
		Message:   d.word(),
		Err:       d.word(),
		ExitCode:  int(d.varint()),
		Timestamp: d.time(),
	}
}

func (e *wireEncoder) task(t *model.Task) {
	e.str(t.ID)
	e.str(t.ServiceID)
	e.str(t.ServiceName)
	e.uvarint(t.Slot)
	e.str(t.NodeID)
	e.uvarint(t.SpecVersion)
	e.str(string(t.DesiredState))
	e.status(&t.Status)
	e.attachments(t.Networks)
	e.str(t.ContainerID)
	e.time(t.CreatedAt)
	e.time(t.UpdatedAt)
	e.str(t.SpecHash)
	e.str(t.Image)
	e.time(t.NotBefore)
	e.uvarint(t.Restarts.Count)
	e.uvarint(uint64(len(t.Restarts.Recent)))
	for _, at := range t.Restarts.Recent {
		e.time(at)
	}
}

func (d *wireDecoder) task(t *model.Task) {
	t.ID = d.str()
	t.ServiceID = d.word()
	t.ServiceName = d.word()
	t.Slot = d.uvarint()
	t.NodeID = d.word()
	t.SpecVersion = d.uvarint()
	t.DesiredState = model.TaskState(d.word())
	t.Status = d.status()
	t.Networks = d.attachments()
	t.ContainerID = d.str()
	t.CreatedAt = d.time()
	t.UpdatedAt = d.time()
	t.SpecHash = d.word()
	if d.format >= 3 {
		t.Image = d.word()
	}
	t.NotBefore = d.time()
	t.Restarts.Count = d.uvarint()
	if n := d.count(1); n > 0 {
		t.Restarts.Recent = make([]time.Time, n)
		for i := range t.Restarts.Recent {
			t.Restarts.Recent[i] = d.time()
		}
	}
}

func (e *wireEncoder) attachments(atts []model.Attachment) {
	e.uvarint(uint64(len(atts)))
	for _, a := range atts {
		e.str(a.Network)
		e.str(a.Addr)
		e.str(a.MAC)
	}
}

func (d *wireDecoder) attachments() []model.Attachment {
	n := d.count(3)
	if n == 0 {
		return nil
	}
	out := make([]model.Attachment, n)
	for i := range out {
		out[i] = model.Attachment{Network: d.word(), Addr: d.str(), MAC: d.str()}
	}
	return out
}
