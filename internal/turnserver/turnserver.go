// Package turnserver runs Sanke's embedded TURN relay (RFC 8656, pion/turn) for clients
// whose networks let neither UDP nor Sanke's ICE-TCP port through: a school firewall that
// only opens web ports still lets TURN over TLS on 443 pass. A client gets credentials
// for it in its join response (ICEServer); the browser then relays its media through
// this server to the SFU on the same machine.
//
// What a client may do with it, and for how long:
//   - Credentials are the TURN REST API's: the user name is "<expiry unix time>:<participant
//     sid>" and the password an HMAC of it under Config.Secret, so nothing is stored per
//     credential and any node holding the secret can verify one. They are refused as soon
//     as their participant has left its session (Left), for every request (allocations,
//     refreshes, permissions, channel binds, connects), and they start new allocations only
//     until they expire.
//   - The relay forwards only to the SFU's media endpoints (Config.Media): UDP to the ICE
//     UDP mux port, TCP (RFC 6062 Connect) to the ICE-TCP port, on the addresses the SFU's
//     candidates advertise. Permissions, channel binds and connects naming anything else
//     are answered 403 Forbidden, and relayed packets to or from anything else are dropped.
//   - Allocations are bounded per participant, per client address and in total (Limits);
//     a request beyond a bound is answered 486 Allocation Quota Reached. A participant's
//     allocations are closed when it leaves.
//   - TURN/TCP and TURN/TLS connections are bounded per client address and in total, and
//     one that has not allocated (or bound a peer connection) within Limits.SetupTimeout of
//     opening, or of losing its allocation, is closed.
package turnserver

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/turn/v5"

	"github.com/sanke-edu/sanke/internal/connlimit"
	"github.com/sanke-edu/sanke/internal/pionlog"
)

// Realm is the TURN realm of Sanke's relay.
const Realm = "sanke"

// DefaultCredentialTTL is Config.CredentialTTL when it is not set: a school day.
const DefaultCredentialTTL = 8 * time.Hour

// Config configures the relay. At least one port must be set.
type Config struct {
	// UDPPort is the TURN/UDP port; 0 disables it.
	UDPPort int
	// TCPPort is the plain TURN/TCP port; 0 disables it.
	TCPPort int
	// TLSPort is the TURN/TLS port (turns:); 0 disables it. Certificate must be set.
	TLSPort int
	// Certificate serves TURN/TLS.
	Certificate *tls.Certificate
	// BindIP is the address the listeners and relay sockets bind to; empty: all.
	BindIP string
	// RelayIP is the address relayed allocations are given as (the SFU sends to it). Empty:
	// BindIP, else the first non-loopback IPv4 address of the machine.
	RelayIP string
	// RelayPortMin and RelayPortMax bound the relay sockets' ports (inclusive); both 0: any.
	RelayPortMin, RelayPortMax int
	// Domain is the host name put in the URLs handed to clients, which TURN/TLS
	// certificates must match; empty: the host the client reached signaling at.
	Domain string
	// Media are the SFU's endpoints: the only peers the relay forwards to.
	Media Media
	// Secret signs the credentials; empty: a random secret drawn at start (credentials
	// then die with the process). Nodes sharing a secret verify each other's credentials.
	Secret string
	// CredentialTTL is how long a handed-out credential may start new allocations; 0:
	// DefaultCredentialTTL.
	CredentialTTL time.Duration
	// Limits bound what clients may hold.
	Limits Limits
}

// Start opens the listeners and starts relaying.
func Start(cfg Config, logger *slog.Logger) (*Server, error) {
	if cfg.UDPPort == 0 && cfg.TCPPort == 0 && cfg.TLSPort == 0 {
		return nil, errors.New("turn: no port to listen on")
	}
	if cfg.TLSPort != 0 && cfg.Certificate == nil {
		return nil, errors.New("turn: TLS port without a certificate")
	}
	if cfg.CredentialTTL <= 0 {
		cfg.CredentialTTL = DefaultCredentialTTL
	}
	cfg.Limits = cfg.Limits.withDefaults()
	media, err := newMediaPeers(cfg.Media)
	if err != nil {
		return nil, err
	}
	local, err := localAddresses()
	if err != nil {
		return nil, fmt.Errorf("turn: local addresses: %w", err)
	}
	relayIP := net.ParseIP(cfg.RelayIP)
	if relayIP == nil {
		relayIP = defaultRelayIP(cfg.BindIP, local)
	}
	secret := cfg.Secret
	if secret == "" {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		secret = base64.StdEncoding.EncodeToString(key)
	}
	s := &Server{
		cfg:    cfg,
		secret: []byte(secret),
		media:  media,
		ledger: newLedger(cfg.Limits),
		conns:  newConnTracker(),
		logger: logger.With("component", "turn"),
	}
	s.limit, err = connlimit.New(connlimit.Config{Max: cfg.Limits.Connections, MaxPerAddr: cfg.Limits.ConnectionsPerAddress,
		Logger: s.logger.With("listener", "turn", "settings", "turn.max_connections, turn.max_connections_per_address")})
	if err != nil {
		return nil, err
	}

	bind := cfg.BindIP
	if bind == "" {
		bind = "0.0.0.0"
	}
	var gen turn.RelayAddressGenerator = &turn.RelayAddressGeneratorStatic{RelayAddress: relayIP, Address: bind}
	if cfg.RelayPortMin > 0 || cfg.RelayPortMax > 0 {
		gen = &turn.RelayAddressGeneratorPortRange{RelayAddress: relayIP, Address: bind,
			MinPort: uint16(cfg.RelayPortMin), MaxPort: uint16(cfg.RelayPortMax)}
	}
	gen = &relayGenerator{RelayAddressGenerator: gen, s: s}
	var closers []func() error
	fail := func(err error) (*Server, error) {
		for _, c := range closers {
			_ = c()
		}
		return nil, err
	}
	sc := turn.ServerConfig{
		Realm:         Realm,
		AuthHandler:   s.authenticate,
		QuotaHandler:  s.quota,
		EventHandler:  s.events(),
		LoggerFactory: pionlog.New(s.logger),
	}
	if cfg.UDPPort != 0 {
		pc, err := net.ListenPacket("udp4", net.JoinHostPort(bind, strconv.Itoa(cfg.UDPPort)))
		if err != nil {
			return fail(fmt.Errorf("turn: listen udp %d: %w", cfg.UDPPort, err))
		}
		closers = append(closers, pc.Close)
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{PacketConn: &screenedPacketConn{pc, s},
			RelayAddressGenerator: gen, PermissionHandler: s.permitted})
	}
	listen := func(port int, tlsConf *tls.Config) error {
		l, err := net.Listen("tcp4", net.JoinHostPort(bind, strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("turn: listen tcp %d: %w", port, err)
		}
		closers = append(closers, l.Close)
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{Listener: &turnListener{Listener: s.limit.Listener(l), tls: tlsConf, s: s},
			RelayAddressGenerator: gen, PermissionHandler: s.permitted})
		return nil
	}
	if cfg.TCPPort != 0 {
		if err := listen(cfg.TCPPort, nil); err != nil {
			return fail(err)
		}
	}
	if cfg.TLSPort != 0 {
		tlsConf := &tls.Config{Certificates: []tls.Certificate{*cfg.Certificate}, MinVersion: tls.VersionTLS12}
		if err := listen(cfg.TLSPort, tlsConf); err != nil {
			return fail(err)
		}
	}
	if s.turn, err = turn.NewServer(sc); err != nil {
		return fail(fmt.Errorf("turn: %w", err))
	}
	s.logger.Info("turn relay ready", "udp_port", cfg.UDPPort, "tcp_port", cfg.TCPPort, "tls_port", cfg.TLSPort,
		"relay_ip", relayIP.String(), "domain", cfg.Domain, "media", media.String(), "limits", cfg.Limits)
	return s, nil
}

// Server is a running relay.
type Server struct {
	cfg    Config
	secret []byte
	turn   *turn.Server
	media  *mediaPeers        // the only peers relayed to
	ledger *ledger            // participants in session and their allocations
	limit  *connlimit.Limiter // bounds the open TURN/TCP and TURN/TLS connections
	conns  *connTracker       // and knows them by their two ends
	logger *slog.Logger
}

// Close stops the relay and its allocations.
func (s *Server) Close() error {
	return s.turn.Close()
}

// Allocations returns the number of live relay allocations.
func (s *Server) Allocations() int {
	return s.turn.AllocationCount()
}

// ICEServer returns the relay's URLs and fresh credentials for participant sid, who reached
// signaling at host (a host name or address, with or without a port; used when
// Config.Domain is empty). The credentials work until sid leaves (Left).
func (s *Server) ICEServer(host, sid string) (*livekit.ICEServer, error) {
	name := s.cfg.Domain
	if name == "" {
		name = host
		if h, _, err := net.SplitHostPort(host); err == nil {
			name = h
		}
	}
	if name == "" {
		return nil, errors.New("turn: no host name for the relay's URLs")
	}
	if err := s.ledger.join(sid); err != nil {
		return nil, err
	}
	user, password := s.credential(sid, time.Now().Add(s.cfg.CredentialTTL))
	var urls []string
	if s.cfg.UDPPort != 0 {
		urls = append(urls, "turn:"+net.JoinHostPort(name, strconv.Itoa(s.cfg.UDPPort))+"?transport=udp")
	}
	if s.cfg.TCPPort != 0 {
		urls = append(urls, "turn:"+net.JoinHostPort(name, strconv.Itoa(s.cfg.TCPPort))+"?transport=tcp")
	}
	if s.cfg.TLSPort != 0 {
		urls = append(urls, "turns:"+net.JoinHostPort(name, strconv.Itoa(s.cfg.TLSPort))+"?transport=tcp")
	}
	return &livekit.ICEServer{Urls: urls, Username: user, Credential: password}, nil
}

// Left ends participant sid's use of the relay: its credentials are refused from now on
// and its allocations closed.
func (s *Server) Left(sid string) {
	relays := s.ledger.leave(sid)
	for _, r := range relays {
		_ = r.Close()
	}
	if len(relays) > 0 {
		s.logger.Debug("participant left: allocations closed", "sid", sid, "allocations", len(relays))
	}
}

// quota is pion's QuotaHandler: whether participant sid may make one more allocation from
// client address src; pion answers 486 Allocation Quota Reached when not.
func (s *Server) quota(sid, _ string, src net.Addr) bool {
	if s.ledger.allows(sid, src) {
		return true
	}
	s.logger.Debug("allocation refused: quota reached", "sid", sid, "client", src.String())
	return false
}

// events returns the allocation lifecycle callbacks: per-address counts, and connections
// that lost their allocation.
func (s *Server) events() turn.EventHandler {
	return turn.EventHandler{
		OnAllocationCreated: func(src, _ net.Addr, _, _, _ string, _ net.Addr, _ int) {
			s.ledger.created(src)
		},
		OnAllocationDeleted: func(src, dst net.Addr, _, _, _ string) {
			s.ledger.deleted(src)
			s.conns.unallocated(src, dst)
		},
	}
}

// localAddresses returns the machine's interface addresses, loopback included.
func localAddresses() ([]net.IP, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out = append(out, n.IP)
		}
	}
	return out, nil
}

// defaultRelayIP picks the relay address when none is configured: the bind address, else
// the first non-loopback IPv4 address, else 127.0.0.1. Only the SFU on this machine sends
// to it, so any local address works; a non-loopback one keeps browsers from discarding the
// candidate.
func defaultRelayIP(bind string, local []net.IP) net.IP {
	if ip := net.ParseIP(bind); ip != nil && !ip.IsUnspecified() {
		return ip
	}
	for _, ip := range local {
		if ip.To4() != nil && !ip.IsLoopback() {
			return ip
		}
	}
	return net.IPv4(127, 0, 0, 1)
}
