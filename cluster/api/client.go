package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berthd/berth/cluster/model"
)

// DefaultSocket is where the daemon listens and the CLI looks by default.
const DefaultSocket = "/run/berth/berth.sock"

// DefaultHost is DefaultSocket as a -H/--host value.
const DefaultHost = "unix://" + DefaultSocket

// IndexHeader carries the raft index of a read answer, for blocking queries.
const IndexHeader = "X-Berth-Index"

// Client calls one node's API: the local daemon over its unix socket (the CLI), or a
// manager over mutual TLS (other nodes, forwarding). Methods take the context first;
// errors from the node are *Error values that errors.Is matches against the sentinel
// errors of this package.
type Client struct {
	host string // as given, for messages
	base string
	hc   *http.Client
	unix bool
}

// Option configures a Client.
type Option func(*clientOptions)

type clientOptions struct {
	tls          *tls.Config
	hc           *http.Client
	remoteBinary string
}

// WithTLS sets the TLS configuration for a TCP host (see ca.ClientTLSConfig): it
// decides which CA is trusted and which certificate, if any, is presented.
func WithTLS(cfg *tls.Config) Option { return func(o *clientOptions) { o.tls = cfg } }

// WithHTTPClient makes the client use hc (from NewTLSHTTPClient) so that clients of
// several managers share connections and configuration. It wins over WithTLS.
func WithHTTPClient(hc *http.Client) Option { return func(o *clientOptions) { o.hc = hc } }

// New returns a client for host: "unix:///path/to.sock" (or an absolute path) for a
// node's socket, "ssh://[user@]host[:port]" for a node's socket reached through the
// system ssh (which runs `berth system dial-stdio` there, see WithRemoteBinary), or
// "tcp://host:port" / "https://host:port" / "host:port" for a node's TLS port, which
// needs WithTLS or WithHTTPClient.
func New(host string, opts ...Option) (*Client, error) {
	var o clientOptions
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case strings.HasPrefix(host, "ssh://"):
		t, err := parseSSHHost(host)
		if err != nil {
			return nil, err
		}
		remote := o.remoteBinary
		if remote == "" {
			remote = DefaultRemoteBinary
		}
		return &Client{host: t.String(), base: "http://berth", hc: sshHTTPClient(t, remote)}, nil
	case strings.HasPrefix(host, "unix://") || strings.HasPrefix(host, "/"):
		path := strings.TrimPrefix(host, "unix://")
		if path == "" || !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("invalid host %q: a unix socket needs an absolute path, e.g. %s", host, DefaultHost)
		}
		hc := o.hc
		if hc == nil {
			hc = &http.Client{Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					var d net.Dialer
					conn, err := d.DialContext(ctx, "unix", path)
					if err != nil {
						return nil, &dialError{err: err}
					}
					return conn, nil
				},
				MaxIdleConns:    4,
				IdleConnTimeout: 30 * time.Second,
			}}
		}
		return &Client{host: "unix://" + path, base: "http://berth", hc: hc, unix: true}, nil
	default:
		addr := strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "tcp://")
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("invalid host %q: expected unix:///path or host:port", host)
		}
		hc := o.hc
		if hc == nil {
			if o.tls == nil {
				return nil, fmt.Errorf("host %s: the TCP port only speaks mutual TLS; give the client a TLS configuration with the cluster CA", addr)
			}
			hc = NewTLSHTTPClient(o.tls)
		}
		return &Client{host: addr, base: "https://" + addr, hc: hc}, nil
	}
}

// NewTLSHTTPClient returns an HTTP client for nodes' TLS ports. cfg is cloned per
// connection, so a GetClientCertificate callback in it may hand out a renewed
// certificate. Connection failures are reported as *ConnectError.
func NewTLSHTTPClient(cfg *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c := cfg.Clone()
			c.NextProtos = []string{"http/1.1"}
			d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}, Config: c}
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, &dialError{err: err}
			}
			return conn, nil
		},
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     60 * time.Second,
	}}
}

// Host is the host the client calls, as a -H value or host:port.
func (c *Client) Host() string { return c.host }

// dialError marks a failure to connect: the request was never sent, so it is safe to
// send it elsewhere.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// ConnectError is a failure to reach the node at all: nothing was sent.
type ConnectError struct {
	Host string
	Err  error
	unix bool
}

func (e *ConnectError) Error() string {
	if e.unix {
		hint := "is `berth daemon` running?"
		if errors.Is(e.Err, fs.ErrPermission) {
			hint = "the socket is only open to root: run as root"
		}
		return fmt.Sprintf("cannot connect to the berth daemon at %s: %s (%s)", e.Host, e.Reason(), hint)
	}
	return fmt.Sprintf("cannot connect to %s: %s", e.Host, e.Reason())
}

// Reason is the innermost useful text of the failure ("connection refused" rather
// than "dial unix /x: connect: connection refused").
func (e *ConnectError) Reason() string {
	var errno syscall.Errno
	if errors.As(e.Err, &errno) {
		return errno.Error()
	}
	return e.Err.Error()
}

func (e *ConnectError) Unwrap() error { return e.Err }

func (c *Client) do(ctx context.Context, method, path string, in, out any) (http.Header, error) {
	var body io.Reader
	contentType := ""
	switch v := in.(type) {
	case nil:
	case []byte:
		body, contentType = bytes.NewReader(v), "application/octet-stream"
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body, contentType = bytes.NewReader(b), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.send(ctx, req)
	if err != nil {
		return nil, err
	}
	defer closeBody(resp)
	if resp.StatusCode >= 300 {
		return resp.Header, readError(resp)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.Header, fmt.Errorf("decode answer of %s %s from %s: %w", method, path, c.host, err)
		}
	}
	return resp.Header, nil
}

// closeBody reads what is left of an answer before closing it: the transport reuses
// a connection only for a body read to its end, and the JSON decoder stops at the end
// of the value, before the newline and, in a chunked answer, the last chunk. What a
// well-behaved server leaves is a few bytes; more is not worth reading.
func closeBody(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}

// send sends req, turning failures to connect into ConnectError.
func (c *Client) send(ctx context.Context, req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		var se *SSHError
		if errors.As(err, &se) {
			return nil, se
		}
		var de *dialError
		if errors.As(err, &de) {
			return nil, &ConnectError{Host: c.host, Err: de.err, unix: c.unix}
		}
		return nil, c.transportError(err)
	}
	return resp, nil
}

// transportError explains failures after the connection was made. With TLS 1.3 a
// server that refuses the client's certificate says so on the first read, not in the
// handshake.
func (c *Client) transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	if strings.Contains(msg, "remote error: tls:") {
		return fmt.Errorf("%s refused this client's certificate (%s): %w", c.host, msg, ErrUnauthorized)
	}
	return fmt.Errorf("request to %s failed: %w", c.host, err)
}

func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e Error
	if err := json.Unmarshal(b, &e); err != nil || e.Code == "" {
		text := strings.TrimSpace(string(b))
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		return &Error{StatusCode: resp.StatusCode, Code: CodeInternal, Message: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, text)}
	}
	e.StatusCode = resp.StatusCode
	return &e
}

func queryPath(path string, q Query) string {
	v := url.Values{}
	if q.Index > 0 {
		v.Set("index", strconv.FormatUint(q.Index, 10))
	}
	if q.Wait > 0 {
		v.Set("wait", q.Wait.String())
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// addQuery appends a blocking query to a path that may have parameters already.
func addQuery(path string, q Query) string {
	qp := queryPath("", q)
	if qp == "" {
		return path
	}
	if strings.Contains(path, "?") {
		return path + "&" + qp[1:]
	}
	return path + qp
}

func queryMeta(h http.Header) QueryMeta {
	idx, _ := strconv.ParseUint(h.Get(IndexHeader), 10, 64)
	return QueryMeta{Index: idx}
}

// ---------------------------------------------------------------------------
// Node lifecycle (the local socket).

// Info describes the node and, on a manager, the cluster.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	var out Info
	_, err := c.do(ctx, http.MethodGet, "/v1/info", nil, &out)
	return &out, err
}

// Init makes the node the first manager of a new cluster.
func (c *Client) Init(ctx context.Context, req InitRequest) (*InitResponse, error) {
	var out InitResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/cluster/init", req, &out)
	return &out, err
}

// Join makes the node join the cluster of a manager.
func (c *Client) Join(ctx context.Context, req JoinRequest) (*JoinResponse, error) {
	var out JoinResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/cluster/join", req, &out)
	return &out, err
}

// Leave makes the node leave its cluster.
func (c *Client) Leave(ctx context.Context, force bool) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/cluster/leave", LeaveRequest{Force: force}, nil)
	return err
}

// Unlock unlocks an autolocked manager after a restart.
func (c *Client) Unlock(ctx context.Context, key string) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/unlock", UnlockRequest{Key: key}, nil)
	return err
}

// ---------------------------------------------------------------------------
// Cluster.

// Cluster returns the cluster row without its secrets.
func (c *Client) Cluster(ctx context.Context) (*model.Cluster, error) {
	var out model.Cluster
	_, err := c.do(ctx, http.MethodGet, "/v1/cluster", nil, &out)
	return &out, err
}

// UpdateCluster changes cluster settings (`berth update`).
func (c *Client) UpdateCluster(ctx context.Context, req ClusterUpdateRequest) (*ClusterUpdateResponse, error) {
	var out ClusterUpdateResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/cluster/update", req, &out)
	return &out, err
}

// UnlockKey returns the cluster's unlock key, or rotates it and returns the new one.
func (c *Client) UnlockKey(ctx context.Context, rotate bool) (string, error) {
	var out UnlockKeyResponse
	method, path := http.MethodGet, "/v1/cluster/unlock-key"
	if rotate {
		method, path = http.MethodPost, path+"/rotate"
	}
	_, err := c.do(ctx, method, path, nil, &out)
	return out.Key, err
}

// JoinToken returns the join token of role, or rotates it and returns the new one.
func (c *Client) JoinToken(ctx context.Context, role model.NodeRole, rotate bool) (*JoinTokenResponse, error) {
	var out JoinTokenResponse
	method, path := http.MethodGet, "/v1/cluster/join-tokens/"+url.PathEscape(string(role))
	if rotate {
		method, path = http.MethodPost, path+"/rotate"
	}
	_, err := c.do(ctx, method, path, nil, &out)
	return &out, err
}

// ---------------------------------------------------------------------------
// Nodes.

// Nodes lists the nodes, with their manager status as the answering manager sees it.
func (c *Client) Nodes(ctx context.Context, q Query) ([]*model.Node, QueryMeta, error) {
	var out []*model.Node
	h, err := c.do(ctx, http.MethodGet, queryPath("/v1/nodes", q), nil, &out)
	return out, queryMeta(h), err
}

// Node returns one node, by ID, unique ID prefix or hostname.
func (c *Client) Node(ctx context.Context, ref string, q Query) (*model.Node, QueryMeta, error) {
	var out model.Node
	h, err := c.do(ctx, http.MethodGet, queryPath("/v1/nodes/"+url.PathEscape(ref), q), nil, &out)
	return &out, queryMeta(h), err
}

// UpdateNode changes a node's labels and availability.
func (c *Client) UpdateNode(ctx context.Context, ref string, req NodeUpdateRequest) (uint64, error) {
	var out WriteResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(ref)+"/update", req, &out)
	return out.Index, err
}

// PromoteNode makes a worker a manager. The node follows on its next heartbeat.
func (c *Client) PromoteNode(ctx context.Context, ref string) (*WriteResponse, error) {
	var out WriteResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(ref)+"/promote", nil, &out)
	return &out, err
}

// DemoteNode makes a manager a worker: it leaves raft at once, and stops its manager
// on its next heartbeat.
func (c *Client) DemoteNode(ctx context.Context, ref string) (*WriteResponse, error) {
	var out WriteResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(ref)+"/demote", nil, &out)
	return &out, err
}

// RemoveNode removes a node from the cluster.
func (c *Client) RemoveNode(ctx context.Context, ref string, force bool) error {
	path := "/v1/nodes/" + url.PathEscape(ref)
	if force {
		path += "?force=true"
	}
	_, err := c.do(ctx, http.MethodDelete, path, nil, nil)
	return err
}

// ---------------------------------------------------------------------------
// Secrets and configs.

// CreateSecret stores a new version of a secret.
func (c *Client) CreateSecret(ctx context.Context, req ObjectCreateRequest) (*ObjectCreateResponse, error) {
	var out ObjectCreateResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/secrets", req, &out)
	return &out, err
}

// Secrets lists the secrets' versions, never their data.
func (c *Client) Secrets(ctx context.Context, q Query) ([]*model.Secret, QueryMeta, error) {
	var out []*model.Secret
	h, err := c.do(ctx, http.MethodGet, queryPath("/v1/secrets", q), nil, &out)
	return out, queryMeta(h), err
}

// CreateConfig stores a new version of a config.
func (c *Client) CreateConfig(ctx context.Context, req ObjectCreateRequest) (*ObjectCreateResponse, error) {
	var out ObjectCreateResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/configs", req, &out)
	return &out, err
}

// Configs lists the configs' versions, without their data.
func (c *Client) Configs(ctx context.Context, q Query) ([]*model.Config, QueryMeta, error) {
	var out []*model.Config
	h, err := c.do(ctx, http.MethodGet, queryPath("/v1/configs", q), nil, &out)
	return out, queryMeta(h), err
}

// Secret returns one version of a secret, by name (the latest), ID or unique ID
// prefix, without its data.
func (c *Client) Secret(ctx context.Context, ref string) (*model.Secret, error) {
	var out model.Secret
	_, err := c.do(ctx, http.MethodGet, "/v1/secrets/"+url.PathEscape(ref), nil, &out)
	return &out, err
}

// RemoveSecret deletes every version of a secret.
func (c *Client) RemoveSecret(ctx context.Context, ref string) (*WriteResponse, error) {
	var out WriteResponse
	_, err := c.do(ctx, http.MethodDelete, "/v1/secrets/"+url.PathEscape(ref), nil, &out)
	return &out, err
}

// Config returns one version of a config, by name (the latest), ID or unique ID
// prefix, with its data.
func (c *Client) Config(ctx context.Context, ref string) (*model.Config, error) {
	var out model.Config
	_, err := c.do(ctx, http.MethodGet, "/v1/configs/"+url.PathEscape(ref), nil, &out)
	return &out, err
}

// RemoveConfig deletes every version of a config.
func (c *Client) RemoveConfig(ctx context.Context, ref string) (*WriteResponse, error) {
	var out WriteResponse
	_, err := c.do(ctx, http.MethodDelete, "/v1/configs/"+url.PathEscape(ref), nil, &out)
	return &out, err
}

// ---------------------------------------------------------------------------
// Stacks, services and tasks.

// DeployStack writes a whole stack (`berth stack deploy`).
func (c *Client) DeployStack(ctx context.Context, req *StackDeployRequest) (*StackDeployResponse, error) {
	var out StackDeployResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/stacks", req, &out)
	return &out, err
}

// Plan asks what deploying stacks, or syncing a source, would do; nothing changes.
func (c *Client) Plan(ctx context.Context, req *PlanRequest) (*PlanResponse, error) {
	var out PlanResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/plan", req, &out)
	return &out, err
}

// RemoveStack removes a stack with its services, networks, secrets and configs.
func (c *Client) RemoveStack(ctx context.Context, name string) (*WriteResponse, error) {
	var out WriteResponse
	_, err := c.do(ctx, http.MethodDelete, "/v1/stacks/"+url.PathEscape(name), nil, &out)
	return &out, err
}

// Stacks lists the stacks.
func (c *Client) Stacks(ctx context.Context, q Query) ([]*StackSummary, QueryMeta, error) {
	var out []*StackSummary
	h, err := c.do(ctx, http.MethodGet, queryPath("/v1/stacks", q), nil, &out)
	return out, queryMeta(h), err
}

// Services lists the services (of one stack when f.Stack is set) with their tasks'
// counts.
func (c *Client) Services(ctx context.Context, f ServiceFilter, q Query) ([]*ServiceStatus, QueryMeta, error) {
	var out []*ServiceStatus
	path := "/v1/services"
	if f.Stack != "" {
		path += "?stack=" + url.QueryEscape(f.Stack)
	}
	h, err := c.do(ctx, http.MethodGet, addQuery(path, q), nil, &out)
	return out, queryMeta(h), err
}

// Service returns one service, by ID, unique ID prefix or name.
func (c *Client) Service(ctx context.Context, ref string, q Query) (*ServiceStatus, QueryMeta, error) {
	var out ServiceStatus
	h, err := c.do(ctx, http.MethodGet, queryPath("/v1/services/"+url.PathEscape(ref), q), nil, &out)
	return &out, queryMeta(h), err
}

// ScaleService sets a replicated service's replicas.
func (c *Client) ScaleService(ctx context.Context, ref string, replicas uint64) (*WriteResponse, error) {
	var out WriteResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(ref)+"/scale", ServiceScaleRequest{Replicas: replicas}, &out)
	return &out, err
}

// UpdateService applies `service update` (--force).
func (c *Client) UpdateService(ctx context.Context, ref string, req ServiceUpdateRequest) (*WriteResponse, error) {
	var out WriteResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(ref)+"/update", req, &out)
	return &out, err
}

// RollbackService returns a service to its previous spec.
func (c *Client) RollbackService(ctx context.Context, ref string) (*WriteResponse, error) {
	var out WriteResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(ref)+"/rollback", struct{}{}, &out)
	return &out, err
}

// Tasks lists tasks, in `service ps` order.
func (c *Client) Tasks(ctx context.Context, f TaskFilter, q Query) ([]*TaskInfo, QueryMeta, error) {
	v := url.Values{}
	if f.Service != "" {
		v.Set("service", f.Service)
	}
	if f.Stack != "" {
		v.Set("stack", f.Stack)
	}
	if f.Node != "" {
		v.Set("node", f.Node)
	}
	path := "/v1/tasks"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out []*TaskInfo
	h, err := c.do(ctx, http.MethodGet, addQuery(path, q), nil, &out)
	return out, queryMeta(h), err
}

// NodeTasks returns the tasks assigned to a node: an agent's watch (blocking query).
func (c *Client) NodeTasks(ctx context.Context, nodeID string, q Query) ([]*model.Task, QueryMeta, error) {
	var out []*model.Task
	h, err := c.do(ctx, http.MethodGet, queryPath("/v1/nodes/"+url.PathEscape(nodeID)+"/tasks", q), nil, &out)
	return out, queryMeta(h), err
}

// NodeNetworkView returns what a node's data plane needs of the cluster's networks:
// an agent's watch (blocking query), answered only when that node's view changes.
func (c *Client) NodeNetworkView(ctx context.Context, nodeID string, q Query) (*NetworkView, QueryMeta, error) {
	var out NetworkView
	h, err := c.do(ctx, http.MethodGet, queryPath("/v1/nodes/"+url.PathEscape(nodeID)+"/network", q), nil, &out)
	return &out, queryMeta(h), err
}

// TaskRuntime fetches what the agent needs to run one of its node's tasks.
func (c *Client) TaskRuntime(ctx context.Context, taskID string) (*TaskRuntime, error) {
	var out TaskRuntime
	_, err := c.do(ctx, http.MethodGet, "/v1/tasks/"+url.PathEscape(taskID)+"/runtime", nil, &out)
	return &out, err
}

// TaskLogs copies a task's logs to w (until ctx is done, with Follow). taskRef is
// a task ID, a unique ID prefix or a task name (web_api.1).
func (c *Client) TaskLogs(ctx context.Context, taskRef string, o LogOptions, w io.Writer) error {
	v := url.Values{}
	if o.Tail > 0 {
		v.Set("tail", strconv.Itoa(o.Tail))
	}
	if o.Follow {
		v.Set("follow", "true")
	}
	if o.Timestamps {
		v.Set("timestamps", "true")
	}
	if o.Stream != "" {
		v.Set("stream", o.Stream)
	}
	for name, t := range map[string]time.Time{"since": o.Since, "until": o.Until} {
		if !t.IsZero() {
			v.Set(name, t.Format(time.RFC3339Nano))
		}
	}
	path := "/v1/tasks/" + url.PathEscape(taskRef) + "/logs"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	return c.stream(ctx, http.MethodGet, path, nil, "", w)
}

// LoadImage sends an image archive to the node, which imports it (and, with
// o.AllNodes, has every node of the cluster import it).
func (c *Client) LoadImage(ctx context.Context, archive io.Reader, o ImageLoadOptions) (*ImageLoadResponse, error) {
	path := "/v1/images/load"
	if o.AllNodes {
		path += "?all_nodes=true"
	}
	var buf bytes.Buffer
	if err := c.stream(ctx, http.MethodPost, path, archive, "application/x-tar", &buf); err != nil {
		return nil, err
	}
	var out ImageLoadResponse
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("decode answer of POST /v1/images/load from %s: %w", c.host, err)
	}
	return &out, nil
}

// Backup writes a backup of the manager behind the local socket to w.
func (c *Client) Backup(ctx context.Context, w io.Writer) error {
	return c.stream(ctx, http.MethodGet, "/v1/cluster/backup", nil, "", w)
}

// stream sends body as it is read and copies the answer's body to w as it comes,
// for what is too big or too long-lived for JSON: logs, image archives.
func (c *Client) stream(ctx context.Context, method, path string, body io.Reader, contentType string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.send(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return readError(resp)
	}
	if _, err := io.Copy(w, resp.Body); err != nil && ctx.Err() == nil {
		return fmt.Errorf("%s %s from %s: %w", method, path, c.host, err)
	}
	return nil
}

// ReportTaskStatus sends an agent's reports on its node's tasks.
func (c *Client) ReportTaskStatus(ctx context.Context, reports []TaskStatusReport) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/tasks/status", TaskStatusRequest{Reports: reports}, nil)
	return err
}

// ---------------------------------------------------------------------------
// Between nodes (the TLS port).

// RequestJoin asks a manager for a certificate, with a join token.
func (c *Client) RequestJoin(ctx context.Context, req NodeJoinRequest) (*NodeJoinResponse, error) {
	var out NodeJoinResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/join", req, &out)
	return &out, err
}

// Heartbeat tells the leader that the caller's node is alive, and which berth it runs.
func (c *Client) Heartbeat(ctx context.Context, req HeartbeatRequest) (*HeartbeatResponse, error) {
	var out HeartbeatResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/heartbeat", req, &out)
	return &out, err
}

// RenewCertificate asks for a certificate for a new key, with the role the cluster
// records for the caller's node.
func (c *Client) RenewCertificate(ctx context.Context, csr []byte) (*CertificateResponse, error) {
	var out CertificateResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/node/certificate", CertificateRequest{CSR: csr}, &out)
	return &out, err
}

// Apply sends an encoded raft command to the leader.
func (c *Client) Apply(ctx context.Context, cmd []byte) (uint64, error) {
	var out WriteResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/internal/apply", cmd, &out)
	return out.Index, err
}

// AddVoter asks the leader to add a manager to raft.
func (c *Client) AddVoter(ctx context.Context, nodeID string) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/internal/raft/add", RaftMemberRequest{NodeID: nodeID}, nil)
	return err
}

// RemoveVoter asks the leader to remove a manager from raft.
func (c *Client) RemoveVoter(ctx context.Context, nodeID string) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/internal/raft/remove", RaftMemberRequest{NodeID: nodeID}, nil)
	return err
}

// Ping checks that a manager answers.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/v1/internal/ping", nil, nil)
	return err
}

// AddSource creates a GitOps source.
func (c *Client) AddSource(ctx context.Context, req *SourceAddRequest) (*WriteResponse, error) {
	var out WriteResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/sources", req, &out)
	return &out, err
}

// Sources lists the sources with their status.
func (c *Client) Sources(ctx context.Context, q Query) ([]*SourceInfo, QueryMeta, error) {
	var out []*SourceInfo
	h, err := c.do(ctx, http.MethodGet, queryPath("/v1/sources", q), nil, &out)
	return out, queryMeta(h), err
}

// Source returns one source.
func (c *Client) Source(ctx context.Context, name string, q Query) (*SourceInfo, QueryMeta, error) {
	var out SourceInfo
	h, err := c.do(ctx, http.MethodGet, queryPath("/v1/sources/"+url.PathEscape(name), q), nil, &out)
	return &out, queryMeta(h), err
}

// UpdateSource suspends, resumes, pins or asks for a sync of a source.
func (c *Client) UpdateSource(ctx context.Context, name string, req *SourceUpdateRequest) (*WriteResponse, error) {
	var out WriteResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/sources/"+url.PathEscape(name)+"/update", req, &out)
	return &out, err
}

// RemoveSource deletes a source; with prune its stacks too.
func (c *Client) RemoveSource(ctx context.Context, name string, prune bool) (*WriteResponse, error) {
	var out WriteResponse
	path := "/v1/sources/" + url.PathEscape(name)
	if prune {
		path += "?prune=true"
	}
	_, err := c.do(ctx, http.MethodDelete, path, nil, &out)
	return &out, err
}

// SourceToken returns a push source's remote URL and token; rotate makes a new one.
func (c *Client) SourceToken(ctx context.Context, name string, rotate bool) (*SourceTokenResponse, error) {
	var out SourceTokenResponse
	method, path := http.MethodGet, "/v1/sources/"+url.PathEscape(name)+"/token"
	if rotate {
		method, path = http.MethodPost, path+"/rotate"
	}
	_, err := c.do(ctx, method, path, nil, &out)
	return &out, err
}

// UIToken asks the manager (on its local socket) for a one-time login link to its web
// dashboard.
func (c *Client) UIToken(ctx context.Context) (*UITokenResponse, error) {
	var out UITokenResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/ui/token", nil, &out)
	return &out, err
}
