package weaklink

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/internal/server"
	tc "github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testclient/inprocess"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// Targets of issue 14 ("Network switch"). The tests report the times measured against them
// and fail only beyond generous bounds: a loaded two-core CI machine schedules the
// subscriber process, pion's ICE checks and the SDK's resume late.
const (
	switchTarget   = 3 * time.Second // media again after a network change
	udpBlockTarget = 5 * time.Second // media again over ICE-TCP or TURN after UDP is blocked
	recoveryBound  = 20 * time.Second
)

// run runs a command, failing the test if it fails.
func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// BlockUDP makes the namespace's routing refuse every UDP packet, sent or received (a
// firewall that passes TCP only); action is "prohibit" (a send fails at once) or
// "blackhole" (packets vanish). The rule goes before the local table's (priority 0 by
// default, which would deliver incoming packets before any other rule is read).
func (l *link) BlockUDP(t *testing.T, action string) {
	t.Helper()
	run(t, "ip", "-n", l.ns, "rule", "add", "pref", "10", "ipproto", "udp", action)
	run(t, "ip", "-n", l.ns, "rule", "add", "pref", "20", "lookup", "local")
	run(t, "ip", "-n", l.ns, "rule", "del", "pref", "0", "lookup", "local")
}

// SwitchAddress moves the subscriber to another network, as a phone moving from Wi-Fi to a
// hotspot: a second veth pair with its own /30 becomes the default route, the old address
// goes, and the TCP connections from it are destroyed (what the operating system and
// browsers do when an interface goes; the kernel alone would leave them to time out).
func (l *link) SwitchAddress(t *testing.T) {
	t.Helper()
	hostDev, nsDev := fmt.Sprintf("skhs%dh", l.id), fmt.Sprintf("skhs%dn", l.id)
	subnet := fmt.Sprintf("10.233.%d", 4*(l.id%64)) // 10.232/16 is the browser harness's
	run(t, "ip", "link", "add", hostDev, "type", "veth", "peer", "name", nsDev)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostDev).Run() })
	run(t, "ip", "link", "set", nsDev, "netns", l.ns)
	run(t, "ip", "addr", "add", subnet+".1/30", "dev", hostDev)
	run(t, "ip", "link", "set", hostDev, "up")
	run(t, "ip", "-n", l.ns, "addr", "add", subnet+".2/30", "dev", nsDev)
	run(t, "ip", "-n", l.ns, "link", "set", nsDev, "up")
	run(t, "ip", "-n", l.ns, "addr", "del", l.nsIP+"/30", "dev", l.nsDev)
	run(t, "ip", "-n", l.ns, "route", "replace", "default", "via", subnet+".1")
	run(t, "ip", "netns", "exec", l.ns, "ss", "-K", "-t", "src", l.nsIP)
	l.nsIP = subnet + ".2"
}

// netSwitchRig is a teacher publishing simulcast VP8 on loopback and a Go SDK subscriber in a
// namespace, receiving it.
type netSwitchRig struct {
	link *link
	srv  *inprocess.Server
	sub  *subscriber
	room string
}

// newNetSwitchRig starts the server (ICE-TCP and the TURN relay on, the down tracks'
// sequence numbers starting at firstSeq when not 0), the teacher and the subscriber, and
// waits for video. The Go SDK's pion gathers no ICE-TCP candidates: with its UDP blocked it
// reaches the server through TURN/TCP (browsers take ICE-TCP, see test/browser).
func newNetSwitchRig(t *testing.T, firstSeq uint16) *netSwitchRig {
	files := testmedia.Get(t)
	r := &netSwitchRig{link: newLink(t, "100mbit"), room: "net-switch"}
	cfg := config.DevDefault()
	cfg.BindAddresses = []string{"0.0.0.0"} // reachable from the namespace
	if cfg.RTC.TCPPort == 0 {
		t.Fatal("the dev configuration has no ICE-TCP port")
	}
	cfg.TURN.Enabled = true
	cfg.TURN.UDPPort, cfg.TURN.TCPPort, cfg.TURN.TLSPort = tc.FreePort(t, "udp"), tc.FreePort(t, "tcp"), 0
	cfg.TURN.RelayPortRangeStart, cfg.TURN.RelayPortRangeEnd = 0, 0
	r.srv = inprocess.StartWith(t, cfg, func(s *server.Server) { s.Rooms().Media().SetFirstSeq(firstSeq) })
	pub := tc.Join(t, r.srv.Target, r.room, "teacher", nil)
	if _, err := tc.PublishSimulcastVP8(pub.Room, files, nil); err != nil {
		t.Fatal(err)
	}
	url := "ws://" + r.link.hostIP + ":" + strconv.Itoa(r.srv.Config.Port)
	r.sub = startSubscriber(t, r.link, url, r.srv.Target.Token(t, "point", tc.SubscribeOnlyGrant(r.room)))
	tc.Eventually(t, 20*time.Second, "the subscriber receives video", func() (bool, string) {
		return r.sub.video.Load() > 50_000, fmt.Sprintf("%d video bytes", r.sub.video.Load())
	})
	return r
}

// point returns the subscriber's participant sid.
func (r *netSwitchRig) point(t *testing.T) string {
	t.Helper()
	stats, err := r.srv.Server.Rooms().Stats(r.room)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range stats {
		if p.Info.Identity == "point" {
			return p.Info.Sid
		}
	}
	t.Fatal("the subscriber is not in the room")
	return ""
}

// videoPackets returns the packets the server sent on the subscriber's video subscription,
// and whether they took the direct SRTP path.
func (r *netSwitchRig) videoPackets(t *testing.T) (uint64, bool) {
	t.Helper()
	stats, err := r.srv.Server.Rooms().Stats(r.room)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range stats {
		for _, s := range p.Subscriptions {
			if s.Subscriber == "point" && s.Kind == livekit.TrackType_VIDEO {
				return s.Packets, s.Direct
			}
		}
	}
	return 0, false
}

// outage watches the subscriber's video after a change made at since and returns the
// longest time it received nothing (counted from since for the first stop) and how long
// after since the video came back from that stop. It waits until the video has flowed again
// for 2 s, and fails if it does not within recoveryBound.
func (r *netSwitchRig) outage(t *testing.T, since time.Time) (gap, back time.Duration) {
	t.Helper()
	last, lastAt := r.sub.video.Load(), since
	for {
		now := time.Now()
		v := r.sub.video.Load()
		if v != last {
			if g := now.Sub(lastAt); g > gap {
				gap, back = g, now.Sub(since)
			}
			last, lastAt = v, now
		}
		switch {
		case back > 0 && now.Sub(since) > back+2*time.Second && now.Sub(lastAt) < 300*time.Millisecond:
			return gap, back
		case now.Sub(since) > recoveryBound:
			t.Fatalf("no steady video within %v of the change (longest stop %v, the last byte %v ago); subscriber:\n%s",
				recoveryBound, gap, now.Sub(lastAt), r.sub.output.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A subscriber whose network changes (new address, old connections gone) resumes in the same
// session: the same participant sid, video again without a rejoin.
func TestNetworkSwitch(t *testing.T) {
	r := newNetSwitchRig(t, 0)
	sid := r.point(t)
	r.link.SwitchAddress(t)
	gap, back := r.outage(t, time.Now())
	t.Logf("network switch: video stopped for %v at most, steady again %v after the switch (issue 14's target: %v)",
		gap.Round(10*time.Millisecond), back.Round(10*time.Millisecond), switchTarget)
	if now := r.point(t); now != sid {
		t.Fatalf("the subscriber came back as %s, was %s: a full rejoin instead of a resume", now, sid)
	}
}

// A subscriber whose UDP becomes blocked mid-class gets its video again over TURN/TCP, on the
// same direct SRTP stream: its sequence numbers wrapped before the block (they start at
// 65300), and the subscriber authenticates what arrives over TCP (pion's writer, taking the
// stream over with rollover counter 0, could not be).
func TestUDPBlocked(t *testing.T) {
	for _, action := range []string{"prohibit", "blackhole"} {
		t.Run(action, func(t *testing.T) {
			r := newNetSwitchRig(t, 65300)
			sid := r.point(t)
			tc.Eventually(t, 30*time.Second, "the video's sequence numbers wrap", func() (bool, string) {
				n, _ := r.videoPackets(t)
				return n > 400, fmt.Sprintf("%d packets sent", n)
			})
			r.link.BlockUDP(t, action)
			gap, back := r.outage(t, time.Now())
			t.Logf("UDP blocked (%s): video stopped for %v at most, steady again %v after the block, over TURN/TCP (issue 14's target: %v)",
				action, gap.Round(10*time.Millisecond), back.Round(10*time.Millisecond), udpBlockTarget)
			if _, direct := r.videoPackets(t); !direct {
				t.Error("the video no longer takes the direct SRTP path")
			}
			if now := r.point(t); now != sid {
				t.Fatalf("the subscriber came back as %s, was %s", now, sid)
			}
		})
	}
}
