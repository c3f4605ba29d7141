// Package turnserver runs Sanke's embedded TURN relay (RFC 8656, pion/turn) for clients
// whose networks let neither UDP nor Sanke's ICE-TCP port through: a school firewall that
// only opens web ports still lets TURN over TLS on 443 pass. A client gets credentials
// for it in its join response (ICEServer); the browser then relays its media through
// this server to the SFU on the same machine.
//
// Credentials are the TURN REST API's time-limited ones: the user name is
// "<expiry unix time>:<participant identity>" and the password an HMAC of it under a
// secret that only this process knows, so nothing is stored per user and a credential
// stops working when it expires. The relay only ever forwards to this machine's own
// addresses: it is not an open relay for anyone holding a join token.
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

	"github.com/sanke-edu/sanke/internal/pionlog"
)

// Realm is the TURN realm of Sanke's relay.
const Realm = "sanke"

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
	// CredentialTTL is how long handed-out credentials stay valid.
	CredentialTTL time.Duration
}

// Server is a running relay.
type Server struct {
	cfg    Config
	secret string
	turn   *turn.Server
	local  []net.IP // this machine's addresses: the only peers relayed to
	logger *slog.Logger
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
		cfg.CredentialTTL = 24 * time.Hour
	}
	local, err := localAddresses()
	if err != nil {
		return nil, fmt.Errorf("turn: local addresses: %w", err)
	}
	relayIP := net.ParseIP(cfg.RelayIP)
	if relayIP == nil {
		relayIP = defaultRelayIP(cfg.BindIP, local)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, secret: base64.StdEncoding.EncodeToString(key), local: local, logger: logger.With("component", "turn")}

	bind := cfg.BindIP
	if bind == "" {
		bind = "0.0.0.0"
	}
	var gen turn.RelayAddressGenerator = &turn.RelayAddressGeneratorStatic{RelayAddress: relayIP, Address: bind}
	if cfg.RelayPortMin > 0 || cfg.RelayPortMax > 0 {
		gen = &turn.RelayAddressGeneratorPortRange{RelayAddress: relayIP, Address: bind,
			MinPort: uint16(cfg.RelayPortMin), MaxPort: uint16(cfg.RelayPortMax)}
	}
	var closers []func() error
	fail := func(err error) (*Server, error) {
		for _, c := range closers {
			_ = c()
		}
		return nil, err
	}
	sc := turn.ServerConfig{
		Realm:         Realm,
		AuthHandler:   turn.LongTermTURNRESTAuthHandler(s.secret, pionlog.New(s.logger).NewLogger("turn")),
		LoggerFactory: pionlog.New(s.logger),
	}
	if cfg.UDPPort != 0 {
		pc, err := net.ListenPacket("udp4", net.JoinHostPort(bind, strconv.Itoa(cfg.UDPPort)))
		if err != nil {
			return fail(fmt.Errorf("turn: listen udp %d: %w", cfg.UDPPort, err))
		}
		closers = append(closers, pc.Close)
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{PacketConn: pc,
			RelayAddressGenerator: gen, PermissionHandler: s.permitted})
	}
	listen := func(port int, wrap func(net.Listener) net.Listener) error {
		l, err := net.Listen("tcp4", net.JoinHostPort(bind, strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("turn: listen tcp %d: %w", port, err)
		}
		closers = append(closers, l.Close)
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{Listener: wrap(l),
			RelayAddressGenerator: gen, PermissionHandler: s.permitted})
		return nil
	}
	if cfg.TCPPort != 0 {
		if err := listen(cfg.TCPPort, func(l net.Listener) net.Listener { return l }); err != nil {
			return fail(err)
		}
	}
	if cfg.TLSPort != 0 {
		tlsConf := &tls.Config{Certificates: []tls.Certificate{*cfg.Certificate}, MinVersion: tls.VersionTLS12}
		if err := listen(cfg.TLSPort, func(l net.Listener) net.Listener { return tls.NewListener(l, tlsConf) }); err != nil {
			return fail(err)
		}
	}
	if s.turn, err = turn.NewServer(sc); err != nil {
		return fail(fmt.Errorf("turn: %w", err))
	}
	s.logger.Info("turn relay ready", "udp_port", cfg.UDPPort, "tcp_port", cfg.TCPPort, "tls_port", cfg.TLSPort,
		"relay_ip", relayIP.String(), "domain", cfg.Domain)
	return s, nil
}

// Close stops the relay and its allocations.
func (s *Server) Close() error {
	return s.turn.Close()
}

// Allocations returns the number of live relay allocations.
func (s *Server) Allocations() int {
	return s.turn.AllocationCount()
}

// ICEServer returns the relay's URLs and fresh credentials for participant identity, who
// reached signaling at host (a host name or address, with or without a port; used when
// Config.Domain is empty).
func (s *Server) ICEServer(host, identity string) (*livekit.ICEServer, error) {
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
	user, password, err := turn.GenerateLongTermTURNRESTCredentials(s.secret, identity, s.cfg.CredentialTTL)
	if err != nil {
		return nil, err
	}
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

// permitted lets a client relay only to this machine's addresses: the SFU.
func (s *Server) permitted(client net.Addr, peer net.IP) bool {
	for _, ip := range s.local {
		if ip.Equal(peer) {
			return true
		}
	}
	s.logger.Debug("relay to a foreign address refused", "client", client.String(), "peer", peer.String())
	return false
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
