package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
	"google.golang.org/protobuf/proto"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/sfu/room"
	"github.com/sanke-edu/sanke/test/testclient"
)

// TestTURNRelayOnly: clients allowed only relayed candidates (as behind a firewall that
// passes nothing else) get the embedded relay from their join responses and exchange media
// through it, over TURN/UDP and over TURN/TCP.
func TestTURNRelayOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: media through the TURN relay over UDP and TCP")
	}
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			certFile, keyFile := testclient.SelfSignedFiles(t)
			url, srv := startTestServerWith(t, func(c *config.Config) {
				c.TURN.Enabled, c.TURN.CertFile, c.TURN.KeyFile = true, certFile, keyFile
				c.TURN.UDPPort, c.TURN.TCPPort = 0, 0
				// The Go SDK checks TURN/TLS certificates against the system's roots, so the
				// TLS listener (started, its files loaded) offers it no candidate here; the
				// relay's own tests cover TLS.
				c.TURN.TLSPort = testclient.FreePort(t, "tcp")
				if transport == "udp" {
					c.TURN.UDPPort = testclient.FreePort(t, "udp")
				} else {
					c.TURN.TCPPort = testclient.FreePort(t, "tcp")
				}
			})
			if srv.turn == nil {
				t.Fatal("turn.enabled: no relay started")
			}
			publishReceive(t, url, lksdk.WithICETransportPolicy(webrtc.ICETransportPolicyRelay))
			if n := srv.turn.Allocations(); n < 2 {
				t.Errorf("%d relay allocations; want one per connected PeerConnection at least", n)
			}
		})
	}
}

func TestTURNBadCertificate(t *testing.T) {
	cfg := config.DevDefault()
	cfg.Port = testclient.FreePort(t, "tcp")
	cfg.RTC.UDPPort = testclient.FreePort(t, "udp")
	cfg.RTC.TCPPort = 0
	cfg.TURN.Enabled, cfg.TURN.UDPPort, cfg.TURN.TCPPort, cfg.TURN.TLSPort = true, 0, 0, testclient.FreePort(t, "tcp")
	cfg.TURN.CertFile, cfg.TURN.KeyFile = filepath.Join(t.TempDir(), "missing.pem"), filepath.Join(t.TempDir(), "missing.key")
	if _, err := New(cfg, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("New with a missing TURN certificate: no error")
	}
	// The media port is free again: the failed New closed what it opened.
	c, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.RTC.UDPPort)))
	if err != nil {
		t.Fatalf("media port still held after a failed New: %v", err)
	}
	_ = c.Close()
}

// startRelayServer runs a dev server with the relay on TURN/UDP, TURN/TCP and TURN/TLS and
// ICE-TCP on, so that both of the SFU's media ports exist.
func startRelayServer(t *testing.T, opts ...func(*config.Config)) (string, *Server) {
	t.Helper()
	certFile, keyFile := testclient.SelfSignedFiles(t)
	return startTestServerWith(t, append([]func(*config.Config){func(c *config.Config) {
		c.RTC.TCPPort = testclient.FreePort(t, "tcp")
		c.TURN.Enabled, c.TURN.CertFile, c.TURN.KeyFile = true, certFile, keyFile
		c.TURN.UDPPort = testclient.FreePort(t, "udp")
		c.TURN.TCPPort = testclient.FreePort(t, "tcp")
		c.TURN.TLSPort = testclient.FreePort(t, "tcp")
	}}, opts...)...)
}

// relaySession is a participant joined over a bare websocket, with the relay credentials of
// its join (or reconnect) response.
type relaySession struct {
	ws       *websocket.Conn
	sid      string
	user     string
	password string
	addrs    map[string]string // transport ("udp", "tcp", "tls") -> the relay's host:port
}

// joinRelay joins as identity with grant (query extra added: reconnect=1&sid=... resumes) and
// reads the relay's credentials from the response.
func joinRelay(t *testing.T, wsURL, identity string, grant *auth.VideoGrant, extra url.Values) *relaySession {
	t.Helper()
	q := url.Values{"access_token": {testclient.MustToken(t, config.DevAPIKey, config.DevAPISecret, identity, grant)}}
	for k, v := range extra {
		q[k] = v
	}
	ws, _, err := websocket.DefaultDialer.Dial(wsURL+"/rtc?"+q.Encode(), nil)
	if err != nil {
		t.Fatalf("join %s: %v", identity, err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	s := &relaySession{ws: ws, sid: extra.Get("sid"), addrs: map[string]string{}}
	var ice []*livekit.ICEServer
	for ice == nil {
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("%s: no join response: %v", identity, err)
		}
		var res livekit.SignalResponse
		if err := proto.Unmarshal(data, &res); err != nil {
			t.Fatal(err)
		}
		if j := res.GetJoin(); j != nil {
			ice, s.sid = j.IceServers, j.Participant.Sid
		} else if r := res.GetReconnect(); r != nil {
			ice = r.IceServers
		}
	}
	for _, server := range ice {
		for _, u := range server.Urls {
			scheme, rest, _ := strings.Cut(u, ":")
			hostPort, transport, _ := strings.Cut(rest, "?transport=")
			if scheme == "turns" {
				transport = "tls"
			}
			if scheme == "turn" || scheme == "turns" {
				s.addrs[transport], s.user, s.password = hostPort, server.Username, server.Credential
			}
		}
	}
	if len(s.addrs) != 3 {
		t.Fatalf("%s: relay URLs %v", identity, ice)
	}
	return s
}

// leave sends a leave request, as a client that hangs up does.
func (s *relaySession) leave(t *testing.T) {
	t.Helper()
	data, _ := proto.Marshal(&livekit.SignalRequest{Message: &livekit.SignalRequest_Leave{Leave: &livekit.LeaveRequest{
		Reason: livekit.DisconnectReason_CLIENT_INITIATED}}})
	if err := s.ws.WriteMessage(websocket.BinaryMessage, data); err != nil {
		t.Fatal(err)
	}
}

// client returns a TURN client with the session's credentials over transport.
func (s *relaySession) client(t *testing.T, transport string) *turn.Client {
	t.Helper()
	return testclient.TURNClient(t, transport, s.addrs[transport], s.user, s.password)
}

// hiddenViewer is the weakest grant there is: a hidden participant that may only watch.
func hiddenViewer(room string) *auth.VideoGrant {
	g := testclient.SubscribeOnlyGrant(room)
	g.Hidden = true
	return g
}

// TestTURNRelaysOnlyToMedia: the relay forwards to the SFU's two media ports and refuses
// everything else on the host (Sanke's own HTTP port, any other local port), for UDP
// permissions, channel binds and TCP connects, over each of its listeners.
func TestTURNRelaysOnlyToMedia(t *testing.T) {
	wsURL, srv := startRelayServer(t)
	s := joinRelay(t, wsURL, "intruder", hiddenViewer("class"), nil)
	udpVictim, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = udpVictim.Close() }()
	tcpVictim, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tcpVictim.Close() }()
	lo := net.IPv4(127, 0, 0, 1)
	forbidden := map[string]int{"http": srv.cfg.Port, "other udp": udpVictim.LocalAddr().(*net.UDPAddr).Port,
		"other tcp": tcpVictim.Addr().(*net.TCPAddr).Port, "turn": srv.cfg.TURN.TCPPort}
	media := &net.UDPAddr{IP: lo, Port: srv.cfg.RTC.UDPPort}

	for _, transport := range []string{"udp", "tcp", "tls"} {
		t.Run("udp allocation over "+transport, func(t *testing.T) {
			c := s.client(t, transport)
			relay, err := c.Allocate()
			if err != nil {
				t.Fatalf("allocate: %v", err)
			}
			defer func() { _ = relay.Close() }()
			for name, port := range forbidden {
				peer := &net.UDPAddr{IP: lo, Port: port}
				if err := c.CreatePermission(peer); testclient.TURNErrorCode(err) != 403 {
					t.Errorf("permission to %s port %d: %v, want 403", name, port, err)
				}
				if err := testclient.TURNChannelBind(c, s.user, s.password, peer, 0x4001); testclient.TURNErrorCode(err) != 403 {
					t.Errorf("channel bind to %s port %d: %v, want 403", name, port, err)
				}
			}
			if err := c.CreatePermission(media); err != nil {
				t.Errorf("permission to the media port: %v", err)
			}
			if err := testclient.TURNChannelBind(c, s.user, s.password, media, 0x4002); err != nil {
				t.Errorf("channel bind to the media port: %v", err)
			}
		})
	}
	for _, transport := range []string{"tcp", "tls"} {
		t.Run("tcp allocation over "+transport, func(t *testing.T) {
			alloc, err := s.client(t, transport).AllocateTCP()
			if err != nil {
				t.Fatalf("allocate tcp: %v", err)
			}
			defer func() { _ = alloc.Close() }()
			for name, port := range forbidden {
				if _, err := alloc.Connect(&net.TCPAddr{IP: lo, Port: port}); testclient.TURNErrorCode(err) != 403 {
					t.Errorf("connect to %s port %d: %v, want 403", name, port, err)
				}
			}
			if _, err := alloc.Connect(&net.TCPAddr{IP: lo, Port: srv.cfg.RTC.TCPPort}); err != nil {
				t.Errorf("connect to the ICE-TCP port: %v", err)
			}
		})
	}
}

// TestTURNCredentialsEndWithSession: a participant's relay credentials stop working when it
// leaves, and its allocations are closed; a resumed session gets credentials that work.
func TestTURNCredentialsEndWithSession(t *testing.T) {
	wsURL, srv := startRelayServer(t)
	left := make(chan string, 16)
	srv.Rooms().AddObserver(room.ObserverFunc(func(e room.Event) {
		if e.Type == room.EventParticipantLeft {
			left <- e.Participant.Sid
		}
	}))

	s := joinRelay(t, wsURL, "leaver", hiddenViewer("class"), nil)
	c := s.client(t, "udp")
	if _, err := c.Allocate(); err != nil {
		t.Fatalf("allocate while in the session: %v", err)
	}
	tcpClient := s.client(t, "tcp")
	if _, err := tcpClient.Allocate(); err != nil {
		t.Fatalf("allocate over tcp while in the session: %v", err)
	}
	s.leave(t)
	select {
	case sid := <-left:
		if sid != s.sid {
			t.Fatalf("left: %s, want %s", sid, s.sid)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the participant never left")
	}
	testclient.Eventually(t, 10*time.Second, "the leaver's allocations closed", func() (bool, string) {
		n := srv.turn.Allocations()
		return n == 0, fmt.Sprintf("%d allocations", n)
	})
	for _, transport := range []string{"udp", "tcp", "tls"} {
		if _, err := s.client(t, transport).Allocate(); testclient.TURNErrorCode(err) != 401 {
			t.Errorf("allocate over %s after leaving: %v, want 401", transport, err)
		}
	}
	if err := c.CreatePermission(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: srv.cfg.RTC.UDPPort}); err == nil {
		t.Error("permission on the leaver's allocation granted after it left")
	}

	// A resume (the websocket dropped, the participant kept) gets credentials that work.
	first := joinRelay(t, wsURL, "resumer", hiddenViewer("class"), nil)
	_ = first.ws.Close()
	resumed := joinRelay(t, wsURL, "resumer", hiddenViewer("class"), url.Values{"reconnect": {"1"}, "sid": {first.sid}})
	if _, err := resumed.client(t, "udp").Allocate(); err != nil {
		t.Errorf("allocate with the resumed session's credentials: %v", err)
	}
}

// TestTURNAllocationQuota: one participant's credential holds at most
// turn.max_allocations_per_participant allocations; the next is refused with 486.
func TestTURNAllocationQuota(t *testing.T) {
	const quota = 3
	wsURL, _ := startRelayServer(t, func(c *config.Config) { c.TURN.MaxAllocationsPerParticipant = quota })
	s := joinRelay(t, wsURL, "hoarder", hiddenViewer("class"), nil)
	for i := range quota {
		if _, err := s.client(t, "udp").Allocate(); err != nil {
			t.Fatalf("allocation %d of %d: %v", i+1, quota, err)
		}
	}
	if _, err := s.client(t, "udp").Allocate(); testclient.TURNErrorCode(err) != 486 {
		t.Errorf("allocation %d: %v, want 486 Allocation Quota Reached", quota+1, err)
	}
}

// TestTURNIdleConnectionClosed: a TURN/TCP or TURN/TLS connection that sends nothing is
// closed by the server after turn.setup_timeout.
func TestTURNIdleConnectionClosed(t *testing.T) {
	_, srv := startRelayServer(t, func(c *config.Config) { c.TURN.SetupTimeout = 200 * time.Millisecond })
	for name, port := range map[string]int{"tcp": srv.cfg.TURN.TCPPort, "tls": srv.cfg.TURN.TLSPort} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			// The guard only bounds a failing test: the server's close ends the read long before.
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			n, err := conn.Read(make([]byte, 1))
			if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("idle connection: read %d bytes, %v; want it closed by the server", n, err)
			}
		})
	}
}
