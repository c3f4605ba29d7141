// Package server wires Sanke together: HTTP routes, the WebRTC API, the room manager and
// graceful shutdown.
package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/sanke-edu/sanke/config"
)

// Server is a running Sanke node.
type Server struct {
	cfg    *config.Config
	logger *slog.Logger
}

// New builds a server from a validated configuration.
func New(cfg *config.Config, logger *slog.Logger) (*Server, error) {
	return &Server{cfg: cfg, logger: logger}, nil
}

// Run serves until ctx is cancelled, then shuts down gracefully: stops accepting joins,
// tells clients to leave and closes their peer connections.
func (s *Server) Run(ctx context.Context) error {
	return errors.New("server: not implemented yet")
}
