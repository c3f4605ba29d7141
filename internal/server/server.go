// Package server wires Sanke together: HTTP routes, the WebRTC API, the room manager and
// graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/utils/guid"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/internal/connlimit"
	"github.com/sanke-edu/sanke/internal/roomapi"
	"github.com/sanke-edu/sanke/internal/turnserver"
	"github.com/sanke-edu/sanke/recorder" // recording: see recording.go
	"github.com/sanke-edu/sanke/sfu/room"
	"github.com/sanke-edu/sanke/signaling"
)

// Version is the version Sanke reports to clients in server_info. LiveKit clients compare it
// with LiveKit server releases: livekit-client refuses an empty version, enables RPC from
// 1.8.0, and above 1.13.6 publishes VP9/AV1 as rid simulcast (which Sanke does not split into
// layers). 1.13.5 is the newest LiveKit release whose client-visible behaviour Sanke
// implements, so every feature we support is on and nothing we lack is asked for.
const Version = "1.13.5"

// ProtocolVersion is the LiveKit signaling protocol version Sanke speaks.
const ProtocolVersion = 17

// shutdownGrace bounds how long Run waits for clients to be told to leave.
const shutdownGrace = 10 * time.Second

// reconnectWindow is how long a participant whose connection dropped is kept for a resume.
const reconnectWindow = 20 * time.Second

// Server is a running Sanke node.
type Server struct {
	cfg      *config.Config
	logger   *slog.Logger
	media    *room.MediaAPI
	rooms    *room.Manager
	signal   *signaling.Handler
	roomAPI  *roomapi.Service
	mux      *http.ServeMux
	front    http.Handler       // mux behind the security headers, body bound and write deadlines
	conns    *connlimit.Limiter // the HTTP connections open, within http.max_conns(_per_ip)
	nodeID   string
	listener []net.Listener
	turn     *turnserver.Server // nil unless turn.enabled: see turn.go
	recorder *recorder.Recorder // recording: see recording.go
	extras   extras             // classroom, webhooks, metrics: see classroom.go
}

// New builds a server from a validated configuration and opens its media sockets.
func New(cfg *config.Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, logger: logger, nodeID: guid.New(guid.NodePrefix)}
	// Loopback clients (a reverse proxy on this host, the recorder) are not held to the
	// per-address cap.
	conns, err := connlimit.New(connlimit.Config{Max: cfg.HTTP.MaxConns, MaxPerAddr: cfg.HTTP.MaxConnsPerIP,
		Exempt: netip.Addr.IsLoopback, Logger: logger.With("listener", "http", "settings", "http.max_conns, http.max_conns_per_ip")})
	if err != nil {
		return nil, err
	}
	s.conns = conns
	// One bind address binds the media sockets and the relay to it and its family (0.0.0.0:
	// every IPv4 address); "::" or several addresses: every address of both families.
	bindIP := ""
	if len(cfg.BindAddresses) == 1 && cfg.BindAddresses[0] != "::" {
		bindIP = cfg.BindAddresses[0]
	}
	tcpLimit, err := s.iceTCPLimit(bindIP)
	if err != nil {
		return nil, err
	}
	media, err := room.NewMediaAPI(room.MediaConfig{
		UDPPort:         cfg.RTC.UDPPort,
		TCPPort:         cfg.RTC.TCPPort,
		TCPLimit:        tcpLimit,
		TCPSetupTimeout: cfg.RTC.TCPSetupTimeout,
		BindIP:          bindIP,
		NodeIPs:         cfg.RTC.NodeIPs(),
		IncludeLoopback: cfg.RTC.IncludeLoopback,
		DirectSRTP:      cfg.RTC.DirectSRTP,
		DownlinkControl: cfg.RTC.DownlinkControl,
	}, logger)
	if err != nil {
		return nil, err
	}
	s.media = media

	var ice []*livekit.ICEServer
	if len(cfg.RTC.STUNServers) > 0 {
		urls := make([]string, 0, len(cfg.RTC.STUNServers))
		for _, u := range cfg.RTC.STUNServers {
			if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "stuns:") {
				u = "stun:" + u
			}
			urls = append(urls, u)
		}
		ice = append(ice, &livekit.ICEServer{Urls: urls})
	}
	keys := auth.NewFileBasedKeyProviderFromMap(cfg.Keys)
	roomCfg := &room.Config{
		Keys:             keys,
		AutoCreate:       cfg.Room.AutoCreate,
		EmptyTimeout:     cfg.Room.EmptyTimeout,
		DepartureTimeout: cfg.Room.DepartureTimeout,
		MaxParticipants:  cfg.Room.MaxParticipants,
		SyncStreams:      cfg.Room.SyncStreams,
		ReconnectWindow:  reconnectWindow,
		PingInterval:     cfg.Signal.PingInterval,
		PingTimeout:      cfg.Signal.PingTimeout,
		PLIThrottle:      cfg.RTC.PLIThrottle,
		PacketCacheSize:  cfg.RTC.PacketCacheSize,
		CaptureAudio:     audioCapture(cfg.RTC.CaptureAudioDir, s.logger),
		ICEServers:       ice,
		Limits: room.Limits{
			MaxRoomNameLength: cfg.Limit.MaxRoomNameLength,
			MaxIdentityLength: cfg.Limit.MaxParticipantIdentityLength,
			MaxNameLength:     cfg.Limit.MaxParticipantNameLength,
			MaxMetadataSize:   cfg.Limit.MaxMetadataSize,
			MaxAttributesSize: cfg.Limit.MaxAttributesSize,
			MaxAttributes:     cfg.Limit.MaxAttributes,
			MaxTracks:         cfg.Limit.MaxTracksPerParticipant,
		},
		ServerInfo: &livekit.ServerInfo{
			Edition:  livekit.ServerInfo_Standard,
			Version:  Version,
			Protocol: ProtocolVersion,
			NodeId:   s.nodeID,
		},
	}
	// The relay first: the manager keeps a copy of roomCfg, TURN included.
	if err := s.startTURN(roomCfg, bindIP); err != nil { // see turn.go
		_ = media.Close()
		return nil, err
	}
	s.rooms = room.NewManager(roomCfg, media, logger)
	s.endTURNOnLeave()

	s.signal = signaling.NewHandler(signaling.Config{
		MaxMessageBytes:   cfg.Signal.MaxMessageBytes,
		RateLimit:         cfg.Signal.RateLimit,
		RateBurst:         cfg.Signal.RateBurst,
		PingInterval:      cfg.Signal.PingInterval,
		PingTimeout:       cfg.Signal.PingTimeout,
		WriteQueue:        cfg.Signal.WriteQueue,
		JoinRateLimit:     cfg.Signal.JoinRateLimit,
		JoinRateBurst:     cfg.Signal.JoinRateBurst,
		TrustProxyHeaders: cfg.Signal.TrustProxyHeaders,
	}, keys, s.rooms, logger)
	s.roomAPI = roomapi.NewService(s.rooms, keys, logger, roomapi.WithGrantsCheck(s.checkGrants))

	s.mux = http.NewServeMux()
	s.signal.Register(s.mux)
	s.mux.Handle(s.roomAPI.PathPrefix(), s.roomAPI.Handler())
	if cfg.Dev {
		// Profiles for performance work (BENCHMARKS.md), for loopback clients only: dev mode
		// listens on 127.0.0.1 unless --bind says otherwise, and the profiles (the command
		// line above all) are nobody else's business even then.
		s.mux.Handle("/debug/pprof/", loopbackOnly(http.HandlerFunc(pprof.Index)))
		s.mux.Handle("/debug/pprof/profile", loopbackOnly(http.HandlerFunc(pprof.Profile)))
		s.mux.Handle("/debug/pprof/trace", loopbackOnly(http.HandlerFunc(pprof.Trace)))
		s.mux.Handle("/debug/pprof/symbol", loopbackOnly(http.HandlerFunc(pprof.Symbol)))
		s.mux.Handle("/debug/pprof/cmdline", loopbackOnly(http.HandlerFunc(pprof.Cmdline)))
	}
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	if err := s.setupRecording(); err != nil { // recording: see recording.go
		_ = s.closeSockets()
		return nil, err
	}
	if err := s.setupExtras(); err != nil { // classroom, webhooks, metrics: see classroom.go
		_ = s.closeSockets()
		return nil, err
	}
	s.setupWebClient() // web client at "/" (issue 6): see webclient.go
	s.front = frontHandler(s.mux, cfg.HTTP.WriteTimeout)
	return s, nil
}

// handleHealth answers "ok" while the server serves classes, followed by a "warning:" line
// for each problem that does not stop it (e.g. recording impossible: an unwritable spool).
func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var b strings.Builder
	b.WriteString("ok\n")
	if s.recorder != nil {
		for _, p := range s.recorder.Problems() {
			b.WriteString("warning: recording: " + p + "\n")
		}
	}
	_, _ = io.WriteString(w, b.String())
}

// Handler returns the HTTP handler with every route (used by tests and by Run).
func (s *Server) Handler() http.Handler { return s.front }

// Rooms returns the room manager.
func (s *Server) Rooms() *room.Manager { return s.rooms }

// Listen opens the HTTP listeners; Run calls it when it has not been called.
func (s *Server) Listen() error {
	if s.listener != nil {
		return nil
	}
	addrs := s.cfg.BindAddresses
	if len(addrs) == 0 {
		addrs = []string{""}
	}
	for _, a := range addrs {
		// Go's wildcard TCP socket is dual-stack whether it is given 0.0.0.0 or ::, so the
		// IPv4 wildcard names its family; "::" is Go's own wildcard, which falls back to IPv4
		// on a host without IPv6.
		network := "tcp"
		switch ip := net.ParseIP(a); {
		case ip == nil:
		case ip.Equal(net.IPv4zero):
			network = "tcp4"
		case ip.Equal(net.IPv6unspecified):
			a = ""
		}
		l, err := net.Listen(network, net.JoinHostPort(a, strconv.Itoa(s.cfg.Port)))
		if err != nil {
			for _, o := range s.listener {
				_ = o.Close()
			}
			s.listener = nil
			return fmt.Errorf("listen: %w", err)
		}
		s.listener = append(s.listener, s.conns.Listener(l))
	}
	return nil
}

// Run serves until ctx is cancelled, then shuts down gracefully: stops accepting joins,
// tells clients to leave and closes their peer connections.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		_ = s.closeSockets()
		return err
	}
	s.startRecording() // recording: see recording.go

	if err := s.startExtras(ctx); err != nil { // classroom: see classroom.go
		_ = s.closeSockets()
		return err
	}
	srv := newHTTPServer(s.cfg.HTTP, s.front, s.logger)
	errc := make(chan error, len(s.listener))
	var wg sync.WaitGroup
	for _, l := range s.listener {
		s.logger.Info("sanke listening", "addr", l.Addr().String(), "version", Version, "node", s.nodeID,
			"udp_port", s.cfg.RTC.UDPPort, "dev", s.cfg.Dev)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	s.logger.Info("shutting down: refusing joins, telling clients to leave")
	s.signal.Drain()
	s.rooms.Drain()
	s.stopRecording() // recording: see recording.go
	s.stopExtras()    // classroom, webhooks: see classroom.go
	shCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := s.signal.Shutdown(shCtx); err != nil {
		s.logger.Warn("signaling shutdown", "err", err)
	}
	// Websockets are hijacked connections: Shutdown does not wait for them; the room drain
	// above already closed them after sending leave.
	if err := srv.Shutdown(shCtx); err != nil {
		s.logger.Warn("http shutdown", "err", err)
	}
	wg.Wait()
	if err := s.closeSockets(); err != nil {
		s.logger.Debug("close media sockets", "err", err)
	}
	s.logger.Info("shutdown complete")
	return runErr
}
