package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"

	"github.com/sanke-edu/sanke/internal/connlimit"
	"github.com/sanke-edu/sanke/internal/turnserver"
	"github.com/sanke-edu/sanke/sfu/room"
)

// startTURN starts the embedded TURN relay when turn.enabled is set and hands its
// credentials to the rooms' join responses (rc, before the rooms' manager copies it).
func (s *Server) startTURN(rc *room.Config, bindIP string) error {
	c := s.cfg.TURN
	if !c.Enabled {
		return nil
	}
	ips, err := mediaIPs(s.cfg.RTC.NodeIPs(), bindIP, s.cfg.RTC.IncludeLoopback)
	if err != nil {
		return fmt.Errorf("turn: media addresses: %w", err)
	}
	tc := turnserver.Config{
		UDPPort:       c.UDPPort,
		TCPPort:       c.TCPPort,
		TLSPort:       c.TLSPort,
		BindIP:        bindIP,
		RelayIPs:      s.cfg.RTC.NodeIPs(),
		RelayPortMin:  c.RelayPortRangeStart,
		RelayPortMax:  c.RelayPortRangeEnd,
		Domain:        c.Domain,
		Media:         turnserver.Media{IPs: ips, UDPPort: s.cfg.RTC.UDPPort, TCPPort: s.cfg.RTC.TCPPort},
		Secret:        c.Secret,
		CredentialTTL: c.CredentialTTL,
		Limits: turnserver.Limits{
			Allocations:               c.MaxAllocations,
			AllocationsPerParticipant: c.MaxAllocationsPerParticipant,
			AllocationsPerAddress:     c.MaxAllocationsPerAddress,
			Connections:               c.MaxConnections,
			ConnectionsPerAddress:     c.MaxConnectionsPerAddress,
			SetupTimeout:              c.SetupTimeout,
		},
	}
	if c.TLSPort != 0 {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return fmt.Errorf("turn: certificate: %w", err)
		}
		tc.Certificate = &cert
	}
	relay, err := turnserver.Start(tc, s.logger)
	if err != nil {
		return err
	}
	s.turn = relay
	rc.TURN = relay.ICEServer
	return nil
}

// endTURNOnLeave ends a participant's use of the relay, if any, when it leaves. The rooms'
// manager must exist.
func (s *Server) endTURNOnLeave() {
	if s.turn == nil {
		return
	}
	s.rooms.AddObserver(room.ObserverFunc(func(e room.Event) {
		if e.Type == room.EventParticipantLeft && e.Participant != nil {
			s.turn.Left(e.Participant.Sid)
		}
	}))
}

// iceTCPLimit returns the bounds of the ICE-TCP connections (rtc.tcp_max_conns and
// rtc.tcp_max_conns_per_ip). The SFU's own media addresses are not held to the per-address
// cap: the relay's TCP connections to the ICE-TCP port (RFC 6062) come from them, and the
// relay bounds those itself.
func (s *Server) iceTCPLimit(bindIP string) (connlimit.Config, error) {
	r := s.cfg.RTC
	if r.TCPPort == 0 {
		return connlimit.Config{}, nil
	}
	ips, err := mediaIPs(r.NodeIPs(), bindIP, r.IncludeLoopback)
	if err != nil {
		return connlimit.Config{}, fmt.Errorf("ice-tcp: media addresses: %w", err)
	}
	own := map[netip.Addr]bool{}
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip); ok {
			own[a.Unmap()] = true
		}
	}
	return connlimit.Config{Max: r.TCPMaxConns, MaxPerAddr: r.TCPMaxConnsPerIP, Exempt: func(a netip.Addr) bool { return own[a] },
		Logger: s.logger.With("listener", "ice-tcp", "settings", "rtc.tcp_max_conns, rtc.tcp_max_conns_per_ip")}, nil
}

// mediaIPs returns the addresses the SFU's ICE candidates advertise, the only ones the
// relay forwards to: for each family the media sockets carry (see room.MediaConfig.BindIP),
// its rtc.node_ip when set, else the bind address, else every interface address of that
// family (loopback only when loopback candidates are on).
func mediaIPs(nodeIPs []string, bindIP string, loopback bool) ([]net.IP, error) {
	bind := net.ParseIP(bindIP)
	var ips []net.IP
	var named [2]bool // IPv4, IPv6 given a node IP or the bind address
	family := func(ip net.IP) int {
		if ip.To4() != nil {
			return 0
		}
		return 1
	}
	candidates := make([]net.IP, 0, len(nodeIPs)+1)
	for _, a := range nodeIPs {
		candidates = append(candidates, net.ParseIP(a))
	}
	if bind != nil && !bind.IsUnspecified() {
		candidates = append(candidates, bind)
	}
	for _, ip := range candidates {
		if ip != nil && !named[family(ip)] {
			named[family(ip)] = true
			ips = append(ips, ip)
		}
	}
	// The families the media sockets carry: a specific bind address's only, 0.0.0.0 IPv4.
	carried := [2]bool{true, true}
	if bind != nil && !bind.Equal(net.IPv6unspecified) {
		carried[1-family(bind)] = false
	}
	if (named[0] || !carried[0]) && (named[1] || !carried[1]) {
		return ips, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || named[family(n.IP)] || !carried[family(n.IP)] || n.IP.IsLinkLocalUnicast() || (!loopback && n.IP.IsLoopback()) {
			continue
		}
		ips = append(ips, n.IP)
	}
	return ips, nil
}

// closeSockets closes the media sockets and the TURN relay.
func (s *Server) closeSockets() error {
	err := s.media.Close()
	if s.turn != nil {
		if terr := s.turn.Close(); err == nil {
			err = terr
		}
	}
	return err
}
