package weaklink

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/internal/loadtest"
	"github.com/sanke-edu/sanke/test/syncbuf"
	tc "github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testclient/inprocess"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// newLink6 makes a namespace whose only addresses are IPv6: fd00:231:x::2/64 on its veth end
// and fd00:231:x::1/64 on the host's (nodad: usable at once, no duplicate address detection
// to wait for). Its loopback stays down, so it has no IPv4 address at all, not even
// 127.0.0.1, and no route to any. The host's end is not shaped.
func newLink6(t *testing.T) *link {
	t.Helper()
	l := newVeth(t)
	prefix := fmt.Sprintf("fd00:231:%x::", l.id)
	l.hostIP = prefix + "1"
	l.run(t, "ip", "addr", "add", l.hostIP+"/64", "dev", l.hostDev, "nodad")
	l.run(t, "ip", "-n", l.ns, "addr", "add", prefix+"2/64", "dev", l.nsDev, "nodad")
	out, err := exec.Command("ip", "-n", l.ns, "-4", "addr", "show").CombinedOutput()
	if err != nil || strings.Contains(string(out), "inet ") {
		t.Fatalf("the namespace has IPv4 addresses (%v):\n%s", err, out)
	}
	return l
}

// blockUDP makes every UDP packet sent from the namespace fail (a routing rule answering
// "prohibited"), as a school firewall that passes only TCP does.
func (l *link) blockUDP(t *testing.T) {
	t.Helper()
	l.run(t, "ip", "-n", l.ns, "-6", "rule", "add", "ipproto", "udp", "prohibit")
}

// loadURLEnv, in the environment of this test binary, runs it as the ICE-TCP client of
// TestIPv6Only (runLoadtest) instead of running tests.
const loadURLEnv = "SANKE_WEAKLINK_LOADTEST_URL"

// runLoadtest runs iceTCPLoad against url and prints the track results as JSON.
func runLoadtest(url string) int {
	tracks, err := iceTCPLoad(url, "ipv6-ice-tcp")
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(tracks); err != nil {
		return 1
	}
	return 0
}

// iceTCPLoad runs a short `sanke loadtest` in room against url with the dev key: one audio
// publisher (UDP) and one subscriber over active ICE-TCP (the Go SDK, built on pion's
// defaults, does not do ICE-TCP).
func iceTCPLoad(url, room string) (loadtest.TrackResult, error) {
	res, err := loadtest.Run(context.Background(), loadtest.Config{
		URL: url, APIKey: config.DevAPIKey, APISecret: config.DevAPISecret, Room: room,
		AudioPublishers: 1, Subscribers: 1, Duration: 2 * time.Second, ICETransport: loadtest.ICETransportTCP,
	})
	if err != nil {
		return loadtest.TrackResult{}, err
	}
	return res.Tracks, nil
}

// checkICETCP fails the test unless the loadtest's one subscriber got every track over TCP.
func checkICETCP(t *testing.T, tracks loadtest.TrackResult, log string) {
	t.Helper()
	t.Logf("loadtest over ICE-TCP: %+v", tracks)
	if tracks.OverTCP != 1 || tracks.Received != tracks.Expected || tracks.Expected == 0 {
		t.Errorf("the ICE-TCP subscriber: %+v; want it over TCP with every track\n%s", tracks, log)
	}
}

// TestIPv6Only: a teaching point whose network has only IPv6 joins over ws://[addr] and gets
// media from a dual-stack server (the default bind address ::), its teacher publishing over
// IPv4 loopback: over UDP on IPv6, sent by the direct SRTP path; over ICE-TCP on IPv6 (a
// subscriber that offers only that, publishing over UDP on IPv6 itself; the same over IPv4
// loopback on the dual-stack listener); and, once the namespace's UDP is blocked, over the
// embedded TURN relay reached over TCP on IPv6.
func TestIPv6Only(t *testing.T) {
	files := testmedia.Get(t)
	l := newLink6(t)
	cfg := config.DevDefault()
	cfg.BindAddresses = []string{"::"} // every address, both families
	cfg.RTC.TCPPort = 1                // inprocess picks a free port
	cfg.TURN.Enabled = true
	cfg.TURN.UDPPort, cfg.TURN.TCPPort, cfg.TURN.TLSPort = tc.FreePort(t, "udp"), tc.FreePort(t, "tcp"), 0
	srv := inprocess.Start(t, cfg)
	const room = "ipv6-only"

	pub := tc.Join(t, srv.Target, room, "teacher", nil)
	if _, err := tc.PublishVP8(pub.Room, files.VP8[0], nil); err != nil {
		t.Fatal(err)
	}
	url := "ws://" + net.JoinHostPort(l.hostIP, strconv.Itoa(srv.Config.Port))

	// camera returns the server's view of identity's camera subscription.
	camera := func(identity string) (direct bool, packets uint64) {
		stats, err := srv.Server.Rooms().Stats(room)
		if err != nil {
			return false, 0
		}
		for _, p := range stats {
			for _, s := range p.Subscriptions {
				if s.Subscriber == identity && s.Kind == livekit.TrackType_VIDEO {
					return s.Direct, s.Packets
				}
			}
		}
		return false, 0
	}
	// subscribe runs a Go SDK subscriber in the namespace until its selected pair's protocol
	// and local candidate type are pair and the camera arrives; it checks the pair's
	// addresses are IPv6 (the relay's side toward the server excepted) and whether the
	// server sends by the direct SRTP path.
	subscribe := func(t *testing.T, identity, pair string, direct bool, env ...string) {
		sub := startSubscriber(t, l, url, srv.Target.Token(t, identity, tc.SubscribeOnlyGrant(room)), env...)
		tc.Eventually(t, 30*time.Second, "the camera reaches the IPv6-only subscriber", func() (bool, string) {
			got := ""
			if p := sub.pair.Load(); p != nil {
				got = *p
			}
			d, packets := camera(identity)
			n := sub.received.Load()
			return n > 0 && strings.HasPrefix(got, pair+" ") && packets > 0,
				fmt.Sprintf("received %d bytes in the last second, pair %q, server sent %d packets (direct %v)\n%s",
					n, got, packets, d, sub.output.String())
		})
		got := *sub.pair.Load()
		fields := strings.Fields(got) // protocol, type, local address, remote address
		for i, a := range fields[2:] {
			if ip := net.ParseIP(a); ip == nil || ip.To4() != nil {
				if strings.Contains(pair, "relay") && i == 1 {
					continue
				}
				t.Errorf("pair %q: %q is not an IPv6 address", got, a)
			}
		}
		if d, _ := camera(identity); d != direct {
			t.Errorf("direct SRTP path %v, want %v", d, direct)
		}
		t.Logf("media over %s", got)
	}

	if !t.Run("udp6", func(t *testing.T) { subscribe(t, "point-udp6", "udp host", true, subNoTURNEnv+"=1") }) {
		return
	}
	if !t.Run("ice-tcp6", func(t *testing.T) {
		cmd := exec.Command("ip", "netns", "exec", l.ns, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), loadURLEnv+"="+url)
		var stderr syncbuf.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("loadtest in the namespace: %v\n%s", err, stderr.String())
		}
		var tracks loadtest.TrackResult
		if err := json.Unmarshal(out, &tracks); err != nil {
			t.Fatalf("loadtest output %q: %v", out, err)
		}
		checkICETCP(t, tracks, stderr.String())
	}) {
		return
	}
	// The dual-stack ICE-TCP listener takes IPv4 clients as before (from the host, loopback).
	if !t.Run("ice-tcp4 on the dual-stack listener", func(t *testing.T) {
		tracks, err := iceTCPLoad(srv.Target.URL, "ipv4-ice-tcp")
		if err != nil {
			t.Fatal(err)
		}
		checkICETCP(t, tracks, "")
	}) {
		return
	}
	t.Run("turn-tcp6", func(t *testing.T) {
		l.blockUDP(t)
		// The relay's address is a UDP candidate of the relay (TURN over TCP to it); the
		// server sends to the relay's socket by the direct path.
		subscribe(t, "point-turn-tcp6", "udp relay", true)
	})
}
