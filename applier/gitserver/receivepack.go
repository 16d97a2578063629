package gitserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
)

// maxReasonBytes keeps a rejection reason readable on the client's one
// `! [remote rejected] main -> main (reason)` line; the full text goes to `remote:` lines.
const maxReasonBytes = 400

// receivePack receives a push: it stores the pack, lets PreReceive check the updates,
// moves the references, reports the outcome per reference and runs PostReceive.
func (h *handler) receivePack(w http.ResponseWriter, r *http.Request, name string, repo *git.Repository, body io.Reader) {
	br := bufio.NewReader(body)
	// Before a large push, Git probes the server (and its credentials) with an empty
	// request, which gets an empty answer.
	if head, _ := br.Peek(4); string(head) == "0000" {
		w.Header().Set("Content-Type", "application/x-git-receive-pack-result")
		return
	}
	shallows, err := readShallows(br)
	if err != nil {
		h.badBody(w, err)
		return
	}
	req := packp.NewReferenceUpdateRequest()
	if err := req.Decode(br); err != nil {
		h.badBody(w, fmt.Errorf("decode commands: %w", err))
		return
	}
	if err := checkCapabilities(receivePack, req.Capabilities); err != nil {
		h.badBody(w, err)
		return
	}
	updates := make([]RefUpdate, len(req.Commands))
	needPack := false
	for i, c := range req.Commands {
		updates[i] = RefUpdate{Name: c.Name, Old: c.Old, New: c.New}
		needPack = needPack || !c.New.IsZero()
	}

	// Git sends no pack when it only deletes references.
	var unpackErr error
	if needPack {
		unpackErr = packfile.UpdateObjectStorage(repo.Storer, br)
		if _, ok := errors.AsType[*http.MaxBytesError](unpackErr); ok {
			h.badBody(w, unpackErr)
			return
		}
	}

	w.Header().Set("Content-Type", "application/x-git-receive-pack-result")
	s := newStream(w, req.Capabilities)
	ctx := r.Context()
	statuses := make([]string, len(updates))
	var applied []RefUpdate
	if unpackErr != nil {
		fill(statuses, "unpacker error")
	} else if err := checkShallows(repo, shallows); err != nil {
		fill(statuses, oneLine(err.Error()))
	} else {
		applied = h.update(ctx, name, repo, updates, statuses, s)
	}

	if req.Capabilities.Supports(capability.ReportStatus) {
		rs := packp.NewReportStatus()
		rs.UnpackStatus = "ok"
		if unpackErr != nil {
			rs.UnpackStatus = oneLine(unpackErr.Error())
		}
		for i, u := range updates {
			status := statuses[i]
			if status == "" {
				status = "ok"
			}
			rs.CommandStatuses = append(rs.CommandStatuses, &packp.CommandStatus{ReferenceName: u.Name, Status: status})
		}
		var buf bytes.Buffer
		// Encoding into memory cannot fail; a write fails only when the client is gone,
		// and the references have moved all the same.
		_ = rs.Encode(&buf)
		_, _ = s.Write(buf.Bytes())
	}

	// PostReceive runs whenever references moved, even for a client that went away: what
	// it starts must not depend on whether someone watches.
	if len(applied) > 0 {
		p := s.progress()
		h.cfg.Hooks.PostReceive(ctx, &Push{Repo: name, Storage: repo, Updates: applied, Progress: p})
		p.close()
	}
	_ = s.end()
}

func fill(statuses []string, reason string) {
	for i := range statuses {
		statuses[i] = reason
	}
}

// readShallows consumes the shallow lines that Git sends before the commands when it
// pushes from a shallow clone: the commits whose parents the client lacks.
func readShallows(br *bufio.Reader) ([]plumbing.Hash, error) {
	var shallows []plumbing.Hash
	for {
		head, err := br.Peek(4)
		if err != nil {
			return shallows, nil
		}
		n, err := strconv.ParseUint(string(head), 16, 16)
		if err != nil || n <= 4 {
			return shallows, nil
		}
		line, err := br.Peek(int(n))
		if err != nil {
			return shallows, nil
		}
		hash, ok := bytes.CutPrefix(line[4:], []byte("shallow "))
		if !ok {
			return shallows, nil
		}
		if h := string(bytes.TrimSuffix(hash, []byte("\n"))); plumbing.IsHash(h) {
			shallows = append(shallows, plumbing.NewHash(h))
		} else {
			return nil, fmt.Errorf("invalid shallow line %q: want shallow and a commit id", line[4:])
		}
		if _, err := br.Discard(int(n)); err != nil {
			return nil, fmt.Errorf("read shallow line: %w", err)
		}
	}
}

// checkShallows refuses a push from a shallow clone that would leave the repository
// shallow: one that sent a commit at the client's shallow boundary whose parents the
// repository does not have. As in Git, the repository stays whole.
func checkShallows(repo *git.Repository, shallows []plumbing.Hash) error {
	for _, sh := range shallows {
		commit, err := object.GetCommit(repo.Storer, sh)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			// Neither here nor in the pack: the pushed history does not reach it.
			continue
		}
		if err != nil {
			return fmt.Errorf("read shallow commit %s: %w", sh, err)
		}
		for _, p := range commit.ParentHashes {
			if repo.Storer.HasEncodedObject(p) != nil {
				return fmt.Errorf("shallow update not allowed: the history behind %s is missing; push from a full clone (git fetch --unshallow)", sh)
			}
		}
	}
	return nil
}

// update checks the updates, runs PreReceive and moves the references, all under the
// repository's lock. It fills in the reason of every update it refuses and returns those
// it applied.
func (h *handler) update(ctx context.Context, name string, repo *git.Repository, updates []RefUpdate, reasons []string, s *stream) []RefUpdate {
	unlock, err := h.locks.lock(ctx, name)
	if err != nil {
		for i := range reasons {
			reasons[i] = oneLine(err.Error())
		}
		return nil
	}
	defer unlock()

	var valid []RefUpdate
	var index []int // index[j] is the position of valid[j] in updates
	seen := map[plumbing.ReferenceName]bool{}
	for i, u := range updates {
		if seen[u.Name] {
			reasons[i] = "the push updates this reference twice"
			continue
		}
		seen[u.Name] = true
		if err := checkUpdate(repo, u); err != nil {
			reasons[i] = oneLine(err.Error())
			continue
		}
		valid = append(valid, u)
		index = append(index, i)
	}
	if len(valid) == 0 {
		return nil
	}

	p := s.progress()
	err = h.cfg.Hooks.PreReceive(ctx, &Push{Repo: name, Storage: repo, Updates: valid, Progress: p})
	p.close()
	if err == nil && ctx.Err() != nil {
		// The client is gone and would not learn the outcome: leave everything as it was.
		err = fmt.Errorf("push abandoned: %w", ctx.Err())
	}
	if err != nil {
		msg := strings.TrimSpace(err.Error())
		if msg == "" {
			msg = "rejected by berth"
		}
		_, _ = s.write(sideband.ProgressMessage, []byte("push rejected: "+msg+"\n"))
		for _, i := range index {
			reasons[i] = oneLine(msg)
		}
		return nil
	}

	var applied []RefUpdate
	for j, u := range valid {
		if err := applyUpdate(repo, u); err != nil {
			h.cfg.Logger.Error("update reference", "repo", name, "ref", u.Name, "err", err)
			reasons[index[j]] = oneLine(fmt.Sprintf("failed to update ref: %v", err))
			continue
		}
		applied = append(applied, u)
	}
	return applied
}

// checkUpdate checks what Git's receive-pack checks before its hooks run: a sane name,
// an old value that is still current and a new object that exists.
func checkUpdate(repo *git.Repository, u RefUpdate) error {
	if !strings.HasPrefix(u.Name.String(), "refs/") || u.Name.Validate() != nil {
		return fmt.Errorf("invalid reference name %q: push to refs/heads/BRANCH or refs/tags/TAG", u.Name)
	}
	current := plumbing.ZeroHash
	ref, err := repo.Storer.Reference(u.Name)
	switch {
	case errors.Is(err, plumbing.ErrReferenceNotFound):
	case err != nil:
		return fmt.Errorf("read %s: %w", u.Name, err)
	case ref.Type() != plumbing.HashReference:
		return fmt.Errorf("%s is a symbolic reference: push to its target %s", u.Name, ref.Target())
	default:
		current = ref.Hash()
	}
	if current != u.Old {
		if current.IsZero() {
			return errors.New("stale info: the reference no longer exists; fetch first")
		}
		return fmt.Errorf("stale info: the reference is now at %s; fetch first", current)
	}
	if u.New.IsZero() {
		return nil
	}
	obj, err := repo.Storer.EncodedObject(plumbing.AnyObject, u.New)
	if err != nil {
		return fmt.Errorf("missing necessary object %s: %w", u.New, err)
	}
	if u.Name.IsBranch() && obj.Type() != plumbing.CommitObject {
		return fmt.Errorf("%s is a %s: a branch must point to a commit", u.New, obj.Type())
	}
	if obj.Type() == plumbing.CommitObject {
		if _, err := object.DecodeCommit(repo.Storer, obj); err != nil {
			return fmt.Errorf("decode commit %s: %w", u.New, err)
		}
	}
	return nil
}

// applyUpdate moves a reference, unless it moved since checkUpdate.
func applyUpdate(repo *git.Repository, u RefUpdate) error {
	if u.New.IsZero() {
		if err := repo.Storer.RemoveReference(u.Name); err != nil {
			return fmt.Errorf("delete %s: %w", u.Name, err)
		}
		return nil
	}
	var old *plumbing.Reference
	if !u.Old.IsZero() {
		old = plumbing.NewHashReference(u.Name, u.Old)
	}
	if err := repo.Storer.CheckAndSetReference(plumbing.NewHashReference(u.Name, u.New), old); err != nil {
		// PreReceive may have made the update public already (berth replicates it),
		// and a reader of that moved the reference to the same place first.
		if cur, rerr := repo.Storer.Reference(u.Name); rerr == nil && cur.Hash() == u.New {
			return nil
		}
		return fmt.Errorf("set %s to %s: %w", u.Name, u.New, err)
	}
	return nil
}

// oneLine makes msg fit one report-status line.
func oneLine(msg string) string {
	var lines []string
	for line := range strings.SplitSeq(msg, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	msg = strings.Join(lines, "; ")
	if len(msg) > maxReasonBytes {
		msg = strings.ToValidUTF8(msg[:maxReasonBytes], "") + "..."
	}
	return msg
}
