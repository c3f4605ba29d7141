package turnserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// Media are the SFU's media endpoints, the only peers the relay forwards to: its ICE UDP
// mux port and its ICE-TCP port on each address its ICE candidates advertise.
type Media struct {
	// IPs are the addresses the SFU's candidates advertise (IPv4).
	IPs []net.IP
	// UDPPort is the SFU's ICE UDP mux port.
	UDPPort int
	// TCPPort is the SFU's ICE-TCP port; 0: none, and no TCP peer at all.
	TCPPort int
}

var errForbiddenPeer = errors.New("turn: peer is not one of the SFU's media endpoints")

// mediaPeers answers whether an address is one of the SFU's media endpoints.
type mediaPeers struct {
	ips              map[netip.Addr]struct{}
	udpPort, tcpPort uint16
}

func newMediaPeers(m Media) (*mediaPeers, error) {
	if m.UDPPort <= 0 || m.UDPPort > 65535 || m.TCPPort < 0 || m.TCPPort > 65535 || len(m.IPs) == 0 {
		return nil, fmt.Errorf("turn: media endpoints %v ports %d/%d: need addresses and a UDP port", m.IPs, m.UDPPort, m.TCPPort)
	}
	p := &mediaPeers{ips: map[netip.Addr]struct{}{}, udpPort: uint16(m.UDPPort), tcpPort: uint16(m.TCPPort)}
	for _, ip := range m.IPs {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			return nil, fmt.Errorf("turn: media address %v", ip)
		}
		p.ips[a.Unmap()] = struct{}{}
	}
	return p, nil
}

// String lists the endpoints, for the log.
func (p *mediaPeers) String() string {
	var ips []string
	for a := range p.ips {
		ips = append(ips, a.String())
	}
	slices.Sort(ips)
	return fmt.Sprintf("%s udp %d tcp %d", strings.Join(ips, ","), p.udpPort, p.tcpPort)
}

// ip reports whether ip is one of the SFU's addresses.
func (p *mediaPeers) ip(ip netip.Addr) bool {
	_, ok := p.ips[ip.Unmap()]
	return ok
}

// udp reports whether a is the SFU's UDP media endpoint.
func (p *mediaPeers) udp(a netip.AddrPort) bool {
	return a.Port() == p.udpPort && p.ip(a.Addr())
}

// tcp reports whether a is the SFU's ICE-TCP endpoint.
func (p *mediaPeers) tcp(a netip.AddrPort) bool {
	return p.tcpPort != 0 && a.Port() == p.tcpPort && p.ip(a.Addr())
}

// permission reports whether a permission for a may be installed: permissions are per
// address (RFC 8656 section 9), so a port of 0 stands for the address, else it must be one
// of the media ports.
func (p *mediaPeers) permission(a netip.AddrPort) bool {
	return p.ip(a.Addr()) && (a.Port() == 0 || p.udp(a) || p.tcp(a))
}

// addrPort converts a UDP or TCP address; anything else gives the zero AddrPort, which no
// check accepts.
func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// permitted is pion's PermissionHandler (CreatePermission, ChannelBind, Connect): only the
// SFU's addresses. Ports are checked by refusal and by the relay sockets.
func (s *Server) permitted(client net.Addr, peer net.IP) bool {
	if a, ok := netip.AddrFromSlice(peer); ok && s.media.ip(a) {
		return true
	}
	s.logger.Debug("relay to a foreign address refused", "client", client.String(), "peer", peer.String())
	return false
}

// refusal returns the answer to a request that names a peer other than the SFU's media
// endpoints, or nil to let pion handle the message. pion's permission handler sees only
// the peer's address, not its port, so such CreatePermission, ChannelBind and Connect
// requests are answered here: 403 Forbidden, with MESSAGE-INTEGRITY, which clients require
// on error responses. Requests that do not authenticate pass on to pion, which refuses
// them.
func (s *Server) refusal(raw []byte) []byte {
	if len(raw) < 20 || !stun.IsMessage(raw) {
		return nil
	}
	var t stun.MessageType
	t.ReadValue(binary.BigEndian.Uint16(raw))
	var allowed func(netip.AddrPort) bool
	switch {
	case t.Class != stun.ClassRequest:
		return nil
	case t.Method == stun.MethodCreatePermission:
		allowed = s.media.permission
	case t.Method == stun.MethodChannelBind:
		allowed = s.media.udp
	case t.Method == stun.MethodConnect:
		allowed = s.media.tcp
	default:
		return nil
	}
	msg := &stun.Message{Raw: raw}
	if err := msg.Decode(); err != nil {
		return nil
	}
	var peers []netip.AddrPort
	_ = msg.ForEach(stun.AttrXORPeerAddress, func(m *stun.Message) error {
		var a stun.XORMappedAddress
		if err := a.GetFromAs(m, stun.AttrXORPeerAddress); err != nil {
			return err
		}
		peers = append(peers, addrPort(&net.UDPAddr{IP: a.IP, Port: a.Port}))
		return nil
	})
	if !slices.ContainsFunc(peers, func(a netip.AddrPort) bool { return !allowed(a) }) {
		return nil
	}
	var user stun.Username
	var realm stun.Realm
	if user.GetFrom(msg) != nil || realm.GetFrom(msg) != nil {
		return nil
	}
	sid, _, key, ok := s.key(user.String(), realm.String())
	if !ok || stun.MessageIntegrity(key).Check(msg) != nil {
		return nil
	}
	s.logger.Debug("relay to a port other than the SFU's refused", "sid", sid, "method", t.Method.String(), "peers", peers)
	res, err := stun.Build(&stun.Message{TransactionID: msg.TransactionID}, stun.NewType(t.Method, stun.ClassErrorResponse),
		&stun.ErrorCodeAttribute{Code: stun.CodeForbidden, Reason: []byte("Forbidden: not a media endpoint")},
		stun.MessageIntegrity(key), stun.Fingerprint)
	if err != nil {
		return nil
	}
	return res.Raw
}

// screenedPacketConn is the TURN/UDP socket, answering refused requests itself (refusal).
type screenedPacketConn struct {
	net.PacketConn
	s *Server
}

// ReadFrom returns the next datagram that pion should handle.
func (c *screenedPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		reply := c.s.refusal(p[:n])
		if reply == nil {
			return n, addr, nil
		}
		_, _ = c.PacketConn.WriteTo(reply, addr)
	}
}

// relayGenerator makes the relay sockets of allocations, counted against the quotas of
// the participant whose credential asked (the allocation's user id), and dials Connect
// peers, only the SFU's ICE-TCP port.
type relayGenerator struct {
	turn.RelayAddressGenerator
	s *Server
}

// AllocatePacketConn opens the relay socket of a UDP allocation.
func (g *relayGenerator) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	conn, addr, err := g.RelayAddressGenerator.AllocatePacketConn(conf)
	if err != nil {
		return nil, nil, err
	}
	r := &relayPacketConn{PacketConn: conn, s: g.s, sid: conf.UserID}
	if err := g.s.ledger.take(conf.UserID, r); err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return r, addr, nil
}

// AllocateListener opens the relay listener of a TCP allocation (RFC 6062).
func (g *relayGenerator) AllocateListener(conf turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	l, addr, err := g.RelayAddressGenerator.AllocateListener(conf)
	if err != nil {
		return nil, nil, err
	}
	r := &relayListener{Listener: l, s: g.s, sid: conf.UserID}
	if err := g.s.ledger.take(conf.UserID, r); err != nil {
		_ = l.Close()
		return nil, nil, err
	}
	return r, addr, nil
}

// AllocateConn dials a TCP allocation's peer (Connect): only the SFU's ICE-TCP port.
func (g *relayGenerator) AllocateConn(conf turn.AllocateConnConfig) (net.Conn, error) {
	if !g.s.media.tcp(addrPort(conf.RemoteAddr)) {
		return nil, errForbiddenPeer
	}
	return g.RelayAddressGenerator.AllocateConn(conf)
}

// relayPacketConn is a UDP allocation's relay socket: it exchanges packets with the SFU's
// UDP media endpoint only, and frees its quota when closed.
type relayPacketConn struct {
	net.PacketConn
	s      *Server
	sid    string
	closed closeOnce
}

// WriteTo relays a client's packet, to the SFU only.
func (c *relayPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.s.media.udp(addrPort(addr)) {
		return 0, errForbiddenPeer
	}
	return c.PacketConn.WriteTo(p, addr)
}

// ReadFrom returns the next packet from the SFU; packets from anywhere else are dropped.
func (c *relayPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.s.media.udp(addrPort(addr)) {
			return n, addr, err
		}
	}
}

// Close closes the socket (which ends its allocation) and frees its quota.
func (c *relayPacketConn) Close() error {
	return c.closed.do(func() error {
		c.s.ledger.release(c.sid, c)
		return c.PacketConn.Close()
	})
}

// relayListener is a TCP allocation's relay listener: it accepts connections from the
// SFU's ICE-TCP endpoint only, and frees its quota when closed.
type relayListener struct {
	net.Listener
	s      *Server
	sid    string
	closed closeOnce
}

// Accept returns the next connection from the SFU; others are closed.
func (l *relayListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.s.media.tcp(addrPort(c.RemoteAddr())) {
			return c, err
		}
		_ = c.Close()
	}
}

// Close closes the listener (which ends its allocation) and frees its quota.
func (l *relayListener) Close() error {
	return l.closed.do(func() error {
		l.s.ledger.release(l.sid, l)
		return l.Listener.Close()
	})
}
