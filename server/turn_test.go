package server

import (
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"testing"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/config"
	"github.com/sanke-edu/sanke/internal/testclient"
)

// TestTURNRelayOnly: clients allowed only relayed candidates (as behind a firewall that
// passes nothing else) get the embedded relay from their join responses and exchange media
// through it, over TURN/UDP and over TURN/TCP.
func TestTURNRelayOnly(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			certFile, keyFile := testclient.SelfSignedFiles(t)
			url, srv := startTestServerWith(t, func(c *config.Config) {
				c.TURN = config.TURNConfig{Enabled: true, CertFile: certFile, KeyFile: keyFile}
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
	cfg.TURN = config.TURNConfig{Enabled: true, TLSPort: testclient.FreePort(t, "tcp"),
		CertFile: filepath.Join(t.TempDir(), "missing.pem"), KeyFile: filepath.Join(t.TempDir(), "missing.key")}
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
