package applier

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

var (
	// ErrAuthFailed is wrapped by the errors of Fetch when the remote wants credentials
	// and got none, or refused those it got.
	ErrAuthFailed = errors.New("authentication failed")
	// ErrBranchNotFound is wrapped by the errors of Fetch when the remote has no branch
	// of that name.
	ErrBranchNotFound = errors.New("branch not found")
	// ErrHostKey is wrapped by the errors of Fetch when an SSH server's host key is not
	// in the known_hosts given, or differs from the one listed there.
	ErrHostKey = errors.New("SSH host key not trusted")
)

// DefaultTokenUser is the HTTPS user name sent with a token when Credentials give none.
// GitHub takes it for personal access tokens and app installation tokens; GitLab
// (personal, project and group access tokens) and Gitea/Forgejo take any user name
// with a token. Set Username for the hosts that want a particular one: "oauth2" for
// GitLab OAuth tokens, "x-token-auth" for Bitbucket access tokens.
const DefaultTokenUser = "x-access-token"

// Credentials for a remote. They are never logged nor put in errors.
type Credentials struct {
	// Username is the HTTPS basic-auth user sent with Token (DefaultTokenUser when
	// empty), or the SSH user (the URL's user when empty, else "git").
	Username string
	// Token is an HTTPS access token, sent as the basic-auth password.
	Token string
	// SSHKey is an unencrypted private key (PEM or OpenSSH format) for ssh:// and
	// scp-like (git@host:path) URLs.
	SSHKey []byte
	// KnownHosts is known_hosts content holding the SSH server's host key. It is
	// required with SSHKey: host keys are always checked.
	KnownHosts []byte
	// CABundle is PEM certificates an https:// remote's certificate is checked
	// against, besides the system's (a Git server with a private CA). It is no
	// secret; it travels with the credentials because it is also about reaching
	// the remote.
	CABundle []byte
}

// Mirror is a persistent bare repository that follows one branch of a remote, for
// git-pull sources: each Fetch brings only what changed since the last one.
//
// A directory should be used by one Mirror at a time (Mirrors sees to it): a Mirror
// caches the list of its pack files, and another one fetching into the directory
// makes it read the list again, which costs a read of every pack index.
type Mirror struct {
	dir string
	url string
	ep  *transport.Endpoint
	// repo reads the mirror. Fetch writes through a storer of its own, so that a
	// fetch abandoned on its context shares no in-memory state with later calls,
	// and then makes repo index the new pack files.
	repo *Repository
	// fetching holds a token while a Fetch runs, so that fetches do not overlap
	// and waiting for one is bounded by the caller's context.
	fetching chan struct{}
}

// OpenMirror opens the mirror at dir, or creates it (a bare repository, and dir
// itself when missing) for url. A url that differs from the mirror's remote
// replaces it; what was fetched stays, so an unchanged tip is not fetched again.
func OpenMirror(dir, url string) (*Mirror, error) {
	shown := redactURLs(url)
	if dir == "" {
		return nil, fmt.Errorf("open mirror of %s: empty directory: give the directory to keep the mirror in", shown)
	}
	if !isURL(url) {
		return nil, fmt.Errorf("open mirror: %q is not a Git URL: give an https://, ssh://, git@host:path, git:// or file:// URL", shown)
	}
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return nil, redact(fmt.Errorf("open mirror: URL %s: %w", shown, err), "")
	}
	repo, err := openBare(dir)
	if err != nil {
		return nil, fmt.Errorf("open mirror of %s: %w", shown, err)
	}
	if err := setOrigin(repo, url); err != nil {
		return nil, redact(fmt.Errorf("open mirror of %s in %s: %w", shown, dir, err), ep.Password)
	}
	return &Mirror{
		dir:      dir,
		url:      url,
		ep:       ep,
		repo:     WrapRepository(repo, shown),
		fetching: make(chan struct{}, 1),
	}, nil
}

func openBare(dir string) (*git.Repository, error) {
	repo, err := git.PlainOpen(dir)
	if !errors.Is(err, git.ErrRepositoryNotExists) {
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", dir, err)
		}
		return repo, nil
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s is neither empty nor a Git repository: remove it or choose another directory", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	repo, err = git.PlainInitWithOptions(dir, &git.PlainInitOptions{Bare: true})
	if err != nil {
		return nil, fmt.Errorf("create a bare repository in %s: %w", dir, err)
	}
	return repo, nil
}

// setOrigin points the remote "origin" at url. Fetch does not read it back (it
// uses the URL given to OpenMirror); it is there for whoever inspects the mirror
// with git.
func setOrigin(repo *git.Repository, url string) error {
	cfg, err := repo.Config()
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	origin, ok := cfg.Remotes[git.DefaultRemoteName]
	switch {
	case !ok:
		cfg.Remotes[git.DefaultRemoteName] = &config.RemoteConfig{Name: git.DefaultRemoteName, URLs: []string{url}}
	case slices.Equal(origin.URLs, []string{url}):
		return nil
	default:
		origin.URLs = []string{url}
	}
	if err := repo.SetConfig(cfg); err != nil {
		return fmt.Errorf("set the remote URL: %w", err)
	}
	return nil
}

// Repository reads the mirror: Resolve and TreeFS of the SHAs Fetch returned, or of
// origin/<branch>. It stays valid across fetches and is closed by Close.
func (m *Mirror) Repository() *Repository {
	return m.repo
}

// Close releases the mirror's files; its Repository must not be used afterwards.
func (m *Mirror) Close() error {
	return m.repo.Close()
}

// Fetch brings the tip of the remote's branch into the mirror and returns its full
// SHA. It lists the remote's references first and, when the tip is what the mirror
// already has, fetches nothing (fetched is false). Otherwise it fetches only that
// branch, into refs/remotes/origin/<branch>, without tags, and fetched is true.
//
// ctx bounds the call, including the wait for another Fetch of the mirror to end.
// go-git's SSH handshake takes no context, so Fetch returns when ctx ends and leaves
// a stalled handshake to end on its own (its dial is bounded by ctx's deadline); it
// cannot write to the mirror afterwards, since every step after it checks ctx.
func (m *Mirror) Fetch(ctx context.Context, branch string, cred *Credentials) (sha string, fetched bool, err error) {
	defer func() {
		if err != nil {
			err = redact(err, m.ep.Password, credToken(cred))
		}
	}()
	shown := redactURLs(m.url)
	if branch == "" {
		return "", false, fmt.Errorf("fetch %s: empty branch: give the branch to follow", shown)
	}
	if err := plumbing.NewBranchReferenceName(branch).Validate(); err != nil {
		return "", false, fmt.Errorf("fetch %s: branch %q: %w: give a branch name as git branch accepts it", shown, branch, err)
	}
	auth, err := m.auth(ctx, cred)
	if err != nil {
		return "", false, fmt.Errorf("fetch %s: %w", shown, err)
	}
	select {
	case m.fetching <- struct{}{}:
	case <-ctx.Done():
		return "", false, fmt.Errorf("fetch branch %s of %s: waiting for the previous fetch to end: %w", branch, shown, ctx.Err())
	}
	defer func() { <-m.fetching }()

	type result struct {
		sha     string
		fetched bool
		err     error
	}
	done := make(chan result, 1)
	go func() {
		sha, fetched, err := m.fetch(ctx, branch, auth, caBundle(cred))
		done <- result{sha, fetched, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		// A result that is ready wins over the end of ctx: the mirror has it.
		select {
		case res = <-done:
		default:
			res.err = ctx.Err()
		}
	}
	if res.err != nil {
		return "", false, m.fetchError(ctx, branch, cred, res.err)
	}
	return res.sha, res.fetched, nil
}

func (m *Mirror) fetch(ctx context.Context, branch string, auth transport.AuthMethod, ca []byte) (string, bool, error) {
	repo, err := git.PlainOpen(m.dir)
	if err != nil {
		return "", false, fmt.Errorf("open mirror %s: %w", m.dir, err)
	}
	if c, ok := repo.Storer.(io.Closer); ok {
		// The storer only wrote files that are complete by now: nothing to lose.
		defer func() { _ = c.Close() }()
	}
	remote := git.NewRemote(repo.Storer, &config.RemoteConfig{Name: git.DefaultRemoteName, URLs: []string{m.url}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: auth, CABundle: ca})
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return "", false, fmt.Errorf("%w: the remote repository is empty: push branch %s to it first", ErrBranchNotFound, branch)
	}
	if err != nil {
		return "", false, err
	}
	head := plumbing.NewBranchReferenceName(branch)
	var tip plumbing.Hash
	var branches []string
	for _, ref := range refs {
		if ref.Name() == head && ref.Type() == plumbing.HashReference {
			tip = ref.Hash()
		}
		if ref.Name().IsBranch() {
			branches = append(branches, ref.Name().Short())
		}
	}
	if tip.IsZero() {
		return "", false, branchNotFound(branch, branches)
	}

	tracking := plumbing.NewRemoteReferenceName(git.DefaultRemoteName, branch)
	if have, err := repo.Storer.Reference(tracking); err == nil && have.Hash() == tip {
		// Fetched already, maybe by another handle on the directory, whose pack
		// files the reading repository has not listed yet.
		if !m.has(tip) {
			m.reindex()
		}
		return tip.String(), false, nil
	}
	err = remote.FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{config.RefSpec("+" + head.String() + ":" + tracking.String())},
		Tags:     git.NoTags,
		Auth:     auth,
		CABundle: ca,
	})
	// Up to date: the remote's tip is a commit the mirror had already (a branch
	// reset to an older commit); the reference has moved all the same.
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return "", false, err
	}
	got, err := repo.Storer.Reference(tracking)
	if err != nil {
		return "", false, fmt.Errorf("read %s after the fetch: %w", tracking, err)
	}
	m.reindex()
	return got.Hash().String(), true, nil
}

// reindex makes the reading repository see the pack files the fetch wrote: go-git
// lists them once and caches the list.
func (m *Mirror) reindex() {
	m.repo.mu.Lock()
	defer m.repo.mu.Unlock()
	if s, ok := m.repo.repo.Storer.(interface{ Reindex() }); ok {
		s.Reindex()
	}
}

// has reports whether the reading repository sees the object h.
func (m *Mirror) has(h plumbing.Hash) bool {
	m.repo.mu.Lock()
	defer m.repo.mu.Unlock()
	return m.repo.repo.Storer.HasEncodedObject(h) == nil
}

// Mirrors hands out one Mirror per directory to whoever reads pull sources on a
// manager: the sources' syncers and the previews of `berth diff --source`. They
// share its fetch lock and its reading repository, so that what one fetches the
// other reads.
type Mirrors struct {
	mu   sync.Mutex
	open map[string]*sharedMirror // by directory
}

type sharedMirror struct {
	*Mirror
	users int
}

// NewMirrors returns an empty set of mirrors.
func NewMirrors() *Mirrors { return &Mirrors{open: map[string]*sharedMirror{}} }

// Open returns the mirror of url in dir, opened on first use, and the function that
// gives it back; the last user's release closes it. When url is not the open
// mirror's (the source's URL changed), the next users get a new Mirror and the old
// one closes once its users are done with it.
func (p *Mirrors) Open(dir, url string) (*Mirror, func(), error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sm := p.open[dir]
	if sm == nil || sm.url != url {
		m, err := OpenMirror(dir, url)
		if err != nil {
			return nil, nil, err
		}
		sm = &sharedMirror{Mirror: m}
		p.open[dir] = sm
	}
	sm.users++
	var once sync.Once
	return sm.Mirror, func() { once.Do(func() { p.release(dir, sm) }) }, nil
}

func (p *Mirrors) release(dir string, sm *sharedMirror) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sm.users--; sm.users > 0 {
		return
	}
	if p.open[dir] == sm {
		delete(p.open, dir)
	}
	_ = sm.Close()
}

func branchNotFound(branch string, branches []string) error {
	if len(branches) == 0 {
		return fmt.Errorf("%w: the remote has no branch %q, nor any other branch: push it first", ErrBranchNotFound, branch)
	}
	slices.Sort(branches)
	const limit = 10
	list := strings.Join(branches[:min(len(branches), limit)], ", ")
	if len(branches) > limit {
		list += fmt.Sprintf(", ... (%d more)", len(branches)-limit)
	}
	return fmt.Errorf("%w: the remote has no branch %q; its branches: %s (check the branch name)", ErrBranchNotFound, branch, list)
}

// fetchError names what failed and how to fix it, wrapping the sentinel errors.
func (m *Mirror) fetchError(ctx context.Context, branch string, cred *Credentials, err error) error {
	where := fmt.Sprintf("fetch branch %s of %s", branch, redactURLs(m.url))
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case errors.Is(err, ErrBranchNotFound):
		return fmt.Errorf("%s: %w", where, err)
	case ctx.Err() != nil:
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%s: %w: the remote did not answer in time (check that it is reachable from this node)", where, ctx.Err())
		}
		return fmt.Errorf("%s: %w", where, ctx.Err())
	case errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		strings.Contains(err.Error(), "ssh: unable to authenticate"):
		return fmt.Errorf("%s: %w: %s (the remote said: %s)", where, ErrAuthFailed, m.authHint(cred), oneLine(err))
	case errors.As(err, &keyErr) && len(keyErr.Want) == 0,
		strings.Contains(err.Error(), "no common algorithm for host key"):
		return fmt.Errorf("%s: %w: the host key of %s is not in the known_hosts given: add the host to --known-hosts (ssh-keyscan%s %s prints its keys; check them with the host's owner)",
			where, ErrHostKey, m.ep.Host, m.keyscanPort(), m.ep.Host)
	case errors.As(err, &keyErr):
		return fmt.Errorf("%s: %w: the host key of %s differs from the one in --known-hosts: either the host changed its key or someone is intercepting the connection; check with the host's owner, then update --known-hosts",
			where, ErrHostKey, m.ep.Host)
	case errors.As(err, &revoked):
		return fmt.Errorf("%s: %w: the host key of %s is marked revoked in --known-hosts", where, ErrHostKey, m.ep.Host)
	case errors.As(err, new(x509.UnknownAuthorityError)):
		return fmt.Errorf("%s: the server's certificate is signed by a CA this node does not trust: give that CA's certificate (PEM) with --ca-file (the remote said: %s)", where, oneLine(err))
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fmt.Errorf("%s: no repository there: check the URL; hosts also answer this for a private repository the credentials cannot read (the remote said: %s)", where, oneLine(err))
	}
	return fmt.Errorf("%s: %w (check the URL and that the remote is reachable from this node)", where, err)
}

// oneLine shortens an error that may quote a whole HTTP response body (an HTML
// page, from some proxies) to one line.
func oneLine(err error) string {
	const limit = 200
	s := strings.Join(strings.Fields(err.Error()), " ")
	if r := []rune(s); len(r) > limit {
		return string(r[:limit]) + "..."
	}
	return s
}

func (m *Mirror) authHint(cred *Credentials) string {
	switch {
	case m.ep.Protocol == "ssh":
		return "the remote refused the SSH key: check --ssh-key and that the key's public half is allowed to read the repository (a deploy key, for instance)"
	case credToken(cred) == "":
		return "the remote wants credentials: give a token that can read the repository with --token-file"
	}
	return "the remote refused the token: check --token-file (the token may be expired, revoked or lack read access to the repository)"
}

func (m *Mirror) keyscanPort() string {
	if m.ep.Port <= 0 || m.ep.Port == gitssh.DefaultPort {
		return ""
	}
	return " -p " + strconv.Itoa(m.ep.Port)
}

func caBundle(cred *Credentials) []byte {
	if cred == nil {
		return nil
	}
	return cred.CABundle
}

func credToken(cred *Credentials) string {
	if cred == nil {
		return ""
	}
	return cred.Token
}

// auth turns the credentials into go-git's for the mirror's URL, refusing those
// that do not fit its scheme rather than ignoring them.
func (m *Mirror) auth(ctx context.Context, cred *Credentials) (transport.AuthMethod, error) {
	var c Credentials
	if cred != nil {
		c = *cred
	}
	hasSSH := len(c.SSHKey) > 0 || len(c.KnownHosts) > 0
	if len(c.CABundle) > 0 && m.ep.Protocol != "https" {
		return nil, errors.New("a CA (--ca-file) is for https:// URLs: drop it, or give the https:// URL of the repository")
	}
	switch m.ep.Protocol {
	case "http", "https":
		switch {
		case hasSSH:
			return nil, errors.New("an SSH key and known_hosts are for ssh:// and git@host:path URLs: give a token (--token-file) for an HTTPS URL")
		case c.Token == "" && c.Username != "":
			return nil, fmt.Errorf("user %q given without a token: give the token with --token-file", c.Username)
		case c.Token == "":
			return nil, nil
		}
		user := c.Username
		if user == "" {
			user = DefaultTokenUser
		}
		return &githttp.BasicAuth{Username: user, Password: c.Token}, nil
	case "ssh":
		switch {
		case c.Token != "":
			return nil, errors.New("a token is for https:// URLs: give an SSH key (--ssh-key) for an SSH URL")
		case len(c.SSHKey) == 0:
			return nil, errors.New("an SSH URL needs a private key (--ssh-key) and the host's key (--known-hosts)")
		case len(c.KnownHosts) == 0:
			return nil, errors.New("host keys are always checked: give the host's known_hosts line with --known-hosts (ssh-keyscan prints it; check it with the host's owner)")
		}
		user := c.Username
		if user == "" {
			user = m.ep.User
		}
		if user == "" {
			user = "git"
		}
		keys, err := gitssh.NewPublicKeys(user, c.SSHKey, "")
		if err != nil {
			return nil, fmt.Errorf("read the SSH key: %w (give an unencrypted private key in PEM or OpenSSH format with --ssh-key)", err)
		}
		check, algorithms, err := m.hostKeyCheck(c.KnownHosts)
		if err != nil {
			return nil, err
		}
		keys.HostKeyCallback = check
		a := &sshAuth{PublicKeys: keys, algorithms: algorithms}
		if deadline, ok := ctx.Deadline(); ok {
			a.timeout = time.Until(deadline)
		}
		return a, nil
	}
	if c.Token != "" || c.Username != "" || hasSSH {
		return nil, fmt.Errorf("%s:// URLs take no credentials: remove the token and SSH key, or use an https:// or ssh:// URL", m.ep.Protocol)
	}
	return nil, nil
}

// hostKeyCheck builds the host key callback from known_hosts content, and the host
// key algorithms known_hosts lists for the mirror's host.
func (m *Mirror) hostKeyCheck(knownHosts []byte) (ssh.HostKeyCallback, []string, error) {
	// knownhosts parses files only; the file lives in the mirror (0600, as
	// CreateTemp makes it) for the time of the parse.
	f, err := os.CreateTemp(m.dir, "known_hosts-*")
	if err != nil {
		return nil, nil, fmt.Errorf("write known_hosts: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }()
	_, err = f.Write(knownHosts)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, fmt.Errorf("write known_hosts: %w", err)
	}
	check, err := knownhosts.New(f.Name())
	if err != nil {
		return nil, nil, fmt.Errorf("parse --known-hosts: %w", err)
	}
	port := m.ep.Port
	if port <= 0 {
		port = gitssh.DefaultPort
	}
	return check, hostKeyAlgorithms(check, net.JoinHostPort(m.ep.Host, strconv.Itoa(port))), nil
}

// hostKeyAlgorithms lists the algorithms of the keys check knows for hostport, to
// offer the server only those: by default a server with an RSA and an ed25519 key
// would show the ed25519 one, and fail as a mismatch when known_hosts lists only
// the RSA key. The keys come from checking a key nobody has, which fails listing
// the keys known for the host. Nil (the defaults) when the host is unknown, which
// fails in the handshake as it should.
func hostKeyAlgorithms(check ssh.HostKeyCallback, hostport string) []string {
	probe, err := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	if err != nil {
		return nil
	}
	var keyErr *knownhosts.KeyError
	if !errors.As(check(hostport, &net.TCPAddr{}, probe), &keyErr) {
		return nil
	}
	var algorithms []string
	for _, k := range keyErr.Want {
		names := []string{k.Key.Type()}
		if k.Key.Type() == ssh.KeyAlgoRSA {
			names = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		for _, name := range names {
			if !slices.Contains(algorithms, name) {
				algorithms = append(algorithms, name)
			}
		}
	}
	return algorithms
}

// sshAuth adds to go-git's public key auth the host key algorithms and a dial
// timeout, which go-git leaves to the ssh.ClientConfig.
type sshAuth struct {
	*gitssh.PublicKeys
	algorithms []string
	timeout    time.Duration
}

func (a *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	cfg, err := a.PublicKeys.ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.HostKeyAlgorithms = a.algorithms
	if a.timeout > 0 {
		cfg.Timeout = a.timeout
	}
	return cfg, nil
}

// userInfo matches the scheme and the user info of a URL.
var userInfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*)://([^/@\s]*)@`)

// redactURLs removes the user info of every URL in s, since a password or even a
// user name (GitHub takes https://TOKEN@github.com/...) may be a token. Only an
// SSH user name alone stays: it is never a secret and often needed (git@).
func redactURLs(s string) string {
	return userInfo.ReplaceAllStringFunc(s, func(match string) string {
		sub := userInfo.FindStringSubmatch(match)
		scheme, user := strings.ToLower(sub[1]), sub[2]
		if strings.Contains(scheme, "ssh") && !strings.Contains(user, ":") {
			return match
		}
		return sub[1] + "://"
	})
}

// redactedError shows err's text without secrets and still wraps err, for errors.Is.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact hides secrets and the credentials of URLs in err's text, which may quote
// what go-git or net/url were given.
func redact(err error, secrets ...string) error {
	msg := redactURLs(err.Error())
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "***")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}
