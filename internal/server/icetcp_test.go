package server

import (
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/test/testclient"
)

// startICETCPServer runs a dev server with ICE-TCP on and returns its ICE-TCP address.
func startICETCPServer(t *testing.T, opt func(*config.Config)) (string, *Server) {
	t.Helper()
	_, srv := startTestServerWith(t, func(c *config.Config) {
		c.RTC.TCPPort = testclient.FreePort(t, "tcp")
		opt(c)
	})
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.cfg.RTC.TCPPort)), srv
}

// awaitICETCPConns waits until the server counts n ICE-TCP connections.
func awaitICETCPConns(t *testing.T, srv *Server, n int) {
	t.Helper()
	testclient.Eventually(t, waitClose, fmt.Sprintf("%d ICE-TCP connections open", n), func() (bool, string) {
		got := srv.media.TCPConns()
		return got == n, fmt.Sprintf("%d open", got)
	})
}

// rtc.tcp_max_conns_per_ip caps the ICE-TCP connections of one client address: one more is
// closed as soon as it is accepted, while another address and the server's own (the relay
// connects from there) still get in.
func TestICETCPPerAddressCap(t *testing.T) {
	const perIP = 2
	addr, srv := startICETCPServer(t, func(c *config.Config) {
		c.RTC.TCPMaxConnsPerIP = perIP
		c.RTC.TCPSetupTimeout = time.Minute // the connections below send nothing and stay
	})
	for range perIP {
		testclient.DialFrom(t, "127.0.0.2", addr)
	}
	extra := testclient.DialFrom(t, "127.0.0.2", addr)
	if got := awaitServerClose(t, "an ICE-TCP connection over rtc.tcp_max_conns_per_ip", extra); got != "" {
		t.Fatalf("the connection over the cap read %q", got)
	}
	awaitICETCPConns(t, srv, perIP)
	testclient.DialFrom(t, "127.0.0.3", addr)
	for range perIP + 1 {
		testclient.DialFrom(t, "127.0.0.1", addr) // the server's media address
	}
	awaitICETCPConns(t, srv, 2*perIP+2)
}

// rtc.tcp_setup_timeout closes an ICE-TCP connection that sends no STUN binding request,
// and one whose request names no session of this server; their places are given back.
func TestICETCPSetupTimeout(t *testing.T) {
	addr, srv := startICETCPServer(t, func(c *config.Config) { c.RTC.TCPSetupTimeout = time.Second })
	silent := testclient.DialFrom(t, "127.0.0.2", addr)
	stranger := testclient.DialFrom(t, "127.0.0.2", addr)
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername("nosuchufrag:client"), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	framed := binary.BigEndian.AppendUint16(nil, uint16(len(req.Raw))) // RFC 4571 framing
	if _, err := stranger.Write(append(framed, req.Raw...)); err != nil {
		t.Fatal(err)
	}
	awaitServerClose(t, "an ICE-TCP connection without a STUN request", silent)
	awaitServerClose(t, "an ICE-TCP connection whose STUN request names no session", stranger)
	awaitICETCPConns(t, srv, 0)
}
