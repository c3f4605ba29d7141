package linksim

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/pion/turn/v5"

	"github.com/sanke-edu/sanke/internal/connlimit"
	"github.com/sanke-edu/sanke/internal/pionlog"
)

// Defaults of RelayConfig.
const (
	// DefaultRealm is RelayConfig.Realm when it is not set.
	DefaultRealm = "linksim"
	// DefaultMaxAllocations is RelayConfig.MaxAllocations when it is not set: a few
	// clients, each with a publisher and a subscriber PeerConnection and a candidate or two.
	DefaultMaxAllocations = 32
	// DefaultMaxConnections is RelayConfig.MaxConnections when it is not set.
	DefaultMaxConnections = 32
)

var errTCPRelay = errors.New("linksim: TCP relay allocations (RFC 6062) are not offered: only UDP is impaired")

// RelayConfig configures a Relay. At least one of UDP and TCP must be set.
type RelayConfig struct {
	// UDP is the host:port of the TURN/UDP listener; empty: none.
	UDP string
	// TCP is the host:port of the TURN/TCP listener; empty: none.
	TCP string
	// RelayIP is the address allocations are given (the peer sends to it). Empty: the
	// listeners' host when it is a specific address, else the first non-loopback IPv4
	// address of the machine.
	RelayIP string
	// Username and Password are the static long-term credentials clients log in with.
	Username, Password string
	// Realm is the TURN realm; empty: DefaultRealm.
	Realm string
	// Up impairs what clients send through the relay, Down what the relay sends them.
	Up, Down Impairment
	// MaxAllocations bounds the allocations alive at once; 0: DefaultMaxAllocations.
	MaxAllocations int
	// MaxConnections bounds the open TURN/TCP connections; 0: DefaultMaxConnections.
	MaxConnections int
	// Logger receives the relay's logs (pion's included); nil: discarded.
	Logger *slog.Logger
}

// Relay is a TURN relay whose relayed sockets are impaired: a client that relays its media
// through it (a browser with iceTransportPolicy "relay") has a weak link to the peer,
// whatever server that is. It relays UDP only: TCP relay allocations are refused.
type Relay struct {
	cfg     RelayConfig
	relayIP net.IP
	udp     net.PacketConn // nil: none
	tcp     net.Listener   // nil: none
	server  *turn.Server
	logger  *slog.Logger

	upStats, downStats counters // every allocation's, closed ones included

	mu       sync.Mutex
	up, down Impairment
	conns    map[*Conn]struct{} // the live allocations' relayed sockets
	streams  uint64             // allocations made, numbering their random streams
}

// NewRelay starts a relay.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	if cfg.UDP == "" && cfg.TCP == "" {
		return nil, errors.New("linksim: relay needs a UDP or a TCP address")
	}
	if cfg.Username == "" || cfg.Password == "" {
		return nil, errors.New("linksim: relay needs a username and a password")
	}
	if err := cfg.Up.Validate(); err != nil {
		return nil, fmt.Errorf("linksim: up: %w", err)
	}
	if err := cfg.Down.Validate(); err != nil {
		return nil, fmt.Errorf("linksim: down: %w", err)
	}
	if cfg.Realm == "" {
		cfg.Realm = DefaultRealm
	}
	if cfg.MaxAllocations <= 0 {
		cfg.MaxAllocations = DefaultMaxAllocations
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = cfg.Logger.With("component", "linksim")
	host, err := listenHost(cfg.UDP, cfg.TCP)
	if err != nil {
		return nil, err
	}
	r := &Relay{cfg: cfg, logger: cfg.Logger, up: cfg.Up, down: cfg.Down, conns: map[*Conn]struct{}{}}
	if r.relayIP, err = relayIP(cfg.RelayIP, host); err != nil {
		return nil, err
	}
	bind := host
	if bind == "" {
		bind = "0.0.0.0"
		if r.relayIP.To4() == nil {
			bind = "::"
		}
	}
	gen := &relayGenerator{RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: r.relayIP, Address: bind}, r: r}
	sc := turn.ServerConfig{
		Realm:         cfg.Realm,
		AuthHandler:   r.authenticate,
		QuotaHandler:  r.quota,
		LoggerFactory: pionlog.New(r.logger),
	}
	if cfg.UDP != "" {
		if r.udp, err = net.ListenPacket("udp", cfg.UDP); err != nil {
			return nil, fmt.Errorf("linksim: %w", err)
		}
		sc.PacketConnConfigs = []turn.PacketConnConfig{{PacketConn: r.udp, RelayAddressGenerator: gen}}
	}
	if cfg.TCP != "" {
		l, err := net.Listen("tcp", cfg.TCP)
		if err != nil {
			r.closeListeners()
			return nil, fmt.Errorf("linksim: %w", err)
		}
		r.tcp = l
		limit, err := connlimit.New(connlimit.Config{Max: cfg.MaxConnections, MaxPerAddr: cfg.MaxConnections,
			Logger: r.logger.With("listener", "turn-tcp")})
		if err != nil {
			r.closeListeners()
			return nil, err
		}
		sc.ListenerConfigs = []turn.ListenerConfig{{Listener: limit.Listener(l), RelayAddressGenerator: gen}}
	}
	if r.server, err = turn.NewServer(sc); err != nil {
		r.closeListeners()
		return nil, fmt.Errorf("linksim: %w", err)
	}
	r.logger.Info("relay ready", "udp", addrString(r.UDPAddr()), "tcp", addrString(r.TCPAddr()), "relay_ip", r.relayIP.String(),
		"up", cfg.Up.String(), "down", cfg.Down.String())
	return r, nil
}

// closeListeners closes the listeners of a relay that failed to start.
func (r *Relay) closeListeners() {
	if r.udp != nil {
		_ = r.udp.Close()
	}
	if r.tcp != nil {
		_ = r.tcp.Close()
	}
}

// listenHost returns the host the listeners share; empty: all addresses.
func listenHost(addrs ...string) (string, error) {
	host, seen := "", false
	for _, a := range addrs {
		if a == "" {
			continue
		}
		h, _, err := net.SplitHostPort(a)
		if err != nil {
			return "", fmt.Errorf("linksim: listen address %q: %w", a, err)
		}
		if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
			h = ""
		}
		if seen && h != host {
			return "", fmt.Errorf("linksim: the UDP and TCP listeners must share a host, not %q and %q", host, h)
		}
		host, seen = h, true
	}
	return host, nil
}

// relayIP chooses the address allocations are given: the configured one, else the
// listeners' host, else the first non-loopback IPv4 address (browsers may ignore loopback
// candidates), else 127.0.0.1.
func relayIP(configured, host string) (net.IP, error) {
	for _, s := range []string{configured, host} {
		if s == "" {
			continue
		}
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("linksim: relay address %q is not an IP address", s)
		}
		return ip, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("linksim: local addresses: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP, nil
		}
	}
	return net.IPv4(127, 0, 0, 1), nil
}

// authenticate is pion's AuthHandler: the static credentials only.
func (r *Relay) authenticate(ra *turn.RequestAttributes) (string, []byte, bool) {
	if ra.Username != r.cfg.Username || ra.Realm != r.cfg.Realm {
		return "", nil, false
	}
	return ra.Username, turn.GenerateAuthKey(r.cfg.Username, r.cfg.Realm, r.cfg.Password), true
}

// quota is pion's QuotaHandler: answered 486 Allocation Quota Reached at the bound.
// (AllocatePacketConn enforces the bound itself against racing requests.)
func (r *Relay) quota(_, _ string, src net.Addr) bool {
	if r.Allocations() < r.cfg.MaxAllocations {
		return true
	}
	r.logger.Warn("allocation refused: too many", "client", src.String(), "max", r.cfg.MaxAllocations)
	return false
}

// Close stops the relay and closes its allocations, waiting for their links to stop.
// TURN/TCP connections end when their clients close them.
func (r *Relay) Close() error {
	err := r.server.Close()
	// pion closes the allocations in the background once its read loops end; close them
	// here, so that nothing of the relay runs after Close.
	r.mu.Lock()
	conns := make([]*Conn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return err
}

// UDPAddr returns the TURN/UDP listener's address, or nil.
func (r *Relay) UDPAddr() net.Addr {
	if r.udp == nil {
		return nil
	}
	return r.udp.LocalAddr()
}

// TCPAddr returns the TURN/TCP listener's address, or nil.
func (r *Relay) TCPAddr() net.Addr {
	if r.tcp == nil {
		return nil
	}
	return r.tcp.Addr()
}

// Allocations returns the number of live allocations.
func (r *Relay) Allocations() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// Stats returns what the relay did with every allocation's packets so far: up is what
// clients sent to their peers, down what the peers sent them.
func (r *Relay) Stats() (up, down Stats) {
	return r.upStats.stats(), r.downStats.stats()
}

// SetImpairment changes the link of every allocation, live and to come, from now on.
func (r *Relay) SetImpairment(up, down Impairment) error {
	if err := up.Validate(); err != nil {
		return fmt.Errorf("linksim: up: %w", err)
	}
	if err := down.Validate(); err != nil {
		return fmt.Errorf("linksim: down: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.up, r.down = up, down
	for c := range r.conns {
		c.up.set(up)
		c.down.set(down)
	}
	r.logger.Info("link changed", "up", up.String(), "down", down.String())
	return nil
}

// ICEServer is an entry of RTCConfiguration.iceServers.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username"`
	Credential string   `json:"credential"`
}

// ICEServer returns the entry of RTCConfiguration.iceServers that reaches this relay.
func (r *Relay) ICEServer() ICEServer {
	s := ICEServer{Username: r.cfg.Username, Credential: r.cfg.Password}
	add := func(a net.Addr, transport string) {
		host, port, err := net.SplitHostPort(a.String())
		if err != nil {
			return
		}
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			host = r.relayIP.String()
		}
		s.URLs = append(s.URLs, "turn:"+net.JoinHostPort(host, port)+"?transport="+transport)
	}
	if a := r.UDPAddr(); a != nil {
		add(a, "udp")
	}
	if a := r.TCPAddr(); a != nil {
		add(a, "tcp")
	}
	return s
}

// relayGenerator makes impaired relayed sockets, within the allocation bound.
type relayGenerator struct {
	turn.RelayAddressGenerator
	r *Relay
}

// AllocatePacketConn opens the relayed socket of a UDP allocation, impaired.
func (g *relayGenerator) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	r := g.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.conns) >= r.cfg.MaxAllocations {
		return nil, nil, fmt.Errorf("linksim: %d allocations already", len(r.conns))
	}
	pc, addr, err := g.RelayAddressGenerator.AllocatePacketConn(conf)
	if err != nil {
		return nil, nil, err
	}
	var c *Conn
	c, err = wrap(pc, r.up, r.down, r.streams, &r.upStats, &r.downStats, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.conns, c)
	})
	if err != nil {
		_ = pc.Close()
		return nil, nil, err
	}
	r.streams++
	r.conns[c] = struct{}{}
	r.logger.Debug("allocation", "relayed", addr.String(), "allocations", len(r.conns))
	return c, addr, nil
}

// AllocateListener refuses TCP relay allocations: their streams cannot be impaired the
// way datagrams are.
func (g *relayGenerator) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errTCPRelay
}

// AllocateConn refuses TCP relay connections (see AllocateListener).
func (g *relayGenerator) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errTCPRelay
}

// addrString writes a possibly missing address for logs.
func addrString(a net.Addr) string {
	if a == nil {
		return "none"
	}
	return a.String()
}
