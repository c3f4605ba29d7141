package turnserver

import (
	"crypto/tls"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	tc "github.com/sanke-edu/sanke/internal/testclient"
)

// startRelay runs a relay on loopback with all three transports.
func startRelay(t *testing.T) *Server {
	t.Helper()
	cert := tc.SelfSigned(t)
	s, err := Start(Config{
		UDPPort:     tc.FreePort(t, "udp"),
		TCPPort:     tc.FreePort(t, "tcp"),
		TLSPort:     tc.FreePort(t, "tcp"),
		Certificate: &cert,
		BindIP:      "127.0.0.1",
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// dial opens a client connection to the relay over transport ("udp", "tcp", "tls").
func dial(t *testing.T, s *Server, transport string) (net.PacketConn, string) {
	t.Helper()
	switch transport {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return c, "127.0.0.1:" + strconv.Itoa(s.cfg.UDPPort)
	case "tcp":
		addr := "127.0.0.1:" + strconv.Itoa(s.cfg.TCPPort)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return turn.NewSTUNConn(c), addr
	case "tls":
		addr := "127.0.0.1:" + strconv.Itoa(s.cfg.TLSPort)
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test's own certificate
		if err != nil {
			t.Fatal(err)
		}
		return turn.NewSTUNConn(c), addr
	}
	t.Fatalf("transport %q", transport)
	return nil, ""
}

// allocate logs in with user/password over transport and allocates a relay.
func allocate(t *testing.T, s *Server, transport, user, password string) (net.PacketConn, error) {
	t.Helper()
	conn, addr := dial(t, s, transport)
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: user, Password: password, Realm: Realm})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	return c.Allocate()
}

// credentials returns the user and password of an ICEServer, checking its URLs.
func credentials(t *testing.T, s *Server, host, identity string) (string, string) {
	t.Helper()
	ice, err := s.ICEServer(host, identity)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"turn:127.0.0.1:" + strconv.Itoa(s.cfg.UDPPort) + "?transport=udp",
		"turn:127.0.0.1:" + strconv.Itoa(s.cfg.TCPPort) + "?transport=tcp",
		"turns:127.0.0.1:" + strconv.Itoa(s.cfg.TLSPort) + "?transport=tcp",
	}
	if strings.Join(ice.Urls, " ") != strings.Join(want, " ") {
		t.Errorf("urls %v, want %v", ice.Urls, want)
	}
	if !strings.HasSuffix(ice.Username, ":"+identity) {
		t.Errorf("username %q does not name %q", ice.Username, identity)
	}
	return ice.Username, ice.Credential
}

// Media relayed both ways between a client and a local "SFU" socket, over each transport.
func TestRelay(t *testing.T) {
	s := startRelay(t)
	for _, transport := range []string{"udp", "tcp", "tls"} {
		t.Run(transport, func(t *testing.T) {
			user, password := credentials(t, s, "127.0.0.1:7880", "point-"+transport)
			relay, err := allocate(t, s, transport, user, password)
			if err != nil {
				t.Fatalf("allocate: %v", err)
			}
			defer func() { _ = relay.Close() }()
			sfu, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = sfu.Close() }()

			// Client -> relay -> SFU: the SFU sees the relay's address.
			if _, err := relay.WriteTo([]byte("hello sfu"), sfu.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			_ = sfu.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := sfu.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "hello sfu" {
				t.Fatalf("SFU read %q, %v", buf[:n], err)
			}
			if from.(*net.UDPAddr).Port != relay.LocalAddr().(*net.UDPAddr).Port {
				t.Errorf("SFU got it from %v, the relay is %v", from, relay.LocalAddr())
			}
			// SFU -> relay -> client.
			if _, err := sfu.WriteTo([]byte("hello point"), from); err != nil {
				t.Fatal(err)
			}
			_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err = relay.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "hello point" {
				t.Fatalf("client read %q, %v", buf[:n], err)
			}
			if n := s.Allocations(); n != 1 {
				t.Errorf("%d allocations, want 1", n)
			}
		})
	}
}

func TestRelayRefuses(t *testing.T) {
	s := startRelay(t)
	user, password := credentials(t, s, "127.0.0.1", "point")
	expiredUser, expiredPassword, err := turn.GenerateLongTermTURNRESTCredentials(s.secret, "point", -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, user, password string }{
		{"wrong password", user, "x" + password},
		{"expired", expiredUser, expiredPassword},
		{"other secret's credentials", "9999999999:point", "c2Fua2U="},
	} {
		if _, err := allocate(t, s, "udp", c.user, c.password); err == nil {
			t.Errorf("%s: allocation accepted", c.name)
		}
	}
	if n := s.Allocations(); n != 0 {
		t.Errorf("%d allocations after refused logins", n)
	}

	// Not an open relay: packets to an address that is not this machine's go nowhere.
	relay, err := allocate(t, s, "udp", user, password)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = relay.Close() }()
	if _, err := relay.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 9}); err == nil {
		t.Error("permission to relay to 192.0.2.1 granted")
	}
}

func TestICEServerHost(t *testing.T) {
	s := &Server{cfg: Config{TLSPort: 443, CredentialTTL: time.Hour}, secret: "s"}
	for _, c := range []struct{ domain, host, want string }{
		{"", "class.example.edu.cn:7880", "turns:class.example.edu.cn:443?transport=tcp"},
		{"", "class.example.edu.cn", "turns:class.example.edu.cn:443?transport=tcp"},
		{"", "[2001:db8::1]:7880", "turns:[2001:db8::1]:443?transport=tcp"},
		{"turn.example.edu.cn", "10.0.0.1:7880", "turns:turn.example.edu.cn:443?transport=tcp"},
	} {
		s.cfg.Domain = c.domain
		ice, err := s.ICEServer(c.host, "p")
		if err != nil || len(ice.Urls) != 1 || ice.Urls[0] != c.want {
			t.Errorf("domain %q host %q: %v, %v; want %s", c.domain, c.host, ice, err, c.want)
		}
	}
	s.cfg.Domain = ""
	if _, err := s.ICEServer("", "p"); err == nil {
		t.Error("no host and no domain: no error")
	}
}

func TestStartErrors(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	if _, err := Start(Config{}, log); err == nil {
		t.Error("no ports: no error")
	}
	if _, err := Start(Config{TLSPort: tc.FreePort(t, "tcp")}, log); err == nil {
		t.Error("TLS without a certificate: no error")
	}
	busy, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = busy.Close() }()
	port := busy.LocalAddr().(*net.UDPAddr).Port
	if _, err := Start(Config{UDPPort: port, TCPPort: tc.FreePort(t, "tcp"), BindIP: "127.0.0.1"}, log); err == nil {
		t.Error("busy UDP port: no error")
	}
}
