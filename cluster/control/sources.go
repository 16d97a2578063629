package control

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// MinSourceInterval is the shortest polling interval a pull source may have: shorter
// would poll a Git server harder than any of them expects (webhooks are for speed).
const MinSourceInterval = 10 * time.Second

// SourceSecretLabel marks the cluster secrets that hold a source's credentials.
const SourceSecretLabel = "io.berth.source"

// AddSource creates a source, with its credentials as cluster secrets, in one raft
// command.
func (c *Control) AddSource(ctx context.Context, req *api.SourceAddRequest) (*api.WriteResponse, error) {
	if req.Source == nil {
		return nil, badRequest("no source given")
	}
	src := req.Source.Copy()
	if err := checkSource(src, req); err != nil {
		return nil, err
	}
	if err := checkSourceNotify(src, req.CommitStatusToken); err != nil {
		return nil, err
	}
	if err := c.sourceAddSettings(src, req); err != nil {
		return nil, err
	}
	cmd := &command.SourceAdd{Source: src}
	secret := func(suffix string, data []byte) string {
		sec := c.sourceSecret(src.Name, suffix, data)
		cmd.Secrets = append(cmd.Secrets, sec)
		return sec.Name
	}
	if src.CommitStatus != nil {
		src.CommitStatus.TokenRef = secret(commitStatusTokenSuffix, []byte(req.CommitStatusToken))
	}
	if req.Credentials != nil {
		data, err := json.Marshal(req.Credentials)
		if err != nil {
			return nil, err
		}
		src.AuthRef = secret("credentials", data)
	}
	if len(req.WebhookSecret) > 0 {
		src.WebhookSecretRef = secret("webhook", req.WebhookSecret)
	}
	if src.Kind == model.SourceGitPush {
		src.AuthRef = secret(pushTokenSuffix, newPushToken())
	}
	if err := addAgeKey(src, req.AgeKey, secret); err != nil {
		return nil, err
	}
	idx, err := c.apply(ctx, command.CmdSourceAdd, cmd)
	if err != nil {
		return nil, err
	}
	c.logger.Info("source added", "source", src.Name, "kind", src.Kind, "index", idx)
	return &api.WriteResponse{Index: idx}, nil
}

// checkSource validates and normalises what `source add` sent; the errors name the flag.
func checkSource(src *model.Source, req *api.SourceAddRequest) error {
	if err := checkSourceFields(src); err != nil {
		return err
	}
	if src.Path != "" {
		p := path.Clean(filepath.ToSlash(src.Path))
		if path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") {
			return badRequest("--path %q must be a folder inside the repository, relative to its root", src.Path)
		}
		src.Path = p
	}
	if src.Interval < 0 {
		return badRequest("--interval %s is negative", time.Duration(src.Interval))
	}
	switch src.Kind {
	case model.SourceGitPull:
		if src.URL == "" {
			return badRequest("source %s: --url is required for a Git source", src.Name)
		}
		if err := model.CheckGitURL(src.URL); err != nil {
			return badRequest("source %s: %v", src.Name, err)
		}
		if err := checkSourceCA(src); err != nil {
			return err
		}
		if u, err := url.Parse(src.URL); err == nil && u.User != nil {
			if _, hasPassword := u.User.Password(); hasPassword {
				return badRequest("source %s: the URL carries a password; give it with --token-file, so that it is stored as a secret", src.Name)
			}
		}
		if cr := req.Credentials; cr != nil {
			switch {
			case cr.Token != "" && len(cr.SSHKey) > 0:
				return badRequest("source %s: give --token-file or --ssh-key, not both", src.Name)
			case len(cr.SSHKey) > 0 && len(cr.KnownHosts) == 0:
				return badRequest("source %s: --ssh-key needs --known-hosts: berth always checks the server's host key", src.Name)
			}
		}
		if src.Branch == "" {
			src.Branch = "main"
		}
		if src.Interval != 0 && time.Duration(src.Interval) < MinSourceInterval {
			return badRequest("--interval %s is shorter than %s: use a webhook for faster syncs", time.Duration(src.Interval), MinSourceInterval)
		}
	case model.SourceDir:
		if !filepath.IsAbs(src.URL) {
			return badRequest("source %s: --dir %q must be an absolute path on the managers", src.Name, src.URL)
		}
		if req.Credentials != nil || len(req.WebhookSecret) > 0 {
			return badRequest("source %s: a folder source takes no credentials and no webhook secret", src.Name)
		}
	case model.SourceGitPush:
		if src.URL != "" || req.Credentials != nil {
			return badRequest("source %s: a push source has no URL and no credentials: the cluster is its remote", src.Name)
		}
		if src.Branch == "" {
			src.Branch = "main"
		}
	default:
		return badRequest("source %s: unknown kind %q: use --url, --dir or --push", src.Name, src.Kind)
	}
	if src.Kind != model.SourceGitPull && src.CA != "" {
		return badRequest("source %s is a %s source: --ca-file is for --url sources (https://)", src.Name, src.Kind)
	}
	src.Status, src.Message, src.History = "", "", nil
	src.LastAppliedRevision, src.LastFetchedRevision, src.PinnedRevision = "", "", ""
	src.SyncRequests, src.AnsweredRequests = 1, 0
	return nil
}

// maxSourceCA bounds a source's CA bundle, which every manager keeps in its row.
const maxSourceCA = 64 << 10

// checkSourceCA checks that a pull source's CA is certificates, for an https:// URL.
func checkSourceCA(src *model.Source) error {
	switch {
	case src.CA == "":
		return nil
	case !strings.HasPrefix(strings.ToLower(src.URL), "https://"):
		return badRequest("source %s: --ca-file is for https:// URLs; %s is not one", src.Name, src.URL)
	case len(src.CA) > maxSourceCA:
		return badRequest("source %s: --ca-file is %d bytes, over %d: give only the CA certificates the Git server's certificate needs", src.Name, len(src.CA), maxSourceCA)
	case !x509.NewCertPool().AppendCertsFromPEM([]byte(src.CA)):
		return badRequest("source %s: --ca-file holds no PEM certificate: give the CA's certificate (-----BEGIN CERTIFICATE-----)", src.Name)
	}
	return nil
}

// checkSourceFields checks the name and the free-text fields of a source, which end up
// in paths, Git commands and terminals.
func checkSourceFields(src *model.Source) error {
	if err := spec.CheckStackName("source", src.Name); err != nil {
		return badRequest("name: %v", err)
	}
	for _, f := range []struct {
		field, value string
		max          int
	}{
		{"url (--url, --dir)", src.URL, spec.MaxPathLength},
		{"branch (--branch)", src.Branch, spec.MaxRevisionLength},
		{"path (--path)", src.Path, spec.MaxPathLength},
	} {
		if err := spec.CheckText(f.field, f.value, f.max); err != nil {
			return badRequest("source %s: %v", src.Name, err)
		}
	}
	return nil
}

// Revisions finds a revision in a source's repository: the applier, which holds the
// repositories.
type Revisions interface {
	// ResolveRevision returns the commit SHA of rev, or an error wrapping
	// api.ErrBadRequest when the repository has no such revision.
	ResolveRevision(ctx context.Context, source, rev string) (string, error)
}

// UpdateSource suspends, resumes, pins or asks for a sync of a source. A pin
// (`source rollback`) is checked first: a revision that does not exist changes
// nothing.
func (c *Control) UpdateSource(ctx context.Context, name string, req *api.SourceUpdateRequest) (*api.WriteResponse, error) {
	if req.Pin != nil && *req.Pin != "" && c.raft != nil && !c.raft.IsLeader() {
		return c.rollbackOnLeader(ctx, name, req)
	}
	if req.Pin != nil {
		if err := spec.CheckText("pin (--to)", *req.Pin, spec.MaxRevisionLength); err != nil {
			return nil, badRequest("%v", err)
		}
	}
	if err := c.sourceUpdateSettings(req); err != nil {
		return nil, err
	}
	var settings *command.SourceSettings
	if req.ChangesSettings() {
		var err error
		if settings, err = c.checkSourceUpdate(name, req); err != nil {
			return nil, err
		}
	}
	idx, err := c.updateSource(ctx, name, req, settings)
	if errors.Is(err, state.ErrNotFound) {
		return nil, &notFoundError{"source", name}
	}
	if err != nil {
		return nil, err
	}
	if settings != nil {
		c.logger.Info("source updated", "source", name, "index", idx)
	}
	return &api.WriteResponse{Index: idx}, nil
}

// checkSourceUpdate checks the source `source update` would make as `source add`
// checks a new one, and returns its settings to write, normalised.
func (c *Control) checkSourceUpdate(name string, req *api.SourceUpdateRequest) (*command.SourceSettings, error) {
	cur, err := c.st.State().ReadTxn().Source(nil, name)
	if errors.Is(err, state.ErrNotFound) {
		return nil, &notFoundError{"source", name}
	}
	if err != nil {
		return nil, err
	}
	if cur.Kind == model.SourceGitPush && req.Branch != nil && *req.Branch != cur.Branch {
		return nil, badRequest("source %s is a push source: its branch, where pushes go, is chosen when it is added; remove it and add it again for another", name)
	}
	next := cur.Copy()
	for _, f := range []struct {
		dst *string
		v   *string
	}{{&next.CA, req.CA}, {&next.Branch, req.Branch}, {&next.Path, req.Path}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	if req.Interval != nil {
		next.Interval = *req.Interval
	}
	if err := checkSource(next, &api.SourceAddRequest{Source: next, Credentials: req.Credentials}); err != nil {
		return nil, err
	}
	s := &command.SourceSettings{Prune: req.Prune, SelfHeal: req.SelfHeal}
	if req.Branch != nil {
		s.Branch = &next.Branch
	}
	if req.Path != nil {
		s.Path = &next.Path
	}
	if req.Interval != nil {
		s.Interval = &next.Interval
	}
	if req.Notify != nil {
		if s.Notify, err = c.checkNotifyUpdate(cur, req.Notify); err != nil {
			return nil, err
		}
	}
	if req.Credentials != nil {
		data, err := json.Marshal(req.Credentials)
		if err != nil {
			return nil, err
		}
		secName := cur.AuthRef
		if secName == "" {
			secName = "source-" + name + "-credentials"
		}
		s.Credentials = &model.Secret{ID: c.newID(), Name: secName, Data: data, Labels: map[string]string{SourceSecretLabel: name}}
	}
	if err := c.updateAgeKey(cur, req, s); err != nil {
		return nil, err
	}
	return s, nil
}

// rollbackOnLeader sends a rollback to the leader, whose applier holds the
// repositories its revision is checked in.
func (c *Control) rollbackOnLeader(ctx context.Context, name string, req *api.SourceUpdateRequest) (*api.WriteResponse, error) {
	cl, err := c.LeaderClient("a rollback is checked on the leader")
	if err != nil {
		return nil, err
	}
	resp, err := cl.UpdateSource(ctx, name, req)
	if err != nil {
		return nil, err
	}
	// Who wrote through this manager reads the write here, as after any write.
	if err := c.waitApplied(ctx, resp.Index); err != nil {
		return nil, err
	}
	return resp, nil
}

func (c *Control) updateSource(ctx context.Context, name string, req *api.SourceUpdateRequest, settings *command.SourceSettings) (uint64, error) {
	pin := req.Pin
	if pin != nil && *pin != "" && c.revs != nil {
		sha, err := c.revs.ResolveRevision(ctx, name, *pin)
		if err != nil {
			return 0, err
		}
		// The commit, not what named it: a branch or HEAD~1 would move.
		pin = &sha
	}
	// New settings are synced at once: a branch or a path is only read by a sync, and
	// the loop only restarts its timer on one.
	cmd := &command.SourceUpdate{Name: name, Suspended: req.Suspended, Pin: pin, RequestSync: req.RequestSync || settings != nil,
		CA: req.CA, Settings: settings}
	return c.apply(ctx, command.CmdSourceUpdate, cmd)
}

// RemoveSource deletes a source and its credentials; with prune its stacks too.
func (c *Control) RemoveSource(ctx context.Context, name string, prune bool) (*api.WriteResponse, error) {
	idx, err := c.apply(ctx, command.CmdSourceRemove, &command.SourceRemove{Name: name, Prune: prune})
	if errors.Is(err, state.ErrNotFound) {
		return nil, &notFoundError{"source", name}
	}
	if err != nil {
		return nil, err
	}
	c.logger.Info("source removed", "source", name, "prune", prune, "index", idx)
	return &api.WriteResponse{Index: idx}, nil
}

// sourceTables are what a source's status depends on.
var sourceTables = []string{state.TableSources, state.TableStacks, state.TableServices, state.TableTasks, state.TableNodes}

// Sources lists the sources, by name.
func (c *Control) Sources(ctx context.Context, q api.Query) ([]*api.SourceInfo, api.QueryMeta, error) {
	var out []*api.SourceInfo
	idx, err := c.blocking(ctx, q, sourceTables, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
		out = nil
		srcs, err := tx.Sources(ws)
		if err != nil {
			return 0, err
		}
		allowed := c.allowedNodes(tx)
		for _, s := range srcs {
			info, err := sourceInfo(tx, ws, s, allowed)
			if err != nil {
				return 0, err
			}
			out = append(out, info)
		}
		return tx.Index(sourceTables...), nil
	})
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	return out, api.QueryMeta{Index: idx}, nil
}

// Source returns one source.
func (c *Control) Source(ctx context.Context, name string, q api.Query) (*api.SourceInfo, api.QueryMeta, error) {
	var out *api.SourceInfo
	idx, err := c.blocking(ctx, q, sourceTables, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
		s, err := tx.Source(ws, name)
		if errors.Is(err, state.ErrNotFound) {
			return 0, &notFoundError{"source", name}
		}
		if err != nil {
			return 0, err
		}
		if out, err = sourceInfo(tx, ws, s, c.allowedNodes(tx)); err != nil {
			return 0, err
		}
		return tx.Index(sourceTables...), nil
	})
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	return out, api.QueryMeta{Index: idx}, nil
}

// sourceInfo works out a source's status in one word: Suspended and Failed first,
// then Degraded while some services of its last revision cannot run (Reason says
// why), Progressing while they converge.
func sourceInfo(tx *state.ReadTxn, ws memdb.WatchSet, s *model.Source, allowed func(*model.Service) []string) (*api.SourceInfo, error) {
	if !s.PushPack.IsZero() {
		// The pushed objects are for the managers' repositories, not for clients.
		s = s.Copy()
		s.PushPack = model.Blob{}
	}
	if len(s.Notify) > 0 {
		s = s.Copy()
		s.SourceNotify = s.SourceNotify.Masked()
	}
	info := &api.SourceInfo{Source: s}
	stacks, err := tx.StacksBySource(ws, s.Name)
	if err != nil {
		return nil, err
	}
	converging := false
	var stuck []string
	for _, st := range stacks {
		info.Stacks = append(info.Stacks, st.Name)
		svcs, err := tx.ServicesByStack(ws, st.Name)
		if err != nil {
			return nil, err
		}
		for _, svc := range svcs {
			tasks, err := tx.TasksByService(ws, svc.ID)
			if err != nil {
				return nil, err
			}
			status := ServiceStatus(svc, tasks, allowed(svc))
			if api.ConvergenceOf(status, false) == api.Converging {
				converging = true
			}
			if status.Stuck() {
				stuck = append(stuck, svc.Name+": "+status.StuckReasons())
			}
		}
	}
	switch {
	case s.Suspended:
		info.Display = api.SourceSuspended
	case s.Status == model.SyncFailed:
		info.Display = api.SourceFailed
	case s.Status == model.SyncOutOfSync:
		info.Display = api.SourceOutOfSync
	case s.Status == model.SyncSynced && len(stuck) > 0:
		info.Display = api.SourceDegraded
		info.Reason = strings.Join(stuck, "; ")
	case s.Status == model.SyncSynced && converging:
		info.Display = api.SourceProgressing
	case s.Status == model.SyncSynced:
		info.Display = api.SourceSynced
	default:
		info.Display = api.SourcePending
	}
	return info, nil
}

// pushTokenSuffix names the secret holding a push source's token.
const pushTokenSuffix = "push-token"

// newPushToken is a push source's token: 32 random bytes, hex, usable as an HTTP
// basic-auth password.
func newPushToken() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return []byte(hex.EncodeToString(b))
}

// SourceToken returns a push source's token; rotate replaces it first (the old one
// stops working at once).
func (c *Control) SourceToken(ctx context.Context, name string, rotate bool) (string, error) {
	tx := c.st.State().ReadTxn()
	src, err := tx.Source(nil, name)
	if errors.Is(err, state.ErrNotFound) {
		return "", &notFoundError{"source", name}
	}
	if err != nil {
		return "", err
	}
	if src.Kind != model.SourceGitPush || src.AuthRef == "" {
		return "", badRequest("source %s is a %s source: only push sources (source add --push) have a token", name, src.Kind)
	}
	cur, err := tx.Secret(nil, src.AuthRef)
	if err != nil {
		return "", fmt.Errorf("source %s: its token: %w", name, err)
	}
	if !rotate {
		return string(cur.Data), nil
	}
	next := &model.Secret{ID: c.newID(), Name: cur.Name, Version: cur.Version + 1, Data: newPushToken(), Labels: cur.Labels}
	if _, err := c.apply(ctx, command.CmdSecretUpsert, next); err != nil {
		return "", err
	}
	c.logger.Info("push token rotated", "source", name)
	return string(next.Data), nil
}
