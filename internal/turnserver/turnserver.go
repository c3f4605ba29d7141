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
	"strings"
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
	// BindIP is the address the listeners and relay sockets bind to, and its family: an
	// IPv4 or IPv6 address; 0.0.0.0: every IPv4 address; empty or "::": every address,
	// IPv4 and IPv6 (dual-stack listeners).
	BindIP string
	// RelayIPs are the addresses relayed allocations are given as (the SFU sends to them),
	// at most one per family. A family without one: BindIP, else the machine's first
	// non-loopback address of that family, else its loopback address. A client gets a
	// relayed address of the family it asks for (REQUESTED-ADDRESS-FAMILY), else of the
	// family it reached the relay over.
	RelayIPs []string
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

	bind := net.ParseIP(cfg.BindIP)
	if cfg.BindIP != "" && bind == nil {
		return nil, fmt.Errorf("turn: bind address %q is not an IP address", cfg.BindIP)
	}
	gen, relayIPs, err := newFamilyGenerator(cfg, bind, local)
	if err != nil {
		return nil, err
	}
	relay := &relayGenerator{RelayAddressGenerator: gen, s: s}
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
		network, host := listenAddr("udp", bind)
		pc, err := net.ListenPacket(network, net.JoinHostPort(host, strconv.Itoa(cfg.UDPPort)))
		if err != nil {
			return fail(fmt.Errorf("turn: listen udp %d: %w", cfg.UDPPort, err))
		}
		closers = append(closers, pc.Close)
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{PacketConn: &screenedPacketConn{pc, s},
			RelayAddressGenerator: relay, PermissionHandler: s.permitted})
	}
	listen := func(port int, tlsConf *tls.Config) error {
		network, host := listenAddr("tcp", bind)
		l, err := net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("turn: listen tcp %d: %w", port, err)
		}
		closers = append(closers, l.Close)
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{Listener: &turnListener{Listener: s.limit.Listener(l), tls: tlsConf, s: s},
			RelayAddressGenerator: relay, PermissionHandler: s.permitted})
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
		"relay_ip", relayIPs, "domain", cfg.Domain, "media", media.String(), "limits", cfg.Limits)
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

// listenAddr returns the network ("udp" or "tcp" with a family suffix, or none for Go's
// dual-stack wildcard socket) and host a listener of proto opens on bind.
func listenAddr(proto string, bind net.IP) (string, string) {
	switch {
	case bind == nil || bind.Equal(net.IPv6unspecified):
		return proto, ""
	case bind.To4() != nil:
		return proto + "4", bind.String()
	default:
		return proto + "6", bind.String()
	}
}

// familyGenerator makes relay sockets of the family each allocation asks for (pion names it
// in the network: "udp4", "udp6", "tcp4", "tcp6"); a family the bind address excludes has
// no generator, and its allocations fail.
type familyGenerator struct {
	v4, v6 turn.RelayAddressGenerator
}

// newFamilyGenerator returns the relay generator for cfg and the relay address of each family
// it serves.
func newFamilyGenerator(cfg Config, bind net.IP, local []net.IP) (*familyGenerator, []string, error) {
	g := &familyGenerator{}
	var relayIPs []string
	for _, v4 := range []bool{true, false} {
		if bind != nil && (bind.To4() != nil) != v4 && !bind.Equal(net.IPv6unspecified) {
			continue // the bind address (0.0.0.0 included) is of the other family
		}
		ip, err := relayIP(cfg.RelayIPs, bind, local, v4)
		if err != nil {
			return nil, nil, err
		}
		address := "0.0.0.0"
		if !v4 {
			address = "::"
		}
		if bind != nil && !bind.IsUnspecified() {
			address = bind.String()
		}
		var gen turn.RelayAddressGenerator = &turn.RelayAddressGeneratorStatic{RelayAddress: ip, Address: address}
		if cfg.RelayPortMin > 0 || cfg.RelayPortMax > 0 {
			gen = &turn.RelayAddressGeneratorPortRange{RelayAddress: ip, Address: address,
				MinPort: uint16(cfg.RelayPortMin), MaxPort: uint16(cfg.RelayPortMax)}
		}
		if v4 {
			g.v4 = gen
		} else {
			g.v6 = gen
		}
		relayIPs = append(relayIPs, ip.String())
	}
	return g, relayIPs, nil
}

// errNoFamily refuses an allocation of a family the relay does not serve.
var errNoFamily = errors.New("turn: no relay address of the requested family")

func (g *familyGenerator) pick(network string) (turn.RelayAddressGenerator, error) {
	gen := g.v4
	if strings.HasSuffix(network, "6") {
		gen = g.v6
	}
	if gen == nil {
		return nil, errNoFamily
	}
	return gen, nil
}

// Validate validates each family's generator.
func (g *familyGenerator) Validate() error {
	for _, gen := range []turn.RelayAddressGenerator{g.v4, g.v6} {
		if gen != nil {
			if err := gen.Validate(); err != nil {
				return err
			}
		}
	}
	return nil
}

// AllocatePacketConn opens a UDP relay socket of conf.Network's family.
func (g *familyGenerator) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	gen, err := g.pick(conf.Network)
	if err != nil {
		return nil, nil, err
	}
	return gen.AllocatePacketConn(conf)
}

// AllocateListener opens a TCP relay listener of conf.Network's family.
func (g *familyGenerator) AllocateListener(conf turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	gen, err := g.pick(conf.Network)
	if err != nil {
		return nil, nil, err
	}
	return gen.AllocateListener(conf)
}

// AllocateConn dials a TCP peer over conf.Network's family.
func (g *familyGenerator) AllocateConn(conf turn.AllocateConnConfig) (net.Conn, error) {
	gen, err := g.pick(conf.Network)
	if err != nil {
		return nil, err
	}
	return gen.AllocateConn(conf)
}

// relayIP picks the relay address of one family: the configured one of that family, else
// the bind address, else the first non-loopback address of the family, else its loopback
// address. Only the SFU on this machine sends to it, so any local address works; a
// non-loopback one keeps browsers from discarding the candidate.
func relayIP(configured []string, bind net.IP, local []net.IP, v4 bool) (net.IP, error) {
	for _, a := range configured {
		ip := net.ParseIP(a)
		if ip == nil {
			return nil, fmt.Errorf("turn: relay address %q is not an IP address", a)
		}
		if (ip.To4() != nil) == v4 {
			return ip, nil
		}
	}
	if bind != nil && !bind.IsUnspecified() {
		return bind, nil
	}
	for _, ip := range local {
		if (ip.To4() != nil) == v4 && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	if v4 {
		return net.IPv4(127, 0, 0, 1), nil
	}
	return net.IPv6loopback, nil
}
