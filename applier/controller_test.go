package applier_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/applier"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/internal/gittest"
	"github.com/berthd/berth/internal/memcluster"
)

// newAppliedCluster is three managers in one process with the applier on the leader.
func newAppliedCluster(t *testing.T) *memcluster.Cluster {
	t.Helper()
	c, err := memcluster.New(memcluster.Options{Dir: t.TempDir(), Applier: &applier.Config{Dir: t.TempDir(), Debounce: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func compose(image string) string {
	return "services:\n  app:\n    image: " + image + "\n    deploy:\n      replicas: 2\n"
}

// eventually polls the leader's state until check passes.
func eventually(t *testing.T, c *memcluster.Cluster, what string, check func(tx *state.ReadTxn) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		m, err := c.Leader(ctx)
		if err != nil {
			break
		}
		if last = check(m.Store.State().ReadTxn()); last == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, last)
}

func sourceIs(name string, want func(*model.Source) error) func(*state.ReadTxn) error {
	return func(tx *state.ReadTxn) error {
		src, err := tx.Source(nil, name)
		if err != nil {
			return err
		}
		return want(src)
	}
}

func imageOf(tx *state.ReadTxn, service string) string {
	svc, err := tx.ServiceByName(nil, service)
	if err != nil {
		return err.Error()
	}
	return svc.Spec.Image
}

func requestSync(t *testing.T, c *memcluster.Cluster, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := c.Follower(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Control.UpdateSource(ctx, name, &api.SourceUpdateRequest{RequestSync: true}); err != nil {
		t.Fatal(err)
	}
}

func TestPullSourceAppliesRevisionsWholeAndPrunes(t *testing.T) {
	c := newAppliedCluster(t)
	repo := gittest.New(t)
	repo.Write(map[string]string{"stacks/web/compose.yaml": compose("nginx:1"), "stacks/db/compose.yaml": compose("postgres:16")})
	first := repo.Commit("two stacks").String()

	ctx := context.Background()
	m, err := c.Follower(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Control.AddSource(ctx, &api.SourceAddRequest{Source: &model.Source{
		Name: "infra", Kind: model.SourceGitPull, URL: "file://" + repo.Dir, Branch: "main", Path: "stacks", Prune: true}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, c, "first revision applied", func(tx *state.ReadTxn) error {
		src, err := tx.Source(nil, "infra")
		if err != nil {
			return err
		}
		if src.LastAppliedRevision != first || src.Status != model.SyncSynced {
			return fmt.Errorf("source %s at %q: %s", src.Status, src.LastAppliedRevision, src.Message)
		}
		if imageOf(tx, "web_app") != "nginx:1" || imageOf(tx, "db_app") != "postgres:16" {
			return fmt.Errorf("services: web %s, db %s", imageOf(tx, "web_app"), imageOf(tx, "db_app"))
		}
		return nil
	})

	// A revision that changes web and breaks db changes nothing at all.
	repo.Write(map[string]string{"stacks/web/compose.yaml": compose("nginx:2"), "stacks/db/compose.yaml": "services:\n  app:\n    deploy:\n      replicas: two\n"})
	broken := repo.Commit("break db").String()
	requestSync(t, c, "infra")
	eventually(t, c, "the broken revision refused", sourceIs("infra", func(src *model.Source) error {
		if src.Status != model.SyncFailed || src.LastFetchedRevision != broken {
			return fmt.Errorf("source %s, fetched %s", src.Status, src.LastFetchedRevision)
		}
		if !strings.Contains(src.Message, "db") || !strings.Contains(src.Message, "replicas") {
			return fmt.Errorf("the message does not name the stack and field: %q", src.Message)
		}
		return nil
	}))
	eventually(t, c, "the last good revision still applied", func(tx *state.ReadTxn) error {
		src, _ := tx.Source(nil, "infra")
		if got := imageOf(tx, "web_app"); got != "nginx:1" || src.LastAppliedRevision != first {
			return fmt.Errorf("web runs %s, applied %s", got, src.LastAppliedRevision)
		}
		return nil
	})

	// Fixed, with db gone: web rolls and db is pruned.
	repo.Write(map[string]string{"stacks/db/compose.yaml": ""})
	fixed := repo.Commit("drop db").String()
	requestSync(t, c, "infra")
	eventually(t, c, "the fixed revision applied and db pruned", func(tx *state.ReadTxn) error {
		src, _ := tx.Source(nil, "infra")
		if src.LastAppliedRevision != fixed || imageOf(tx, "web_app") != "nginx:2" {
			return fmt.Errorf("applied %s, web %s", src.LastAppliedRevision, imageOf(tx, "web_app"))
		}
		if _, err := tx.Stack(nil, "db"); err == nil {
			return fmt.Errorf("db is still there")
		}
		last := src.History[len(src.History)-1]
		if last.Result != model.SyncApplied || last.Plan.Changed != 1 || last.Plan.Removed != 1 {
			return fmt.Errorf("last record %+v", last)
		}
		return nil
	})

	// The leader changes: the new one continues from the applied revision, applying
	// nothing again, and follows the branch from there.
	src := mustSource(t, c, "infra")
	if _, err := c.TransferLeadership(ctx); err != nil {
		t.Fatal(err)
	}
	repo.Write(map[string]string{"stacks/web/compose.yaml": compose("nginx:3")})
	next := repo.Commit("web 3").String()
	requestSync(t, c, "infra")
	eventually(t, c, "the new leader applies the next revision", func(tx *state.ReadTxn) error {
		s, _ := tx.Source(nil, "infra")
		if s.LastAppliedRevision != next || imageOf(tx, "web_app") != "nginx:3" {
			return fmt.Errorf("applied %s, web %s", s.LastAppliedRevision, imageOf(tx, "web_app"))
		}
		return nil
	})
	// The new leader may apply next at its start or on the request (which is then
	// answered "unchanged"), but it never applies the old revision again.
	applied := 0
	for _, rec := range mustSource(t, c, "infra").History[len(src.History):] {
		if rec.Revision != next {
			t.Errorf("after the change of leader: a sync of %s (%s: %s), want only %s", rec.Revision, rec.Result, rec.Message, next)
		}
		if rec.Result == model.SyncApplied {
			applied++
		}
	}
	if applied != 1 {
		t.Errorf("after the change of leader, %s was applied %d times, want once", next, applied)
	}
}

func mustSource(t *testing.T, c *memcluster.Cluster, name string) *model.Source {
	t.Helper()
	m, err := c.Leader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	src, err := m.Store.State().ReadTxn().Source(nil, name)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestFolderSourceFollowsItsFiles(t *testing.T) {
	c := newAppliedCluster(t)
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		// As an editor saves: a temporary file renamed over the old one.
		tmp := p + "~"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
	write("web/compose.yaml", compose("nginx:1"))
	ctx := context.Background()
	m, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Control.AddSource(ctx, &api.SourceAddRequest{Source: &model.Source{Name: "local", Kind: model.SourceDir, URL: dir, Prune: true}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, c, "the folder applied", func(tx *state.ReadTxn) error {
		if got := imageOf(tx, "web_app"); got != "nginx:1" {
			return fmt.Errorf("web runs %s", got)
		}
		return nil
	})
	write("web/compose.yaml", compose("nginx:2"))
	eventually(t, c, "an edit applied without a sync request", func(tx *state.ReadTxn) error {
		src, _ := tx.Source(nil, "local")
		if got := imageOf(tx, "web_app"); got != "nginx:2" || src.Status != model.SyncSynced || !strings.HasPrefix(src.LastAppliedRevision, "dir:") {
			return fmt.Errorf("web runs %s; source %s at %s", got, src.Status, src.LastAppliedRevision)
		}
		return nil
	})
	stk := mustStack(t, c, "web")
	if stk.Source != "local" || stk.Spec.Services["app"].Deploy.Replicas == nil {
		t.Errorf("stack web: source %q, spec %+v", stk.Source, stk.Spec)
	}
}

func mustStack(t *testing.T, c *memcluster.Cluster, name string) *model.Stack {
	t.Helper()
	m, err := c.Leader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.Store.State().ReadTxn().Stack(nil, name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestNoPruneKeepsAndReportsAndRollbackPins(t *testing.T) {
	c := newAppliedCluster(t)
	repo := gittest.New(t)
	repo.Write(map[string]string{"web/compose.yaml": compose("nginx:1"), "db/compose.yaml": compose("postgres:16")})
	first := repo.Commit("two stacks").String()
	ctx := context.Background()
	m, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Control.AddSource(ctx, &api.SourceAddRequest{Source: &model.Source{
		Name: "apps", Kind: model.SourceGitPull, URL: "file://" + repo.Dir, Prune: false}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, c, "first revision", sourceIs("apps", func(src *model.Source) error {
		if src.LastAppliedRevision != first {
			return fmt.Errorf("applied %q: %s", src.LastAppliedRevision, src.Message)
		}
		return nil
	}))

	repo.Write(map[string]string{"db/compose.yaml": "", "web/compose.yaml": compose("nginx:2")})
	second := repo.Commit("drop db").String()
	requestSync(t, c, "apps")
	eventually(t, c, "db kept and reported", func(tx *state.ReadTxn) error {
		src, _ := tx.Source(nil, "apps")
		if src.LastAppliedRevision != second || !strings.Contains(src.Message, "db") {
			return fmt.Errorf("applied %s, message %q", src.LastAppliedRevision, src.Message)
		}
		if imageOf(tx, "db_app") != "postgres:16" {
			return fmt.Errorf("db: %s", imageOf(tx, "db_app"))
		}
		return nil
	})

	// Roll back to the first revision by short SHA: pinned, so a sync request alone
	// does not move it; `source sync` (which clears the pin) does.
	pin := first[:7]
	if _, err := m.Control.UpdateSource(ctx, "apps", &api.SourceUpdateRequest{Pin: &pin, RequestSync: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, c, "rolled back", func(tx *state.ReadTxn) error {
		src, _ := tx.Source(nil, "apps")
		if src.LastAppliedRevision != first || imageOf(tx, "web_app") != "nginx:1" {
			return fmt.Errorf("applied %s, web %s", src.LastAppliedRevision, imageOf(tx, "web_app"))
		}
		return nil
	})
	requestSync(t, c, "apps")
	eventually(t, c, "still pinned after a plain request", sourceIs("apps", func(src *model.Source) error {
		if src.AnsweredRequests < src.SyncRequests || src.LastAppliedRevision != first {
			return fmt.Errorf("answered %d of %d, applied %s", src.AnsweredRequests, src.SyncRequests, src.LastAppliedRevision)
		}
		return nil
	}))
	unpin := ""
	if _, err := m.Control.UpdateSource(ctx, "apps", &api.SourceUpdateRequest{Pin: &unpin, RequestSync: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, c, "following the branch again", sourceIs("apps", func(src *model.Source) error {
		if src.LastAppliedRevision != second || src.PinnedRevision != "" {
			return fmt.Errorf("applied %s, pinned %q", src.LastAppliedRevision, src.PinnedRevision)
		}
		return nil
	}))
}

// Drift is seen at the next sync, asked for or on the folder source's interval (no
// file changes), and reverted with self-heal.
func TestDriftIsReportedOrHealed(t *testing.T) {
	for _, tc := range []struct {
		selfHeal bool
		interval time.Duration // 0: a sync request
	}{{false, 0}, {true, 0}, {false, 100 * time.Millisecond}, {true, 100 * time.Millisecond}} {
		selfHeal := tc.selfHeal
		t.Run(fmt.Sprintf("self-heal=%v,interval=%s", selfHeal, tc.interval), func(t *testing.T) {
			ctx := context.Background()
			c, m := appliedDirSource(t, selfHeal, tc.interval)
			// Scaled by hand: drift, seen at the next sync.
			if _, err := m.Control.ScaleService(ctx, "web_app", 5); err != nil {
				t.Fatal(err)
			}
			if tc.interval == 0 {
				requestSync(t, c, "local")
			}
			replicas := func(tx *state.ReadTxn) uint64 {
				svc, err := tx.ServiceByName(nil, "web_app")
				if err != nil || svc.Spec.Deploy.Replicas == nil {
					return 0
				}
				return *svc.Spec.Deploy.Replicas
			}
			if !selfHeal {
				eventually(t, c, "out of sync, naming the field", func(tx *state.ReadTxn) error {
					src, _ := tx.Source(nil, "local")
					if src.Status != model.SyncOutOfSync || !strings.Contains(src.Message, ": service web_app: deploy.replicas is 5, Git says 2") {
						return fmt.Errorf("status %s: %q", src.Status, src.Message)
					}
					if got := replicas(tx); got != 5 {
						return fmt.Errorf("replicas %d: drift must stay without self-heal", got)
					}
					return nil
				})
				return
			}
			eventually(t, c, "healed", func(tx *state.ReadTxn) error {
				src, _ := tx.Source(nil, "local")
				if src.Status != model.SyncSynced || !strings.Contains(src.Message, "self-heal reverted changes made outside Git: service web_app: deploy.replicas is 5, Git says 2") || replicas(tx) != 2 {
					return fmt.Errorf("status %s, replicas %d: %q", src.Status, replicas(tx), src.Message)
				}
				return nil
			})
		})
	}
}

// addPullSource adds a pruning pull source of repo's main branch through the leader,
// and waits until it applied revision first; it returns the leader.
func addPullSource(t *testing.T, c *memcluster.Cluster, name string, repo *gittest.Repo, first string) *memcluster.Manager {
	t.Helper()
	ctx := context.Background()
	m, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Control.AddSource(ctx, &api.SourceAddRequest{Source: &model.Source{
		Name: name, Kind: model.SourceGitPull, URL: "file://" + repo.Dir, Branch: "main", Prune: true}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, c, "first revision applied", sourceIs(name, func(src *model.Source) error {
		if src.LastAppliedRevision != first {
			return fmt.Errorf("source %s at %q: %s", src.Status, src.LastAppliedRevision, src.Message)
		}
		return nil
	}))
	return m
}

// suspendedSource is a cluster of workers whose pull source infra applied its first
// revision (web: nginx:1) and was then suspended, and the applier config that previews
// it.
func suspendedSource(t *testing.T, workers ...string) (*memcluster.Manager, *gittest.Repo, string, applier.Config) {
	t.Helper()
	dir := t.TempDir()
	c, err := memcluster.New(memcluster.Options{Dir: t.TempDir(), Applier: &applier.Config{Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := context.Background()
	for _, id := range workers {
		if _, err := c.Apply(ctx, command.CmdNodeUpsert, memcluster.Node(id, nil)); err != nil {
			t.Fatal(err)
		}
	}
	repo := gittest.New(t)
	repo.Write(map[string]string{"web/compose.yaml": compose("nginx:1")})
	first := repo.Commit("web").String()
	m := addPullSource(t, c, "infra", repo, first)
	suspend := true
	if _, err := m.Control.UpdateSource(ctx, "infra", &api.SourceUpdateRequest{Suspended: &suspend}); err != nil {
		t.Fatal(err)
	}
	return m, repo, first, applier.Config{Cluster: memcluster.ApplierCluster{Store: m.Store, Control: m.Control}, Dir: dir}
}

// A preview of a suspended source shows what its next revision would do, and where the
// tasks would land, and changes nothing; --rev plans an older revision.
func TestPreviewSourceChangesNothing(t *testing.T) {
	ctx := context.Background()
	m, repo, first, cfg := suspendedSource(t, "w1", "w2")
	repo.Write(map[string]string{"web/compose.yaml": compose("nginx:2"),
		"api/compose.yaml": "services:\n  app:\n    image: api:1\n    deploy:\n      replicas: 1\n"})
	second := repo.Commit("web 2, api").String()

	got, err := applier.PreviewSource(ctx, cfg, "infra", "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != second || len(got.Diffs) != 2 || !got.Settled {
		t.Fatalf("preview of the tip: revision %s (want %s), %d stacks differ, settled %v", got.Revision, second, len(got.Diffs), got.Settled)
	}
	tasks := map[string]int{}
	for _, sp := range got.Placement {
		for _, tp := range sp.Tasks {
			if tp.Node == "" {
				t.Errorf("%s: a task without a node: %+v", sp.Service, tp)
			}
			tasks[sp.Service]++
		}
	}
	if tasks["api_app"] != 1 || tasks["web_app"] != 2 {
		t.Errorf("new tasks by service: %v, want api_app 1 and web_app 2 (replaced)", tasks)
	}
	tx := m.Store.State().ReadTxn()
	if src, _ := tx.Source(nil, "infra"); src.LastAppliedRevision != first || imageOf(tx, "web_app") != "nginx:1" || imageOf(tx, "api_app") == "api:1" {
		t.Fatalf("the preview changed the cluster: applied %s, web runs %s, api %s", src.LastAppliedRevision, imageOf(tx, "web_app"), imageOf(tx, "api_app"))
	}

	got, err = applier.PreviewSource(ctx, cfg, "infra", first[:8])
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != first || len(got.Diffs) != 0 || len(got.Placement) != 0 {
		t.Errorf("preview of the applied revision: revision %s, diffs %+v, placement %+v", got.Revision, got.Diffs, got.Placement)
	}
	if _, err := applier.PreviewSource(ctx, cfg, "infra", "no-such-rev"); !errors.Is(err, api.ErrBadRequest) || !strings.Contains(err.Error(), "no-such-rev") ||
		strings.Contains(err.Error(), "bad request") {
		t.Errorf("preview of a revision that does not exist: %v, want a bad request naming the revision", err)
	}
}

// A preview of the revision a source applied last places nothing when a service was
// scaled outside Git: a sync of it would only tell the drift. A self-healing source's
// sync reverts it, and its preview shows the tasks that stop.
func TestPreviewSourceOfTheAppliedRevision(t *testing.T) {
	ctx := context.Background()
	m, _, first, cfg := suspendedSource(t, "w1")
	if _, err := m.Control.ScaleService(ctx, "web_app", 4); err != nil {
		t.Fatal(err)
	}
	got, err := applier.PreviewSource(ctx, cfg, "infra", "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != first || len(got.Diffs) != 0 || len(got.Placement) != 0 || !got.Settled {
		t.Fatalf("preview of the applied revision after a scale: revision %s, diffs %+v, placement %+v, settled %v",
			got.Revision, got.Diffs, got.Placement, got.Settled)
	}

	heal := true
	if _, err := m.Control.UpdateSource(ctx, "infra", &api.SourceUpdateRequest{SelfHeal: &heal}); err != nil {
		t.Fatal(err)
	}
	if got, err = applier.PreviewSource(ctx, cfg, "infra", ""); err != nil {
		t.Fatal(err)
	}
	stops := 0
	for _, sp := range got.Placement {
		if sp.Service == "web_app" {
			stops += sp.Stopped
		}
	}
	if stops != 2 {
		t.Errorf("self-healing preview: %d web_app tasks stop, want the 2 the scale added: %+v", stops, got.Placement)
	}
}

// A preview of a source that is not, or of a revision of a push source nothing was
// pushed to, says what to do, in a sentence with no code name in it.
func TestPreviewSourceRefusalsSayWhatToDo(t *testing.T) {
	c, err := memcluster.New(memcluster.Options{Dir: t.TempDir(), Applier: &applier.Config{Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := context.Background()
	m, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Control.AddSource(ctx, &api.SourceAddRequest{Source: &model.Source{Name: "apps", Kind: model.SourceGitPush}}); err != nil {
		t.Fatal(err)
	}
	cfg := applier.Config{Cluster: memcluster.ApplierCluster{Store: m.Store, Control: m.Control}, Dir: t.TempDir()}
	for _, tt := range []struct {
		source, rev string
		sentinel    error
		want        string
	}{
		{"nosuch", "", api.ErrNotFound, "no such source: nosuch (berth source ls lists them)"},
		{"apps", "v1", api.ErrBadRequest, "source apps: nothing pushed yet: git push to it first (berth source remote apps sets up the remote)"},
	} {
		t.Run(tt.source, func(t *testing.T) {
			_, err := applier.PreviewSource(ctx, cfg, tt.source, tt.rev)
			if !errors.Is(err, tt.sentinel) || err.Error() != tt.want {
				t.Fatalf("err = %v\nwant %q, matching %v", err, tt.want, tt.sentinel)
			}
		})
	}
}

// A secret whose file changes in Git becomes a new version, and the services that
// mount it roll to it (their task hash changes).
func TestSourceSecretChangeRollsItsServices(t *testing.T) {
	c := newAppliedCluster(t)
	repo := gittest.New(t)
	const stack = "services:\n  app:\n    image: nginx:1\n    secrets: [token]\nsecrets:\n  token:\n    file: ./token.txt\n"
	repo.Write(map[string]string{"web/compose.yaml": stack, "web/token.txt": "one"})
	first := repo.Commit("web").String()
	addPullSource(t, c, "infra", repo, first)
	m, err := c.Leader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := m.Store.State().ReadTxn().ServiceByName(nil, "web_app")
	if err != nil {
		t.Fatal(err)
	}
	objects, hash := svc.Objects, orchestrator.TaskHash(svc)
	repo.Write(map[string]string{"web/token.txt": "two"})
	second := repo.Commit("new token").String()
	requestSync(t, c, "infra")
	eventually(t, c, "the new secret rolled", func(tx *state.ReadTxn) error {
		src, _ := tx.Source(nil, "infra")
		if src.LastAppliedRevision != second {
			return fmt.Errorf("applied %s", src.LastAppliedRevision)
		}
		svc, err := tx.ServiceByName(nil, "web_app")
		if err != nil {
			return err
		}
		if maps.Equal(svc.Objects, objects) || orchestrator.TaskHash(svc) == hash {
			return fmt.Errorf("web_app pins %v (was %v): its tasks would not roll", svc.Objects, objects)
		}
		var datas []string
		for v := uint64(1); ; v++ {
			s, err := tx.SecretVersion(nil, "web_token", v)
			if err != nil {
				break
			}
			datas = append(datas, string(s.Data))
		}
		if !slices.Equal(datas, []string{"one", "two"}) {
			return fmt.Errorf("versions of web_token hold %q", datas)
		}
		return nil
	})
}

// `berth diff --source` of a new commit, then `source sync`, and both at once: the
// preview and the source's syncer share its mirror (Config.Mirrors), and every sync
// applies the tip. The preview used to fetch through a handle of its own, and the
// sync then failed with "the repository has no commits" until the next commit.
func TestPreviewAndSyncShareTheMirror(t *testing.T) {
	dir := t.TempDir()
	mirrors := applier.NewMirrors()
	c, err := memcluster.New(memcluster.Options{Dir: t.TempDir(), Applier: &applier.Config{Dir: dir, Mirrors: mirrors}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := context.Background()
	repo := gittest.New(t)
	commit := func(image string) string {
		repo.Write(map[string]string{"web/compose.yaml": compose(image)})
		return repo.Commit(image).String()
	}
	m := addPullSource(t, c, "rp", repo, commit("nginx:1"))
	cfg := applier.Config{Cluster: memcluster.ApplierCluster{Store: m.Store, Control: m.Control}, Dir: filepath.Join(dir, m.ID), Mirrors: mirrors}
	applied := func(want string) {
		t.Helper()
		eventually(t, c, "synced to "+want, sourceIs("rp", func(src *model.Source) error {
			if src.AnsweredRequests < src.SyncRequests || src.LastAppliedRevision != want || src.Status != model.SyncSynced {
				return fmt.Errorf("answered %d of %d, %s at %s: %s", src.AnsweredRequests, src.SyncRequests, src.Status, src.LastAppliedRevision, src.Message)
			}
			return nil
		}))
	}

	second := commit("nginx:2")
	got, err := applier.PreviewSource(ctx, cfg, "rp", "")
	if err != nil || got.Revision != second || len(got.Diffs) != 1 {
		t.Fatalf("preview of the new commit: %+v, %v", got, err)
	}
	requestSync(t, c, "rp")
	applied(second)

	for i := 3; i <= 6; i++ {
		tip := commit(fmt.Sprintf("nginx:%d", i))
		done := make(chan error, 1)
		go func() {
			_, err := applier.PreviewSource(ctx, cfg, "rp", "")
			done <- err
		}()
		requestSync(t, c, "rp")
		if err := <-done; err != nil {
			t.Fatalf("preview during a sync: %v", err)
		}
		applied(tip)
	}
}

// `source rollback --to` a revision the repository does not have is refused with
// the revision, the URL and the branch named, and changes nothing: no pin, no sync
// request, new commits still followed. One that exists pins its commit.
func TestRollbackToUnknownRevisionChangesNothing(t *testing.T) {
	c := newAppliedCluster(t)
	repo := gittest.New(t)
	repo.Write(map[string]string{"web/compose.yaml": compose("nginx:1")})
	first := repo.Commit("web").String()
	m := addPullSource(t, c, "rp", repo, first)
	ctx := context.Background()
	before := mustSource(t, c, "rp")

	pin := "deadbeef"
	_, err := m.Control.UpdateSource(ctx, "rp", &api.SourceUpdateRequest{Pin: &pin, RequestSync: true})
	want := fmt.Sprintf(`revision "deadbeef" not found in file://%s branch main`, repo.Dir)
	if !errors.Is(err, api.ErrBadRequest) || !strings.Contains(err.Error(), want) {
		t.Fatalf("rollback to deadbeef: %v; want a bad request saying %s", err, want)
	}
	if after := mustSource(t, c, "rp"); after.PinnedRevision != "" || after.SyncRequests != before.SyncRequests || after.Status != before.Status {
		t.Fatalf("a refused rollback changed the source: pinned %q, %d sync requests (were %d), %s: %s",
			after.PinnedRevision, after.SyncRequests, before.SyncRequests, after.Status, after.Message)
	}

	repo.Write(map[string]string{"web/compose.yaml": compose("nginx:2")})
	second := repo.Commit("web 2").String()
	requestSync(t, c, "rp")
	eventually(t, c, "the next commit applied", sourceIs("rp", func(src *model.Source) error {
		if src.LastAppliedRevision != second {
			return fmt.Errorf("%s at %s: %s", src.Status, src.LastAppliedRevision, src.Message)
		}
		return nil
	}))

	pin = first[:7]
	if _, err := m.Control.UpdateSource(ctx, "rp", &api.SourceUpdateRequest{Pin: &pin, RequestSync: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, c, "rolled back, the commit pinned", sourceIs("rp", func(src *model.Source) error {
		if src.LastAppliedRevision != first || src.PinnedRevision != first {
			return fmt.Errorf("applied %s, pinned %q: %s", src.LastAppliedRevision, src.PinnedRevision, src.Message)
		}
		return nil
	}))
}
