// Package weaklink tests Sanke over a constrained link, the rural teaching point's normal
// case: the subscriber runs in a network namespace of its own behind a veth pair whose
// server-side end is shaped by tc's token bucket filter, so the server's packets to it queue
// and drop as on a real 1 Mbit/s line. The publisher stays on loopback. The tests need root
// (network namespaces) and iproute2; the subscriber is this test binary started again inside
// the namespace (TestMain runs it as a LiveKit Go SDK subscriber then).
package weaklink

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/test/prereq"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/test/syncbuf"
)

// Environment of the subscriber process started inside the namespace.
const (
	subURLEnv   = "SANKE_WEAKLINK_URL"
	subTokenEnv = "SANKE_WEAKLINK_TOKEN"
	// subNoTURNEnv set to 1 makes the subscriber gather no relay candidates: its pair is
	// then a direct one however late its checks finish (pion nominates a relay pair once
	// it has waited 2 s for the host pair, which a loaded machine can make it do).
	subNoTURNEnv = "SANKE_WEAKLINK_NO_TURN"
)

func TestMain(m *testing.M) {
	if os.Getenv(subURLEnv) != "" {
		os.Exit(runSubscriber(os.Getenv(subURLEnv), os.Getenv(subTokenEnv)))
	}
	if os.Getenv(loadURLEnv) != "" {
		os.Exit(runLoadtest(os.Getenv(loadURLEnv))) // see ipv6_test.go
	}
	os.Exit(m.Run())
}

// runSubscriber joins with the Go SDK, reads every track it is given (the SDK's interceptors
// send receiver reports and NACKs for what is read), prints "joined" and then once a second
// the bytes received (in all, of audio and of video in that second) and its subscriber
// PeerConnection's selected candidate pair, every 50 ms the video bytes received so far
// ("video N": only what SRTP authenticated is read), and leaves when its standard input
// closes.
func runSubscriber(url, token string) int {
	var received, audio, video, videoTotal atomic.Int64
	cb := lksdk.NewRoomCallback()
	cb.ParticipantCallback.OnTrackSubscribed = func(track *webrtc.TrackRemote, _ *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		isVideo := track.Kind() == webrtc.RTPCodecTypeVideo
		kind := &video
		if !isVideo {
			kind = &audio
		}
		go func() {
			buf := make([]byte, 1500)
			for {
				n, _, err := track.Read(buf)
				if err != nil {
					return
				}
				received.Add(int64(n))
				kind.Add(int64(n))
				if isVideo {
					videoTotal.Add(int64(n))
				}
			}
		}()
	}
	opts := []lksdk.ConnectOption{lksdk.WithAutoSubscribe(true)}
	if os.Getenv(subNoTURNEnv) == "1" {
		opts = append(opts, lksdk.WithDisableTURN())
	}
	room, err := lksdk.ConnectToRoomWithToken(url, token, cb, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		return 1
	}
	fmt.Println("joined")
	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	fine := time.NewTicker(50 * time.Millisecond)
	defer fine.Stop()
	for {
		select {
		case <-stop:
			room.Disconnect()
			return 0
		case <-tick.C:
			fmt.Printf("received %d audio %d video %d\n", received.Swap(0), audio.Swap(0), video.Swap(0))
			if pc := room.LocalParticipant.GetSubscriberPeerConnection(); pc != nil {
				if pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair(); err == nil && pair != nil {
					// "pair udp host fd00::2 fd00::1": protocol, local type, local and remote address
					fmt.Printf("pair %s %s %s %s\n", pair.Local.Protocol, pair.Local.Typ, pair.Local.Address, pair.Remote.Address)
				}
			}
		case <-fine.C:
			fmt.Printf("video %d\n", videoTotal.Load())
		}
	}
}

// link is a network namespace joined to the host by a veth pair, the host's end shaped.
type link struct {
	ns      string
	id      int
	hostIP  string // the host's end, where the subscriber reaches the server
	hostDev string
	nsDev   string
	nsIP    string // the subscriber's address
}

// newLink makes a namespace with a veth pair, 10.231.x.1 (host) to 10.231.x.2, and limits
// what the host sends into it to rate (tc tbf, 100 ms of queue). It is removed when the test
// ends. The test is skipped when not run as root.
func newLink(t *testing.T, rate string) *link {
	t.Helper()
	l := newVeth(t, "tc")
	subnet := fmt.Sprintf("10.231.%d", 4*(l.id%64))
	l.hostIP, l.nsIP = subnet+".1", subnet+".2"
	l.run(t, "ip", "addr", "add", l.hostIP+"/30", "dev", l.hostDev)
	l.run(t, "ip", "-n", l.ns, "addr", "add", subnet+".2/30", "dev", l.nsDev)
	l.run(t, "ip", "-n", l.ns, "link", "set", "lo", "up")
	l.run(t, "tc", "qdisc", "add", "dev", l.hostDev, "root", "tbf", "rate", rate, "burst", "16kb", "latency", "100ms")
	return l
}

// newVeth makes a namespace joined to the host by a veth pair, both ends up and without
// addresses; the namespace and the pair are removed when the test ends. The test is skipped
// when not run as root; it fails when ip (or another of tools) is missing.
func newVeth(t *testing.T, tools ...string) *link {
	t.Helper()
	if os.Geteuid() != 0 {
		prereq.Skip(t, "weak-link tests need root for network namespaces (CI runs them as root)")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (%v): run ./scripts/test.sh, which installs iproute2", tool, err)
		}
	}
	id := rand.IntN(1 << 16)
	prefix := os.Getenv("SANKE_WEAKLINK_NETNS") // a prefix of one's own when several runs share the host
	if prefix == "" {
		prefix = "sanke-wl"
	}
	l := &link{ns: fmt.Sprintf("%s-%d", prefix, id), hostDev: fmt.Sprintf("skwl%dh", id), nsDev: fmt.Sprintf("skwl%dn", id), id: id}
	l.run(t, "ip", "netns", "add", l.ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.ns).Run() }) // takes the veth pair along
	l.run(t, "ip", "link", "add", l.hostDev, "type", "veth", "peer", "name", l.nsDev)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", l.hostDev).Run() })
	l.run(t, "ip", "link", "set", l.nsDev, "netns", l.ns)
	l.run(t, "ip", "link", "set", l.hostDev, "up")
	l.run(t, "ip", "-n", l.ns, "link", "set", l.nsDev, "up")
	return l
}

// run runs a command of the link's setup, failing the test when it fails.
func (l *link) run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// setRate changes the link's rate (tc tbf, the same queue).
func (l *link) setRate(t *testing.T, rate string) {
	t.Helper()
	l.run(t, "tc", "qdisc", "change", "dev", l.hostDev, "root", "tbf", "rate", rate, "burst", "16kb", "latency", "100ms")
}

// subscriber is this test binary running runSubscriber inside a namespace.
type subscriber struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	joined   chan struct{}
	received atomic.Int64           // bytes in the newest one-second report
	video    atomic.Int64           // video bytes received so far, reported every 50 ms
	pair     atomic.Pointer[string] // the newest selected candidate pair reported ("udp host local remote")
	output   syncbuf.Buffer         // its standard error
	// seconds receives every one-second report (dropped when nobody reads them).
	seconds chan second
}

// second is one of the subscriber's one-second reports: bytes of audio and of video.
type second struct{ audio, video int64 }

// startSubscriber runs a subscriber inside l's namespace, with env added to its environment,
// and waits until it has joined. It leaves when the test ends.
func startSubscriber(t *testing.T, l *link, url, token string, env ...string) *subscriber {
	t.Helper()
	s := &subscriber{joined: make(chan struct{}), seconds: make(chan second, 64)}
	s.cmd = exec.Command("ip", "netns", "exec", l.ns, os.Args[0], "-test.run=^$")
	s.cmd.Env = append(append(os.Environ(), subURLEnv+"="+url, subTokenEnv+"="+token), env...)
	var err error
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = &s.output
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			var n int64
			switch {
			case line == "joined":
				close(s.joined)
			case strings.HasPrefix(line, "received "):
				var sec second
				if _, err := fmt.Sscanf(line, "received %d audio %d video %d", &n, &sec.audio, &sec.video); err == nil {
					s.received.Store(n)
					select {
					case s.seconds <- sec:
					default:
					}
				}
			case strings.HasPrefix(line, "pair "):
				pair := strings.TrimPrefix(line, "pair ")
				s.pair.Store(&pair)
			case strings.HasPrefix(line, "video "):
				if _, err := fmt.Sscanf(line, "video %d", &n); err == nil {
					s.video.Store(n)
				}
			}
		}
		_ = s.cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = s.stdin.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case <-s.joined:
	case <-exited:
		t.Fatalf("subscriber exited before joining:\n%s", s.output.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("subscriber did not join within 30 s:\n%s", s.output.String())
	}
	return s
}
