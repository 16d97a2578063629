package ca

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMutualTLSHandshake(t *testing.T) {
	root := mustRoot(t, "c1")
	mgr := mustNode(t, root, "m1", RoleManager, 0, "127.0.0.1")
	wrk := mustNode(t, root, "w1", RoleWorker, 0)

	addr, res := serveOnce(t, ServerTLSConfig(root.Cert(), mgr.tls))
	if err := roundTrip(addr, ClientTLSConfig(root.Cert(), wrk.tls, ManagerServerName)); err != nil {
		t.Fatalf("client: %v", err)
	}
	r := wait(t, res)
	if r.handshakeErr != nil {
		t.Fatalf("server: %v", r.handshakeErr)
	}
	if r.state.Version != tls.VersionTLS13 {
		t.Fatalf("TLS version %x, want 1.3", r.state.Version)
	}
	id, err := RequireConnIdentity(r.state, "c1")
	if err != nil || id != (Identity{NodeID: "w1", Role: RoleWorker, ClusterID: "c1"}) {
		t.Fatalf("server sees %+v, %v", id, err)
	}
	if _, err := RequireConnIdentity(r.state, "c1", RoleManager); !errors.Is(err, ErrForbidden) {
		t.Fatalf("worker on a manager-only path: err = %v, want ErrForbidden", err)
	}

	// The advertise address works as a server name too.
	addr, res = serveOnce(t, ServerTLSConfig(root.Cert(), mgr.tls))
	if err := roundTrip(addr, ClientTLSConfig(root.Cert(), wrk.tls, "127.0.0.1")); err != nil {
		t.Fatalf("client by IP: %v", err)
	}
	wait(t, res)
}

func TestMutualTLSRejects(t *testing.T) {
	root, other := mustRoot(t, "c1"), mustRoot(t, "c2")
	sameIDOther := mustRoot(t, "c1") // another CA that claims the same cluster ID
	mgr := mustNode(t, root, "m1", RoleManager, 0)
	wrk := mustNode(t, root, "w1", RoleWorker, 0)

	for _, tc := range []struct {
		name      string
		server    node
		opts      []TLSOption
		client    *tls.Config
		serverErr bool // the server's handshake must fail too
	}{
		{"client without certificate", mgr, nil,
			ClientTLSConfig(root.Cert(), tls.Certificate{}, ManagerServerName), true},
		{"client certificate of another cluster's CA", mgr, nil,
			ClientTLSConfig(root.Cert(), mustNode(t, other, "x", RoleManager, 0).tls, ManagerServerName), true},
		{"client certificate of another CA with the same cluster ID", mgr, nil,
			ClientTLSConfig(root.Cert(), mustNode(t, sameIDOther, "x", RoleManager, 0).tls, ManagerServerName), true},
		{"foreign certificate forced on a server with optional client certificates", mgr, []TLSOption{WithOptionalClientCert()},
			forceClientCert(ClientTLSConfig(root.Cert(), tls.Certificate{}, ManagerServerName), mustNode(t, other, "x", RoleManager, 0).tls), true},
		{"foreign certificate forced on a strict server", mgr, nil,
			forceClientCert(ClientTLSConfig(root.Cert(), tls.Certificate{}, ManagerServerName), mustNode(t, sameIDOther, "x", RoleManager, 0).tls), true},
		{"client that trusts another CA", mgr, nil,
			ClientTLSConfig(other.Cert(), wrk.tls, ManagerServerName), true},
		{"worker posing as a manager", wrk, nil,
			ClientTLSConfig(root.Cert(), mgr.tls, ManagerServerName), true},
		{"TLS 1.2 client", mgr, nil, func() *tls.Config {
			c := ClientTLSConfig(root.Cert(), wrk.tls, ManagerServerName)
			c.MinVersion, c.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
			return c
		}(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, res := serveOnce(t, ServerTLSConfig(root.Cert(), tc.server.tls, tc.opts...))
			if err := roundTrip(addr, tc.client); err == nil {
				t.Fatal("client succeeded")
			}
			r := wait(t, res)
			if tc.serverErr && r.handshakeErr == nil {
				t.Fatal("server handshake succeeded")
			}
			if len(r.received) != 0 {
				t.Fatalf("server received %q", r.received)
			}
		})
	}
}

// forceClientCert makes the client send cert whatever CAs the server says it
// accepts (crypto/tls otherwise quietly sends none), as an attacker would.
func forceClientCert(cfg *tls.Config, cert tls.Certificate) *tls.Config {
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	return cfg
}

// With optional client certificates, crypto/tls on the client side does not
// even send a certificate of a CA the server did not list: the connection
// is up, but without an identity, so RequireConnIdentity refuses it.
func TestOptionalClientCertForeignCertIsNoIdentity(t *testing.T) {
	root, other := mustRoot(t, "c1"), mustRoot(t, "c1")
	mgr := mustNode(t, root, "m1", RoleManager, 0)
	foreign := mustNode(t, other, "m1", RoleManager, 0)
	addr, res := serveOnce(t, ServerTLSConfig(root.Cert(), mgr.tls, WithOptionalClientCert()))
	_ = roundTrip(addr, ClientTLSConfig(root.Cert(), foreign.tls, ManagerServerName))
	r := wait(t, res)
	if r.handshakeErr != nil {
		return // refused outright: fine too
	}
	if _, err := RequireConnIdentity(r.state, "c1"); !errors.Is(err, ErrNoClientCert) {
		t.Fatalf("err = %v, want ErrNoClientCert", err)
	}
}

// The manager port as the API will run it: optional client certificates at
// the TLS layer, RequireIdentity in every handler but join.
func TestRequireIdentityHTTP(t *testing.T) {
	root := mustRoot(t, "c1")
	mgr := mustNode(t, root, "m1", RoleManager, 0)
	wrk := mustNode(t, root, "w1", RoleWorker, 0)

	mux := http.NewServeMux()
	mux.HandleFunc("/join", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "join ok") })
	guard := func(roles ...Role) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			id, err := RequireIdentity(r, "c1", roles...)
			switch {
			case errors.Is(err, ErrNoClientCert):
				http.Error(w, err.Error(), http.StatusUnauthorized)
			case err != nil:
				http.Error(w, err.Error(), http.StatusForbidden)
			default:
				fmt.Fprintf(w, "%s %s", id.Role, id.NodeID)
			}
		}
	}
	mux.HandleFunc("/tasks", guard())
	mux.HandleFunc("/raft/add", guard(RoleManager))

	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = ServerTLSConfig(root.Cert(), mgr.tls, WithOptionalClientCert())
	srv.StartTLS()
	defer srv.Close()

	get := func(cert tls.Certificate, path string) (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: ClientTLSConfig(root.Cert(), cert, ManagerServerName),
		}}
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	none := tls.Certificate{}
	for _, tc := range []struct {
		cert tls.Certificate
		path string
		code int
		body string
	}{
		{none, "/join", 200, "join ok"},
		{none, "/tasks", 401, ErrNoClientCert.Error()},
		{wrk.tls, "/tasks", 200, "worker w1"},
		{wrk.tls, "/raft/add", 403, "permission denied: node w1 is a worker, this needs a manager"},
		{mgr.tls, "/raft/add", 200, "manager m1"},
	} {
		code, body := get(tc.cert, tc.path)
		if code != tc.code || body != tc.body {
			t.Errorf("%s: %d %q, want %d %q", tc.path, code, body, tc.code, tc.body)
		}
	}

	// No TLS at all (what a unix socket request looks like) is not an identity.
	if _, err := RequireIdentity(httptest.NewRequest("GET", "/tasks", nil), "c1"); !errors.Is(err, ErrNoClientCert) {
		t.Fatalf("plain request: %v", err)
	}
}

func TestFetchAndVerifyCA(t *testing.T) {
	root := mustRoot(t, "c1")
	mgr := mustNode(t, root, "m1", RoleManager, 0)
	serverCfg := ServerTLSConfig(root.Cert(), mgr.tls, WithOptionalClientCert())
	ctx := context.Background()

	t.Run("right digest", func(t *testing.T) {
		addr, res := serveOnce(t, serverCfg)
		ca, err := FetchAndVerifyCA(ctx, addr, root.Digest())
		if err != nil {
			t.Fatal(err)
		}
		if !ca.Equal(root.Cert()) {
			t.Fatal("returned another certificate")
		}
		r := wait(t, res)
		if r.handshakeErr != nil || len(r.received) != 0 {
			t.Fatalf("server: %v, received %q", r.handshakeErr, r.received)
		}
		// The pinned CA is then enough to talk to the manager without a
		// client certificate; the recorder sees that request.
		addr, res = serveOnce(t, serverCfg)
		if err := roundTrip(addr, ClientTLSConfig(ca, tls.Certificate{}, ManagerServerName)); err != nil {
			t.Fatal(err)
		}
		if r := wait(t, res); string(r.received) != "hello" {
			t.Fatalf("server received %q, want hello", r.received)
		}
	})

	t.Run("wrong digest sends nothing", func(t *testing.T) {
		wrong := mustRoot(t, "c1").Digest()
		addr, res := serveOnce(t, serverCfg)
		_, err := FetchAndVerifyCA(ctx, addr, wrong)
		if !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("err = %v, want ErrDigestMismatch", err)
		}
		want := fmt.Sprintf("the manager at %s presented a CA with digest %s, the token expects %s: a token of another cluster, one from before its root CA was rotated (`berth join-token` on a manager prints the current one), or a man in the middle",
			addr, root.Digest(), wrong)
		if err.Error() != want {
			t.Fatalf("error:\n%s\nwant:\n%s", err, want)
		}
		r := wait(t, res)
		if r.handshakeErr == nil {
			t.Fatal("the client completed the handshake with an unpinned CA")
		}
		if len(r.received) != 0 {
			t.Fatalf("server received %q", r.received)
		}
	})

	t.Run("worker of the right cluster", func(t *testing.T) {
		wrk := mustNode(t, root, "w1", RoleWorker, 0)
		addr, res := serveOnce(t, ServerTLSConfig(root.Cert(), wrk.tls, WithOptionalClientCert()))
		if _, err := FetchAndVerifyCA(ctx, addr, root.Digest()); !errors.Is(err, ErrForbidden) {
			t.Fatalf("err = %v, want ErrForbidden", err)
		}
		wait(t, res)
	})

	t.Run("right CA presented with a leaf of another CA", func(t *testing.T) {
		// A man in the middle can copy the public CA certificate but not
		// get a leaf signed by it.
		mitm := mustNode(t, mustRoot(t, "c1"), "m1", RoleManager, 0)
		cfg := ServerTLSConfig(root.Cert(), mitm.tls, WithOptionalClientCert())
		addr, res := serveOnce(t, cfg)
		if _, err := FetchAndVerifyCA(ctx, addr, root.Digest()); !errors.Is(err, ErrInvalidCert) {
			t.Fatalf("err = %v, want ErrInvalidCert", err)
		}
		wait(t, res)
	})

	t.Run("malformed digest", func(t *testing.T) {
		if _, err := FetchAndVerifyCA(ctx, "127.0.0.1:1", "xyz"); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := FetchAndVerifyCA(cctx, "127.0.0.1:1", root.Digest()); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

// Expiry at the TLS layer with injected clocks on both ends.
func TestHandshakeExpiry(t *testing.T) {
	t0 := time.Now()
	root := mustRoot(t, "c1", WithClock(func() time.Time { return t0 }))
	mgr := mustNode(t, root, "m1", RoleManager, time.Hour)
	wrk := mustNode(t, root, "w1", RoleWorker, time.Hour)

	for _, tc := range []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"within validity", t0.Add(30 * time.Minute), true},
		{"after expiry", t0.Add(2 * time.Hour), false},
		{"before issue (beyond the backdate)", t0.Add(-2 * time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := WithTLSClock(func() time.Time { return tc.at })
			addr, res := serveOnce(t, ServerTLSConfig(root.Cert(), mgr.tls, clock))
			err := roundTrip(addr, ClientTLSConfig(root.Cert(), wrk.tls, ManagerServerName, clock))
			wait(t, res)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			addr, res = serveOnce(t, ServerTLSConfig(root.Cert(), mgr.tls, WithOptionalClientCert()))
			_, err = FetchAndVerifyCA(context.Background(), addr, root.Digest(), clock)
			wait(t, res)
			if (err == nil) != tc.ok {
				t.Fatalf("FetchAndVerifyCA: err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// A missing root must fail closed: a nil pool would mean the system roots.
func TestNilRootFailsClosed(t *testing.T) {
	if ClientTLSConfig(nil, tls.Certificate{}, ManagerServerName).RootCAs == nil {
		t.Fatal("client config with no root trusts the system roots")
	}
	if ServerTLSConfig(nil, tls.Certificate{}).ClientCAs == nil {
		t.Fatal("server config with no root trusts the system roots")
	}
}
