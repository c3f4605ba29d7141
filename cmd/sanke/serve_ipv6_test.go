package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/test/prereq"
	"github.com/sanke-edu/sanke/test/syncbuf"
	tc "github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// `sanke serve --dev --bind ::1` (issue 14: it exited with "listen udp4 [::1]:7892: address
// ::1: non-IPv4 address") answers /healthz on [::1] and forwards media between two clients
// connected to ws://[::1]:port, over UDP on ::1, as the subscriber's selected candidate pair
// shows.
func TestServeIPv6Loopback(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: a server on ::1 forwarding media")
	}
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		prereq.Skip(t, "no IPv6 loopback: %v", err)
	} else {
		_ = l.Close()
	}
	files := testmedia.Get(t)
	port, udpPort, tcpPort := tc.FreePort(t, "tcp"), tc.FreePort(t, "udp"), tc.FreePort(t, "tcp")
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncbuf.Buffer{}
	a := &app{stdout: &bytes.Buffer{}, stderr: stderr, runServer: runServer}
	t.Chdir(t.TempDir()) // dev mode keeps its data under ./data
	exited := make(chan int, 1)
	go func() {
		exited <- a.serve(ctx, []string{"--dev", "--bind", "::1", "--port", strconv.Itoa(port),
			"--udp-port", strconv.Itoa(udpPort), "--tcp-port", strconv.Itoa(tcpPort)})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-exited:
			if code != exitOK {
				t.Errorf("exit code %d\n%s", code, stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Errorf("the server did not stop\n%s", stderr.String())
		}
	})

	host := net.JoinHostPort("::1", strconv.Itoa(port))
	target := tc.Target{Name: "sanke", URL: "ws://" + host, HTTPURL: "http://" + host,
		APIKey: config.DevAPIKey, APISecret: config.DevAPISecret}
	if err := tc.WaitHealthy(target.HTTPURL, 30*time.Second, func() error {
		select {
		case code := <-exited:
			exited <- code
			return fmt.Errorf("serve exited with %d:\n%s", code, stderr.String())
		default:
			return nil
		}
	}); err != nil {
		t.Fatal(err)
	}
	if res, err := http.Get(target.HTTPURL + "/healthz"); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz on [::1]: %v %v", res, err)
	} else {
		_ = res.Body.Close()
	}

	pub := tc.Join(t, target, "ipv6", "teacher", nil)
	if _, err := tc.PublishVP8(pub.Room, files.VP8[0], nil); err != nil {
		t.Fatal(err)
	}
	sub := tc.Join(t, target, "ipv6", "point", &tc.JoinOptions{Grant: tc.SubscribeOnlyGrant("ipv6")})
	video := sub.WaitForTrack(20*time.Second, "teacher", webrtc.RTPCodecTypeVideo)
	tc.Eventually(t, 20*time.Second, "video arrives over ::1", func() (bool, string) {
		s := video.Snapshot()
		return s.Packets > 50, s.String()
	})
	pc := sub.Room.LocalParticipant.GetSubscriberPeerConnection()
	pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("no selected pair: %v", err)
	}
	if pair.Local.Protocol != webrtc.ICEProtocolUDP || pair.Remote.Address != "::1" || int(pair.Remote.Port) != udpPort {
		t.Errorf("selected pair %s; want UDP to [::1]:%d", pair, udpPort)
	}
}
