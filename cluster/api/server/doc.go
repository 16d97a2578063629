// Package server serves berth's API (cluster/api): the handler a node serves on its
// unix socket and on its mutual-TLS port, over the Backend the node implements.
//
// # Transports and who may call what
//
// The unix socket (NewLocalHandler) is created 0600: whoever opens it administers the
// node, and the endpoints between nodes are not served there. The TCP port
// (NewRemoteHandler) speaks TLS 1.3 with certificates of the cluster CA; the caller's
// node ID and role come from its verified certificate, never from the request, and a
// certificate of a node that was removed is refused. Access per endpoint:
//
//	endpoint                                   socket  port
//	GET  /v1/info                              yes     any node
//	POST /v1/cluster/init                      yes     -
//	POST /v1/cluster/join                      yes     -
//	POST /v1/cluster/leave                     yes     -
//	POST /v1/unlock                            yes     -
//	GET  /v1/cluster                           yes     manager   (redacted)
//	POST /v1/cluster/update                    yes     manager   {"autolock": bool, "max_replicas": N}
//	GET  /v1/cluster/unlock-key                yes     manager
//	POST /v1/cluster/unlock-key/rotate         yes     manager
//	GET  /v1/cluster/join-tokens/{role}        yes     manager
//	POST /v1/cluster/join-tokens/{role}/rotate yes     manager
//	GET  /v1/nodes                             yes     manager   blocking
//	GET  /v1/nodes/{ref}                       yes     manager   blocking
//	POST /v1/nodes/{ref}/update                yes     manager
//	POST /v1/nodes/{ref}/promote               yes     manager
//	POST /v1/nodes/{ref}/demote                yes     manager
//	DELETE /v1/nodes/{ref}[?force=true]        yes     manager
//	POST /v1/secrets, GET /v1/secrets          yes     manager   listings never carry data
//	POST /v1/configs, GET /v1/configs          yes     manager   listings never carry data
//	GET, DELETE /v1/secrets/{ref}              yes     manager   one version, never its data; rm refuses one in use
//	GET, DELETE /v1/configs/{ref}              yes     manager   one version with its data; rm refuses one in use
//	POST /v1/stacks                            yes     manager   a whole stack, secrets' content included
//	GET  /v1/stacks                            yes     manager   blocking
//	DELETE /v1/stacks/{name}                   yes     manager
//	POST /v1/plan                              yes     manager   dry run of stacks or of a source; writes nothing
//	GET  /v1/services[?stack=NAME]             yes     manager   blocking; running/desired, pending reasons
//	GET  /v1/services/{ref}                    yes     manager   blocking
//	POST /v1/services/{ref}/scale              yes     manager   {"replicas": N}
//	POST /v1/services/{ref}/update             yes     manager   {"force": true} or {"spec": {...}}
//	POST /v1/services/{ref}/rollback           yes     manager
//	POST /v1/services                          yes     manager   `service create`: {"spec": {...}}
//	DELETE /v1/services/{ref}                  yes     manager
//	GET  /v1/tasks[?service=&stack=&node=]     yes     manager   blocking; `service ps` order
//	GET  /v1/nodes/{ref}/tasks                 yes     any node  blocking; a worker its own node only
//	GET  /v1/tasks/{id}/runtime                yes     any node  spec, secrets, configs, networks: the task's node only
//	GET  /v1/tasks/{id}/logs[?tail=N&follow=true&timestamps=true&stream=stdout]
//	                                           yes     manager   text; from the node the task ran on
//	POST /v1/tasks/status                      -       any node  reports on the caller's node's tasks only
//	POST /v1/images/load[?all_nodes=true]      yes     manager   an image archive as the body; all_nodes: socket only
//	POST /v1/ui/token                          yes     -         a one-time login link to this manager's dashboard
//	GET  /ui/...                               -       admin     the web dashboard (cluster/ui): an admin certificate or its session cookie
//	POST /v1/join                              -       anyone    the join token authenticates
//	POST /v1/heartbeat                         -       any node  leader only; {"engine": {...}}: the berth the node runs
//	POST /v1/node/certificate                  -       any node  role from the cluster's records
//	POST /v1/internal/apply                    -       manager   a follower's raft command
//	POST /v1/internal/raft/add                 -       manager   leader only
//	POST /v1/internal/raft/remove              -       manager   leader only
//	GET  /v1/internal/ping                     -       manager
//
// {ref} is an ID, a unique ID prefix, or a hostname (nodes) or name (services). Every endpoint but info, init,
// join, leave, unlock, task logs and image load needs an unlocked manager: a locked one
// answers 423 "this node is locked: run `berth unlock`", a worker 503 not_manager, a
// node outside a cluster 503 not_in_cluster. Workers open the port too, for the
// managers to read their tasks' logs and load images into them; a worker keeps no
// cluster state, so it takes any manager certificate of the cluster.
//
// # Errors
//
// The handler maps the errors a Backend returns, which wrap the sentinel errors of
// api or of the manager's packages (state.ErrNotFound, store.ErrNoLeader,
// sealed.ErrLocked, ca.ErrForbidden...), to codes through one table (errorCodes); a
// client's errors.Is matches api's sentinel of the code. An *api.Error a backend
// passes on from another node keeps its code, so a caller on one side of a forwarded
// call sees the same error as one on the other. ManagerError does the reverse for a
// manager that forwards a write: the leader's answer matches the manager's sentinel.
//
// # Blocking queries
//
// ?index=N&wait=D is parsed here (wait defaults to DefaultWait, at most
// state.MaxBlockingWait) and handed to the backend; answers carry api.IndexHeader.
package server
