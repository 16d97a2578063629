package store

import (
	"log/slog"
	"time"

	"github.com/hashicorp/raft"
)

// NewTransport returns raft's network transport over a StreamLayer, logging through
// logger. It is what a daemon hands to Open as Config.Transport; raft closes it (and so
// the stream layer, not the node's port) when the store closes.
func NewTransport(sl *StreamLayer, logger *slog.Logger) raft.Transport {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  sl,
		MaxPool: 3,
		// An I/O deadline per RPC; snapshots get a multiple of it by size.
		Timeout: 10 * time.Second,
		Logger:  newHCLogger(logger).Named("raft-net"),
	})
}
