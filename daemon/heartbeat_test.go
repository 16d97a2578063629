package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/api/server"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// issue returns a certificate of root for a new node with role.
func issue(t *testing.T, root *ca.RootCA, role ca.Role, addrs ...string) (nodeID string, certPEM, keyPEM []byte) {
	t.Helper()
	nodeID = newID()
	keyPEM, csr, err := ca.NewNodeKeyAndCSR(nodeID)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err = root.IssueNodeCert(csr, nodeID, role, 0, addrs...)
	if err != nil {
		t.Fatal(err)
	}
	return nodeID, certPEM, keyPEM
}

// A leader slower to answer than a heartbeat period must not make its nodes
// reconnect: with the default period, heartbeats answered after 1.2 s (the
// leader records a beat when it arrives) all succeed over one TLS connection.
func TestSlowHeartbeatAnswersKeepTheConnection(t *testing.T) {
	const beats, slow = 2, 1200 * time.Millisecond
	root, err := ca.NewRootCA(newID())
	if err != nil {
		t.Fatal(err)
	}
	_, mgrPEM, mgrKey := issue(t, root, ca.RoleManager, "127.0.0.1")
	mgrCert, err := tls.X509KeyPair(mgrPEM, mgrKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/heartbeat" {
				http.NotFound(w, r)
				return
			}
			time.Sleep(slow)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(api.HeartbeatResponse{Period: spec.Duration(model.DefaultHeartbeatPeriod), Role: model.RoleWorker})
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	tlsCfg := ca.ServerTLSConfig(root.Cert(), mgrCert, ca.WithOptionalClientCert())
	tlsCfg.NextProtos = []string{"http/1.1"}
	go func() { _ = srv.Serve(tls.NewListener(ln, tlsCfg)) }()
	t.Cleanup(func() { _ = srv.Close() })

	workerID, certPEM, keyPEM := issue(t, root, ca.RoleWorker)
	id, err := newIdentity(root.CertPEM(), certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{meta: &nodeFile{NodeID: workerID, ClusterID: root.ClusterID(), Role: model.RoleWorker,
		AdvertiseAddr: "127.0.0.1:1", Managers: []string{ln.Addr().String()}}}
	n.setIdentity(id)
	t.Cleanup(func() { n.setIdentity(nil) })

	for i := range beats {
		if _, _, err := n.beatOnce(context.Background(), nil, "", model.DefaultHeartbeatPeriod); err != nil {
			t.Errorf("heartbeat %d answered after %s: %v", i+1, slow, err)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("%d heartbeats opened %d TLS connections, want 1", beats, got)
	}
}

// BenchmarkHeartbeatHandler is the leader's side of one heartbeat of a Ready node
// past the network: routing, the caller's certificate and membership, the
// tracker, the answer and its JSON.
func BenchmarkHeartbeatHandler(b *testing.B) {
	tn := startNode(b, shortTempDir(b), "m1")
	if _, err := tn.c.Init(context.Background(), api.InitRequest{}); err != nil {
		b.Fatal(err)
	}
	id := tn.n.ident.Load()
	h := server.NewRemoteHandler(tn.n)
	req := httptest.NewRequest(http.MethodPost, "/v1/heartbeat", nil)
	req.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{id.leaf}}}
	eventually(b, 10*time.Second, func() error {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			return fmt.Errorf("heartbeat: %d %s", w.Code, w.Body)
		}
		return nil
	})
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("heartbeat: %d %s", w.Code, w.Body)
		}
	}
}
