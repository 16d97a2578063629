package gitserver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/revlist"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

const (
	agent = "berth"
	// packWindow is how many objects the pack encoder compares to find deltas.
	packWindow = 10
)

// capabilities lists what the handler advertises for service; clients may ask for no more.
func capabilities(service string) *capability.List {
	caps := capability.NewList()
	if service == uploadPack {
		// multi_ack_detailed lets a stateless client carry the common commits it learnt
		// from one round of negotiation into the next, so fetches send only what is new.
		_ = caps.Add(capability.MultiACKDetailed)
		_ = caps.Add(capability.Sideband)
		_ = caps.Add(capability.Sideband64k)
	} else {
		_ = caps.Add(capability.ReportStatus)
		_ = caps.Add(capability.DeleteRefs)
		_ = caps.Add(capability.Sideband64k)
		// go-git indexes a received pack on its own, so the pack cannot lean on objects
		// the repository already has.
		_ = caps.Add("no-thin")
	}
	_ = caps.Add(capability.OFSDelta)
	_ = caps.Add(capability.Agent, agent)
	return caps
}

// checkCapabilities fails when the client asked for a capability that was not advertised.
func checkCapabilities(service string, requested *capability.List) error {
	advertised := capabilities(service)
	for _, c := range requested.All() {
		if !advertised.Supports(c) {
			return fmt.Errorf("capability %s was not advertised by %s", c, service)
		}
	}
	return nil
}

// advertise answers info/refs: the references of the repository and the capabilities.
func (h *handler) advertise(w http.ResponseWriter, name string, repo *git.Repository, service string) {
	ar := packp.NewAdvRefs()
	ar.Prefix = [][]byte{[]byte("# service=" + service), pktline.Flush}
	ar.Capabilities = capabilities(service)
	if err := addRefs(ar, repo, service == uploadPack); err != nil {
		h.refuse(w, name, fmt.Errorf("list references of %s: %w", name, err))
		return
	}
	var buf bytes.Buffer
	if err := ar.Encode(&buf); err != nil {
		h.refuse(w, name, fmt.Errorf("encode references of %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "application/x-"+service+"-advertisement")
	_, _ = w.Write(buf.Bytes())
}

// addRefs adds the references of repo to ar; for fetches also HEAD and the commits that
// annotated tags point to, as Git does.
func addRefs(ar *packp.AdvRefs, repo *git.Repository, fetch bool) error {
	refs, err := repo.Storer.IterReferences()
	if err != nil {
		return fmt.Errorf("iterate references: %w", err)
	}
	err = refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() != plumbing.HashReference || ref.Name() == plumbing.HEAD {
			return nil
		}
		ar.References[ref.Name().String()] = ref.Hash()
		if !fetch {
			return nil
		}
		peeled, err := peel(repo.Storer, ref.Hash())
		if err != nil {
			return fmt.Errorf("peel %s: %w", ref.Name(), err)
		}
		if peeled != ref.Hash() {
			ar.Peeled[ref.Name().String()] = peeled
		}
		return nil
	})
	if err != nil || !fetch {
		return err
	}

	head, err := repo.Storer.Reference(plumbing.HEAD)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read HEAD: %w", err)
	}
	if head.Type() == plumbing.SymbolicReference {
		target, ok := ar.References[head.Target().String()]
		if !ok {
			// An unborn branch: a clone of the empty repository checks out nothing.
			return nil
		}
		if err := ar.AddReference(head); err != nil {
			return fmt.Errorf("advertise HEAD: %w", err)
		}
		ar.Head = &target
		return nil
	}
	hash := head.Hash()
	ar.Head = &hash
	return nil
}

// peel follows annotated tags to the object they tag.
func peel(s storer.EncodedObjectStorer, h plumbing.Hash) (plumbing.Hash, error) {
	for {
		obj, err := s.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read object %s: %w", h, err)
		}
		if obj.Type() != plumbing.TagObject {
			return h, nil
		}
		tag, err := object.DecodeTag(s, obj)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("decode tag %s: %w", h, err)
		}
		h = tag.Target
	}
}

// fetchRequest is one stateless upload-pack request: the wants, and a batch of haves that
// ends the negotiation when done is set.
type fetchRequest struct {
	*packp.UploadRequest
	haves []plumbing.Hash
	done  bool
}

func decodeFetchRequest(body io.Reader) (*fetchRequest, error) {
	req := &fetchRequest{UploadRequest: packp.NewUploadRequest()}
	if err := req.Decode(body); err != nil {
		return nil, fmt.Errorf("decode wants: %w", err)
	}
	if err := checkCapabilities(uploadPack, req.Capabilities); err != nil {
		return nil, err
	}
	if len(req.Shallows) > 0 || !req.Depth.IsZero() {
		return nil, errors.New("shallow fetches are not supported: fetch without --depth, --shallow-since or --shallow-exclude")
	}
	scan := pktline.NewScanner(body)
	for scan.Scan() {
		line := bytes.TrimSuffix(scan.Bytes(), []byte("\n"))
		switch {
		case len(line) == 0:
			// A flush ends a batch of haves; the client waits for the answer after it.
		case string(line) == "done":
			req.done = true
			return req, nil
		case bytes.HasPrefix(line, []byte("have ")) && plumbing.IsHash(string(line[len("have "):])):
			req.haves = append(req.haves, plumbing.NewHash(string(line[len("have "):])))
		default:
			return nil, fmt.Errorf("unexpected line %q: expected have, done or a flush", line)
		}
	}
	if err := scan.Err(); err != nil {
		return nil, fmt.Errorf("read haves: %w", err)
	}
	return req, nil
}

// uploadPack answers one round of a stateless fetch: the acknowledgements of the haves
// and, once the client is done, the pack.
func (h *handler) uploadPack(w http.ResponseWriter, r *http.Request, name string, repo *git.Repository, body io.Reader) {
	req, err := decodeFetchRequest(body)
	if err != nil {
		h.badBody(w, err)
		return
	}

	var neg bytes.Buffer
	enc := pktline.NewEncoder(&neg)
	if err := checkWants(repo, req.Wants); err != nil {
		// Git shows ERR lines to the user; the status of the response it does not.
		_ = enc.Encodef("ERR upload-pack: %s\n", err)
		w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
		_, _ = w.Write(neg.Bytes())
		return
	}
	var common []plumbing.Hash
	for _, have := range req.haves {
		if repo.Storer.HasEncodedObject(have) == nil {
			common = append(common, have)
		}
	}
	// Without multi_ack_detailed, the first common commit ends the negotiation.
	detailed := req.Capabilities.Supports(capability.MultiACKDetailed)
	switch {
	case detailed:
		for _, c := range common {
			_ = enc.Encodef("ACK %s common\n", c)
		}
	case len(common) > 0:
		_ = enc.Encodef("ACK %s\n", common[0])
	}
	switch {
	case !req.done && (detailed || len(common) == 0):
		_ = enc.Encode([]byte("NAK\n"))
	case req.done && detailed && len(common) > 0:
		_ = enc.Encodef("ACK %s\n", common[len(common)-1])
	case req.done && len(common) == 0:
		_ = enc.Encode([]byte("NAK\n"))
	}

	var objects []plumbing.Hash
	if req.done {
		objects, err = revlist.Objects(repo.Storer, req.Wants, common)
		if err != nil {
			h.refuse(w, name, fmt.Errorf("list objects to send from %s: %w", name, err))
			return
		}
	}
	w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
	if _, err := w.Write(neg.Bytes()); err != nil || !req.done {
		return
	}

	s := newStream(w, req.Capabilities)
	// Batch the encoder's small writes into full side-band packets.
	buf := bufio.NewWriterSize(s, sideband.MaxPackedSize64k)
	pack := packfile.NewEncoder(buf, repo.Storer, !req.Capabilities.Supports(capability.OFSDelta))
	if _, err := pack.Encode(objects, packWindow); err != nil {
		h.cfg.Logger.Error("send pack", "repo", name, "err", err)
		s.fatal("berth could not send the pack, see the server's log")
		return
	}
	if err := buf.Flush(); err != nil {
		return
	}
	_ = s.end()
}

// checkWants fails unless every wanted object is the tip of a reference or a commit
// reachable from one, so that objects of rejected pushes cannot be fetched.
func checkWants(repo *git.Repository, wants []plumbing.Hash) error {
	var tips []plumbing.Hash
	allowed := map[plumbing.Hash]bool{}
	refs, err := repo.Storer.IterReferences()
	if err != nil {
		return fmt.Errorf("iterate references: %w", err)
	}
	err = refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() != plumbing.HashReference {
			return nil
		}
		tip, err := peel(repo.Storer, ref.Hash())
		if err != nil {
			return err
		}
		allowed[ref.Hash()], allowed[tip] = true, true
		tips = append(tips, tip)
		return nil
	})
	if err != nil {
		return fmt.Errorf("list references: %w", err)
	}
	missing := map[plumbing.Hash]bool{}
	for _, w := range wants {
		if !allowed[w] {
			missing[w] = true
		}
	}
	// Walk the history only when a client asks for more than the tips.
	for len(missing) > 0 && len(tips) > 0 {
		h := tips[len(tips)-1]
		tips = tips[:len(tips)-1]
		c, err := object.GetCommit(repo.Storer, h)
		if err != nil {
			// Tags of trees or blobs have no history to walk.
			continue
		}
		for _, p := range c.ParentHashes {
			if !allowed[p] {
				allowed[p] = true
				delete(missing, p)
				tips = append(tips, p)
			}
		}
	}
	for _, w := range wants {
		if missing[w] {
			return fmt.Errorf("not our ref %s", w)
		}
	}
	return nil
}
