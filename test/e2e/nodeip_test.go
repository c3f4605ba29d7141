package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/livekit/protocol/livekit"

	tc "github.com/sanke-edu/sanke/test/testclient"
)

// TestNodeIPAdvertised checks that a server behind a 1:1 NAT (rtc.node_ip) gives clients its
// public address in its host candidates, instead of the address of its interface; with one
// address per family ("v4,v6", on every address), each family's candidates carry its own.
func TestNodeIPAdvertised(t *testing.T) {
	const nodeIP = "203.0.113.7" // TEST-NET-3: never the address of an interface here
	t.Run("ipv4", func(t *testing.T) {
		testNodeIP(t, []string{nodeIP}, []string{"127.0.0.1"}, tc.WithServerArgs("--node-ip", nodeIP))
	})
	t.Run("ipv4 and ipv6", func(t *testing.T) {
		const nodeIP6 = "2001:db8::7" // documentation prefix
		testNodeIP(t, []string{nodeIP, nodeIP6}, []string{"127.0.0.1", "::1"},
			tc.WithServerArgs("--bind", "::", "--node-ip", nodeIP+","+nodeIP6))
	})
}

// testNodeIP starts a server with opts and checks that host candidates with each of want
// arrive, and none with an address of notWant.
func testNodeIP(t *testing.T, want, notWant []string, opts ...tc.ServerOption) {
	srv := startServer(t, opts...)
	target := srv.Target()
	room := roomName(t, "nat")

	c := dialRaw(t, target, target.Token(t, "pub", tc.JoinGrant(room)), url.Values{"auto_subscribe": {"0"}})
	c.startReading()
	c.waitJoin()
	c.request(addTrack("mic", "mic", livekit.TrackType_AUDIO, livekit.TrackSource_MICROPHONE))
	c.waitMessage("track_published for mic", func(m *livekit.SignalResponse) bool { return m.GetTrackPublished().GetCid() == "mic" })
	_, stop := sendOpusAs(t, c, "mic")
	defer stop()

	// The server's candidates arrive in trickles (or in its answer).
	candidates := func() []string {
		var out []string
		for _, m := range c.messages() {
			if tr := m.GetTrickle(); tr != nil {
				out = append(out, tr.GetCandidateInit())
			}
			for _, line := range strings.Split(m.GetAnswer().GetSdp(), "\n") {
				if strings.HasPrefix(line, "a=candidate:") {
					out = append(out, line)
				}
			}
		}
		return out
	}
	for _, ip := range want {
		tc.Eventually(t, eventWait, "a host candidate with the node IP "+ip, func() (bool, string) {
			for _, cand := range candidates() {
				if strings.Contains(cand, " "+ip+" ") && strings.Contains(cand, "typ host") {
					return true, ""
				}
			}
			return false, fmt.Sprintf("candidates %q", candidates())
		})
	}
	for _, cand := range candidates() {
		for _, ip := range notWant {
			if strings.Contains(cand, " "+ip+" ") {
				t.Errorf("candidate %q gives the interface's address, want %v only", cand, want)
			}
		}
	}
}
