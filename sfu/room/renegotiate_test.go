package room_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"

	tc "github.com/sanke-edu/sanke/test/testclient"
)

// Bounds of a PeerConnection's negotiation state (room/transport.go).
const (
	maxTransceivers  = 2048 // transceivers of one PeerConnection, as media sections of one offer
	maxEarlySections = 4096 // media sections of the descriptions applied before it connects
)

// offerSDP returns a publisher offer with one audio section per mid (and a data channel
// section), made from a pion offer as a client would send it, without SSRCs.
func offerSDP(t *testing.T, mids []string) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pc.Close() }()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.CreateDataChannel("_reliable", nil); err != nil {
		t.Fatal(err)
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	audio := strings.Index(o.SDP, "m=audio")
	app := strings.Index(o.SDP, "m=application")
	head, section := o.SDP[:audio], o.SDP[audio:app]
	var lines []string
	for _, l := range strings.SplitAfter(section, "\r\n") {
		if !strings.HasPrefix(l, "a=ssrc") && !strings.HasPrefix(l, "a=msid") {
			lines = append(lines, l)
		}
	}
	section = strings.Join(lines, "")
	var b strings.Builder
	for _, mid := range mids {
		b.WriteString(strings.Replace(section, "a=mid:0\r\n", "a=mid:"+mid+"\r\n", 1))
	}
	head = strings.Replace(head, "a=group:BUNDLE 0 1", "a=group:BUNDLE "+strings.Join(mids, " ")+" 1", 1)
	return head + b.String() + o.SDP[app:]
}

// mids returns n mids starting with prefix.
func mids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// renegotiate sends the offers one after the other, each once the previous was answered,
// and returns how many were answered before the server closed the connection, and why it
// closed it (nil if it never did).
func renegotiate(t *testing.T, c *sigClient, offers []string) (int, error) {
	t.Helper()
	for i, sdp := range offers {
		id := uint32(i + 1)
		c.send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Offer{Offer: &livekit.SessionDescription{Type: "offer", Sdp: sdp, Id: id}}})
		if c.await(fmt.Sprintf("answer %d", id), func(m *livekit.SignalResponse) bool { return m.GetAnswer().GetId() == id }) == nil {
			return i, c.closed()
		}
	}
	return len(offers), nil
}

// TestRenegotiationBounded checks that renegotiating cannot grow a PeerConnection's state
// (red team t04: offers renaming their media sections 25 times a second took the server
// from 45 MB to 2.7 GB in 50 s; pion keeps a transceiver for every mid ever offered, and
// every description applied before the PeerConnection connects until it does):
//   - offers that rename their 200 sections each time: the server holds at most
//     maxTransceivers transceivers, and refuses the offer that would take it beyond,
//     closing the signal connection with a reason that says so;
//   - offers of 512 sections that never connect: the server answers them until
//     maxEarlySections sections are held, then refuses with a reason that says so.
func TestRenegotiationBounded(t *testing.T) {
	srv, rooms := startServer(t, nil)
	const roomName = "renegotiate"

	t.Run("renamed sections", func(t *testing.T) {
		const perOffer, offers = 200, 15
		c, err := dialSignal(t, srv.Target, srv.Target.Token(t, "renamer", tc.JoinGrant(roomName)), nil)
		if err != nil {
			t.Fatal(err)
		}
		sdps := make([]string, offers)
		for i := range sdps {
			sdps[i] = offerSDP(t, mids(fmt.Sprintf("o%d_", i), perOffer))
		}
		answered, closed := renegotiate(t, c, sdps)
		held := participantStats(t, rooms, roomName, "renamer").Transceivers
		t.Logf("%d offers answered, %d transceivers held, connection closed: %v", answered, held, closed)
		if held > maxTransceivers {
			t.Errorf("the publisher holds %d transceivers, over the bound of %d", held, maxTransceivers)
		}
		if want := maxTransceivers / perOffer; answered != want || closed == nil || !strings.Contains(closed.Error(), "transceivers") {
			t.Errorf("%d offers answered, then %v; want %d, then the connection closed for too many transceivers", answered, closed, want)
		}
	})

	t.Run("never connected", func(t *testing.T) {
		const perOffer, offers = 512, 20
		c, err := dialSignal(t, srv.Target, srv.Target.Token(t, "early", tc.JoinGrant(roomName)), nil)
		if err != nil {
			t.Fatal(err)
		}
		sdp := offerSDP(t, mids("m", perOffer))
		sdps := make([]string, offers)
		for i := range sdps {
			sdps[i] = sdp
		}
		answered, closed := renegotiate(t, c, sdps)
		t.Logf("%d offers answered, connection closed: %v", answered, closed)
		if want := maxEarlySections / (perOffer + 1); answered != want || closed == nil || !strings.Contains(closed.Error(), "before") {
			t.Errorf("%d offers answered, then %v; want %d, then the connection closed for negotiating before connecting", answered, closed, want)
		}
		if held := participantStats(t, rooms, roomName, "early").Transceivers; held != perOffer {
			t.Errorf("%d transceivers held for offers of %d sections", held, perOffer)
		}
	})
}
