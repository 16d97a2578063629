// Package webhook receives the push notifications of Git forges for berth's Git sources.
//
// A manager serves POST /v1/hooks/NAME, NAME being the source's name. [Parse] recognises
// the sender from its headers and authenticates the request with the source's webhook
// secret; [NewHandler] turns an authenticated push to the tracked branch into a sync
// request. Supported senders:
//
//   - GitHub: X-Hub-Signature-256: sha256=HEX(HMAC-SHA256(secret, body)), event in X-GitHub-Event;
//   - GitLab: X-Gitlab-Token: secret, event in X-Gitlab-Event;
//   - Gitea and Forgejo: X-Gitea-Signature / X-Forgejo-Signature: HEX(HMAC-SHA256(secret, body)),
//     event in X-Gitea-Event / X-Forgejo-Event;
//   - anything else (CI jobs, scripts): X-Berth-Signature-256: sha256=HEX(HMAC-SHA256(secret, body))
//     over an optional JSON body {"ref": "refs/heads/main", "after": "<commit id>"}.
//
// A delivery sent again (X-GitHub-Delivery, X-Gitlab-Event-UUID, X-Gitea-Delivery,
// X-Forgejo-Delivery or X-Berth-Delivery the same as before) is answered without a sync.
//
// JSON bodies and GitHub's and Gitea's form encoding (payload=JSON) are both accepted.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

var (
	// ErrNoSignature means the request carries none of the recognised signature headers.
	ErrNoSignature = errors.New("no webhook signature: set the webhook secret on the sender so " +
		"it sends X-Hub-Signature-256, X-Gitlab-Token, X-Gitea-Signature, X-Forgejo-Signature " +
		"or X-Berth-Signature-256")
	// ErrBadSignature means the signature or token does not match the secret, or the secret is empty.
	ErrBadSignature = errors.New("bad webhook signature")
	// ErrBadPayload means the body of an authenticated push event cannot be understood.
	ErrBadPayload = errors.New("bad webhook payload")
)

// Provider names the sender of a webhook.
type Provider string

// The senders Parse recognises.
const (
	GitHub  Provider = "github"
	GitLab  Provider = "gitlab"
	Gitea   Provider = "gitea"
	Forgejo Provider = "forgejo"
	Generic Provider = "generic"
)

// Kind classifies an event.
type Kind string

// The kinds of events. Tag pushes are pushes too: their Ref is under refs/tags/.
const (
	KindPush  Kind = "push"
	KindPing  Kind = "ping"
	KindOther Kind = "other"
)

// Event is an authenticated webhook request.
type Event struct {
	Provider Provider
	Kind     Kind
	// Type is the event name as the sender spelled it ("push", "Tag Push Hook", "pull_request").
	Type string
	// Ref is the full pushed ref (refs/heads/main); empty for a generic request that names none.
	Ref string
	// Revision is the commit the ref points to after the push, lowercase hex; may be empty.
	Revision string
	// Deleted is true when the push deleted Ref.
	Deleted bool
	// Delivery is the sender's id of this delivery, the same when it sends it again; may be empty.
	Delivery string
}

// Branch returns the branch name of a refs/heads/ ref, or "" for any other ref.
func (e *Event) Branch() string {
	branch, ok := strings.CutPrefix(e.Ref, "refs/heads/")
	if !ok {
		return ""
	}
	return branch
}

type scheme int

const (
	// hmacPrefixed is "sha256=" followed by the hex HMAC-SHA256 of the body.
	hmacPrefixed scheme = iota
	// hmacHex is the bare hex HMAC-SHA256 of the body.
	hmacHex
	// token is the secret itself.
	token
)

type sender struct {
	provider    Provider
	sigHeader   string
	scheme      scheme
	eventHeader string // "" when every request is a push
	// deliveryHeader names the delivery; a redelivery carries the same value.
	deliveryHeader string
	pushEvents     []string
	pingEvent      string
	// refRequired: the sender always names the ref of a push, so a push without one is malformed.
	refRequired bool
}

// senders are tried in order. Forgejo also sends Gitea's headers and both also send GitHub's,
// so the most specific comes first to report the right provider.
var senders = [...]sender{
	{Forgejo, "X-Forgejo-Signature", hmacHex, "X-Forgejo-Event", "X-Forgejo-Delivery", []string{"push"}, "", true},
	{Gitea, "X-Gitea-Signature", hmacHex, "X-Gitea-Event", "X-Gitea-Delivery", []string{"push"}, "", true},
	{GitHub, "X-Hub-Signature-256", hmacPrefixed, "X-GitHub-Event", "X-GitHub-Delivery", []string{"push"}, "ping", true},
	{GitLab, "X-Gitlab-Token", token, "X-Gitlab-Event", "X-Gitlab-Event-UUID", []string{"Push Hook", "Tag Push Hook"}, "", true},
	{Generic, "X-Berth-Signature-256", hmacPrefixed, "", "X-Berth-Delivery", nil, "", false},
}

// Parse recognises the sender of a webhook request from its headers, checks its signature
// against secret and decodes the push it reports. The signature is checked before the body
// is decoded, and an empty secret never matches. Errors wrap ErrNoSignature, ErrBadSignature
// or ErrBadPayload, and never quote the secret or the signature.
func Parse(h http.Header, body []byte, secret []byte) (*Event, error) {
	s, sig, ok := detect(h)
	if !ok {
		return nil, ErrNoSignature
	}
	if len(secret) == 0 {
		return nil, fmt.Errorf("%s: the source has no webhook secret, so no request is accepted: %w",
			s.provider, ErrBadSignature)
	}
	if !s.verify(sig, body, secret) {
		return nil, fmt.Errorf("%s: %s does not match the source's webhook secret; "+
			"set the same secret on the sender and on the source: %w", s.provider, s.sigHeader, ErrBadSignature)
	}

	ev := &Event{Provider: s.provider, Kind: KindPush, Type: "push", Delivery: h.Get(s.deliveryHeader)}
	if s.eventHeader != "" {
		ev.Type = h.Get(s.eventHeader)
		ev.Kind = s.kind(ev.Type)
	}
	if ev.Kind != KindPush {
		return ev, nil
	}
	if err := decodePush(ev, h, body, s.refRequired); err != nil {
		return nil, fmt.Errorf("%s %q event: %w", s.provider, ev.Type, err)
	}
	return ev, nil
}

// detect returns the first sender whose signature header is set, and that header's value.
func detect(h http.Header) (sender, string, bool) {
	for _, s := range senders {
		if sig := h.Get(s.sigHeader); sig != "" {
			return s, sig, true
		}
	}
	return sender{}, "", false
}

func (s sender) verify(sig string, body, secret []byte) bool {
	switch s.scheme {
	case token:
		// Comparing digests keeps the comparison constant time whatever the lengths.
		got := sha256.Sum256([]byte(sig))
		want := sha256.Sum256(secret)
		return hmac.Equal(got[:], want[:])
	case hmacPrefixed:
		hexSig, ok := strings.CutPrefix(sig, "sha256=")
		if !ok {
			return false
		}
		sig = hexSig
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

func (s sender) kind(event string) Kind {
	for _, p := range s.pushEvents {
		if event == p {
			return KindPush
		}
	}
	if s.pingEvent != "" && event == s.pingEvent {
		return KindPing
	}
	return KindOther
}

// pushPayload holds the fields berth reads from the push payloads of every sender.
type pushPayload struct {
	Ref     string `json:"ref"`
	After   string `json:"after"`
	Deleted bool   `json:"deleted"`
	// CheckoutSHA is GitLab's commit to check out; after is preferred when set.
	CheckoutSHA string `json:"checkout_sha"`
}

func decodePush(ev *Event, h http.Header, body []byte, refRequired bool) error {
	data, err := payloadJSON(h, body)
	if err != nil {
		return err
	}
	var p pushPayload
	if len(data) > 0 {
		if err := json.Unmarshal(data, &p); err != nil {
			return fmt.Errorf("decode JSON body: %w: %w", ErrBadPayload, err)
		}
	}
	if p.Ref == "" && refRequired {
		return fmt.Errorf("push without ref: %w", ErrBadPayload)
	}
	if p.Ref != "" && !strings.HasPrefix(p.Ref, "refs/") {
		return fmt.Errorf("ref %.100q: want a full ref such as refs/heads/main: %w", p.Ref, ErrBadPayload)
	}
	rev := p.After
	if rev == "" {
		rev = p.CheckoutSHA
	}
	if rev != "" && !isCommitID(rev) {
		return fmt.Errorf("after %.70q: want a commit id of 40 or 64 hex digits: %w", rev, ErrBadPayload)
	}
	ev.Ref = p.Ref
	ev.Revision = strings.ToLower(rev)
	// An all-zero "after" is how Git and every forge spell a deleted ref.
	ev.Deleted = p.Deleted || (rev != "" && strings.Trim(rev, "0") == "")
	if ev.Deleted {
		ev.Revision = ""
	}
	return nil
}

// payloadJSON returns the JSON document of the body, unwrapping the form encoding
// (payload=JSON) that GitHub and Gitea offer as an alternative content type.
func payloadJSON(h http.Header, body []byte) ([]byte, error) {
	ct := h.Get("Content-Type")
	if ct == "" {
		return body, nil
	}
	mediaType, _, err := mime.ParseMediaType(ct)
	if err != nil || mediaType != "application/x-www-form-urlencoded" {
		return body, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("decode form body: %w: %w", ErrBadPayload, err)
	}
	payload := form.Get("payload")
	if payload == "" {
		return nil, fmt.Errorf("form body without a payload field: %w", ErrBadPayload)
	}
	return []byte(payload), nil
}

func isCommitID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
