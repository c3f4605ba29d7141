package turnserver

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/sanke-edu/sanke/test/prereq"
	tc "github.com/sanke-edu/sanke/test/testclient"
)

// relay is a relay on loopback with all three transports, and the "SFU" it serves: a UDP
// socket and an ICE-TCP listener, its only peers.
type relay struct {
	*Server
	sfu    net.PacketConn
	sfuTCP net.Listener
	host   string // the relay's and the SFU's address
}

var loopback = net.IPv4(127, 0, 0, 1)

// startRelay starts a relay; opt adjusts its configuration first.
func startRelay(t *testing.T, opt func(*Config)) *relay {
	t.Helper()
	return startRelayOn(t, loopback, opt)
}

// startRelayOn starts a relay bound to host, serving an SFU on host.
func startRelayOn(t *testing.T, host net.IP, opt func(*Config)) *relay {
	t.Helper()
	sfu, err := net.ListenUDP("udp", &net.UDPAddr{IP: host})
	if err != nil {
		prereq.Skip(t, "listen on %v: %v", host, err)
	}
	t.Cleanup(func() { _ = sfu.Close() })
	sfuTCP, err := net.ListenTCP("tcp", &net.TCPAddr{IP: host})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sfuTCP.Close() })
	cert := tc.SelfSigned(t)
	cfg := Config{
		UDPPort:     tc.FreePort(t, "udp"),
		TCPPort:     tc.FreePort(t, "tcp"),
		TLSPort:     tc.FreePort(t, "tcp"),
		Certificate: &cert,
		BindIP:      host.String(),
		Media: Media{IPs: []net.IP{host}, UDPPort: sfu.LocalAddr().(*net.UDPAddr).Port,
			TCPPort: sfuTCP.Addr().(*net.TCPAddr).Port},
	}
	if opt != nil {
		opt(&cfg)
	}
	s, err := Start(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &relay{Server: s, sfu: sfu, sfuTCP: sfuTCP, host: host.String()}
}

// addr returns the relay's host:port for transport ("udp", "tcp", "tls").
func (r *relay) addr(transport string) string {
	port := map[string]int{"udp": r.cfg.UDPPort, "tcp": r.cfg.TCPPort, "tls": r.cfg.TLSPort}[transport]
	return net.JoinHostPort(r.host, strconv.Itoa(port))
}

// credentials hands participant sid its credentials, checking the URLs they come with.
func (r *relay) credentials(t *testing.T, sid string) (string, string) {
	t.Helper()
	ice, err := r.ICEServer(net.JoinHostPort(r.host, "7880"), sid)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"turn:" + r.addr("udp") + "?transport=udp",
		"turn:" + r.addr("tcp") + "?transport=tcp",
		"turns:" + r.addr("tls") + "?transport=tcp",
	}
	if strings.Join(ice.Urls, " ") != strings.Join(want, " ") {
		t.Errorf("urls %v, want %v", ice.Urls, want)
	}
	if !strings.HasSuffix(ice.Username, ":"+sid) {
		t.Errorf("username %q does not name %q", ice.Username, sid)
	}
	return ice.Username, ice.Credential
}

// client is a TURN client of the relay over transport.
func (r *relay) client(t *testing.T, transport, user, password string) *turn.Client {
	t.Helper()
	return tc.TURNClient(t, transport, r.addr(transport), user, password)
}

// allocate logs in with user/password over transport and allocates a UDP relay.
func (r *relay) allocate(t *testing.T, transport, user, password string) (net.PacketConn, error) {
	t.Helper()
	return r.client(t, transport, user, password).Allocate()
}

// Media relayed both ways between a client and the SFU's socket, over each transport.
func TestRelay(t *testing.T) {
	testRelay(t, startRelay(t, nil))
}

// The same over IPv6 (a relay and SFU on ::1, as `sanke serve --bind ::1` runs them): the
// URLs name the host in brackets and the relayed address is IPv6.
func TestRelayIPv6(t *testing.T) {
	testRelay(t, startRelayOn(t, net.IPv6loopback, nil))
}

// An IPv4 client of a relay listening on every address (dual-stack sockets, the default
// bind) relays as before.
func TestRelayDualStack(t *testing.T) {
	testRelay(t, startRelayOn(t, loopback, func(c *Config) {
		c.BindIP, c.RelayIPs = "", []string{"127.0.0.1", "::1"}
	}))
}

func testRelay(t *testing.T, r *relay) {
	for _, transport := range []string{"udp", "tcp", "tls"} {
		t.Run(transport, func(t *testing.T) {
			user, password := r.credentials(t, "PA_"+transport)
			conn, err := r.allocate(t, transport, user, password)
			if err != nil {
				t.Fatalf("allocate: %v", err)
			}
			// Closing sends a refresh with lifetime 0 without waiting for the answer: the next
			// transport's count must not see this allocation, so wait until the relay drops it.
			defer tc.Eventually(t, 10*time.Second, "allocation removed after close", func() (bool, string) {
				n := r.Allocations()
				return n == 0, fmt.Sprintf("%d allocations", n)
			})
			defer func() { _ = conn.Close() }()
			if got := conn.LocalAddr().(*net.UDPAddr).IP.String(); got != r.host {
				t.Errorf("relayed address %s, want %s", got, r.host)
			}

			// Client -> relay -> SFU: the SFU sees the relay's address.
			if _, err := conn.WriteTo([]byte("hello sfu"), r.sfu.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			_ = r.sfu.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := r.sfu.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "hello sfu" {
				t.Fatalf("SFU read %q, %v", buf[:n], err)
			}
			if from.(*net.UDPAddr).Port != conn.LocalAddr().(*net.UDPAddr).Port {
				t.Errorf("SFU got it from %v, the relay is %v", from, conn.LocalAddr())
			}
			// SFU -> relay -> client.
			if _, err := r.sfu.WriteTo([]byte("hello point"), from); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err = conn.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "hello point" {
				t.Fatalf("client read %q, %v", buf[:n], err)
			}
			if n := r.Allocations(); n != 1 {
				t.Errorf("%d allocations, want 1", n)
			}
		})
	}
}

func TestRelayRefusesCredentials(t *testing.T) {
	r := startRelay(t, nil)
	user, password := r.credentials(t, "PA_point")
	expiredUser, expiredPassword := r.credential("PA_point", time.Now().Add(-time.Minute))
	strangerUser, strangerPassword := r.credential("PA_stranger", time.Now().Add(time.Hour)) // never joined
	for _, c := range []struct{ name, user, password string }{
		{"wrong password", user, "x" + password},
		{"expired", expiredUser, expiredPassword},
		{"other secret's credentials", "9999999999:PA_point", "c2Fua2U="},
		{"participant unknown", strangerUser, strangerPassword},
		{"no sid", "9999999999", r.password("9999999999")},
	} {
		if _, err := r.allocate(t, "udp", c.user, c.password); tc.TURNErrorCode(err) != 401 {
			t.Errorf("%s: %v, want 401", c.name, err)
		}
	}
	if n := r.Allocations(); n != 0 {
		t.Errorf("%d allocations after refused logins", n)
	}
	if _, err := r.allocate(t, "udp", user, password); err != nil {
		t.Errorf("valid credentials: %v", err)
	}
}

// TestRelayOnlyToMedia: permissions, channel binds and connects to anything but the SFU's
// media endpoints are refused with 403; packets sent to another port of the SFU's address
// (a Send indication needs no request) are dropped, and packets from one never reach the
// client.
func TestRelayOnlyToMedia(t *testing.T) {
	r := startRelay(t, nil)
	user, password := r.credentials(t, "PA_point")
	victim, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = victim.Close() }()
	victimAddr := victim.LocalAddr().(*net.UDPAddr)
	c := r.client(t, "udp", user, password)
	conn, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	for _, peer := range []*net.UDPAddr{victimAddr, {IP: net.IPv4(192, 0, 2, 1), Port: r.cfg.Media.UDPPort}} {
		if err := c.CreatePermission(peer); tc.TURNErrorCode(err) != 403 {
			t.Errorf("permission to %v: %v, want 403", peer, err)
		}
		if err := tc.TURNChannelBind(c, user, password, peer, 0x4000); tc.TURNErrorCode(err) == 0 {
			t.Errorf("channel bind to %v: %v, want an error", peer, err)
		}
	}
	alloc, err := r.client(t, "tcp", user, password).AllocateTCP()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alloc.Connect(&net.TCPAddr{IP: loopback, Port: victimAddr.Port}); tc.TURNErrorCode(err) != 403 {
		t.Errorf("connect to %v: %v, want 403", victimAddr, err)
	}
	if _, err := alloc.Connect(r.sfuTCP.Addr()); err != nil {
		t.Errorf("connect to the ICE-TCP port: %v", err)
	}

	// Permissions are per address: the SFU's covers every port of it.
	sfuAddr := r.sfu.LocalAddr().(*net.UDPAddr)
	if err := c.CreatePermission(sfuAddr); err != nil {
		t.Fatal(err)
	}
	send := func(payload string, to *net.UDPAddr) {
		t.Helper()
		msg, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication),
			stun.RawAttribute{Type: stun.AttrData, Value: []byte(payload)}, tc.TURNPeerAddress{Addr: to}, stun.Fingerprint)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteTo(msg.Raw, c.TURNServerAddr()); err != nil {
			t.Fatal(err)
		}
	}
	send("to the victim", victimAddr)
	send("to the sfu", sfuAddr)
	buf := make([]byte, 1500)
	_ = r.sfu.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, relayAddr, err := r.sfu.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "to the sfu" {
		t.Fatalf("SFU read %q, %v", buf[:n], err)
	}
	// The relay handles a client's packets in order, so the victim's packet, had it been
	// relayed, would be queued already: ahead of a marker the victim sends itself now.
	if _, err := victim.WriteTo([]byte("marker"), victimAddr); err != nil {
		t.Fatal(err)
	}
	_ = victim.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := victim.ReadFrom(buf); err != nil || string(buf[:n]) != "marker" {
		t.Errorf("another port of the SFU's address got %q (%v) through the relay", buf[:n], err)
	}

	// Inbound: only the SFU's packets reach the client.
	if _, err := victim.WriteTo([]byte("from the victim"), relayAddr); err != nil {
		t.Fatal(err)
	}
	if _, err := r.sfu.WriteTo([]byte("from the sfu"), relayAddr); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, from, err := conn.ReadFrom(buf); err != nil || string(buf[:n]) != "from the sfu" {
		t.Errorf("client read %q from %v (%v), want the SFU's packet only", buf[:n], from, err)
	}
}

// TestRelayLeft: once its participant has left, a credential is refused for everything and
// its allocations are closed; the participant gets no new credentials.
func TestRelayLeft(t *testing.T) {
	// The TCP connection, once its allocation is closed, is closed after the setup timeout.
	r := startRelay(t, func(c *Config) { c.Limits.SetupTimeout = 2 * time.Second })
	user, password := r.credentials(t, "PA_leaver")
	c := r.client(t, "udp", user, password)
	if _, err := c.Allocate(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.allocate(t, "tcp", user, password); err != nil {
		t.Fatal(err)
	}
	r.Left("PA_leaver")
	tc.Eventually(t, 10*time.Second, "allocations and connections closed", func() (bool, string) {
		conns := r.limit.Open()
		return r.Allocations() == 0 && conns == 0, fmt.Sprintf("%d allocations, %d connections", r.Allocations(), conns)
	})
	if _, err := r.allocate(t, "udp", user, password); tc.TURNErrorCode(err) != 401 {
		t.Errorf("allocate after leaving: %v, want 401", err)
	}
	if err := c.CreatePermission(r.sfu.LocalAddr()); err == nil {
		t.Error("permission granted after leaving")
	}
	if _, err := r.ICEServer("127.0.0.1", "PA_leaver"); err == nil {
		t.Error("credentials handed to a participant that left")
	}
	r.ledger.mu.Lock()
	defer r.ledger.mu.Unlock()
	if r.ledger.total != 0 || len(r.ledger.users) != 0 {
		t.Errorf("ledger still holds %d relays of %d participants", r.ledger.total, len(r.ledger.users))
	}
}

func TestICEServerHost(t *testing.T) {
	s := &Server{cfg: Config{TLSPort: 443, CredentialTTL: time.Hour}, secret: []byte("s"), ledger: newLedger(Limits{})}
	for _, c := range []struct{ domain, host, want string }{
		{"", "class.example.edu.cn:7880", "turns:class.example.edu.cn:443?transport=tcp"},
		{"", "class.example.edu.cn", "turns:class.example.edu.cn:443?transport=tcp"},
		{"", "[2001:db8::1]:7880", "turns:[2001:db8::1]:443?transport=tcp"},
		{"turn.example.edu.cn", "10.0.0.1:7880", "turns:turn.example.edu.cn:443?transport=tcp"},
	} {
		s.cfg.Domain = c.domain
		ice, err := s.ICEServer(c.host, "PA_p")
		if err != nil || len(ice.Urls) != 1 || ice.Urls[0] != c.want {
			t.Errorf("domain %q host %q: %v, %v; want %s", c.domain, c.host, ice, err, c.want)
		}
	}
	s.cfg.Domain = ""
	for _, c := range []struct{ host, sid string }{{"", "PA_p"}, {"h", ""}, {"h", "PA:p"}} {
		if _, err := s.ICEServer(c.host, c.sid); err == nil {
			t.Errorf("host %q sid %q: no error", c.host, c.sid)
		}
	}
}

func TestStartErrors(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	media := Media{IPs: []net.IP{loopback}, UDPPort: 7882}
	if _, err := Start(Config{Media: media}, log); err == nil {
		t.Error("no ports: no error")
	}
	if _, err := Start(Config{TLSPort: tc.FreePort(t, "tcp"), Media: media}, log); err == nil {
		t.Error("TLS without a certificate: no error")
	}
	if _, err := Start(Config{UDPPort: tc.FreePort(t, "udp"), BindIP: "127.0.0.1"}, log); err == nil {
		t.Error("no media endpoints: no error")
	}
	busy, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = busy.Close() }()
	port := busy.LocalAddr().(*net.UDPAddr).Port
	if _, err := Start(Config{UDPPort: port, TCPPort: tc.FreePort(t, "tcp"), BindIP: "127.0.0.1", Media: media}, log); err == nil {
		t.Error("busy UDP port: no error")
	}
}
