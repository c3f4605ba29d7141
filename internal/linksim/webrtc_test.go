package linksim

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	tc "github.com/sanke-edu/sanke/test/testclient"
)

// Two pion PeerConnections held to relay-only ICE reach each other through the relay: ICE,
// DTLS and SCTP cross the impaired path (with loss, which SCTP repairs).
func TestRelayCarriesWebRTC(t *testing.T) {
	r := startRelay(t, Impairment{Loss: 0.05, Delay: time.Millisecond, Seed: 1}, Impairment{Loss: 0.05, Seed: 2}, nil)
	ice := r.ICEServer()
	conf := webrtc.Configuration{
		ICEServers:         []webrtc.ICEServer{{URLs: ice.URLs, Username: ice.Username, Credential: ice.Credential}},
		ICETransportPolicy: webrtc.ICETransportPolicyRelay,
	}
	newPC := func() *webrtc.PeerConnection {
		pc, err := webrtc.NewPeerConnection(conf)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pc.Close() })
		return pc
	}
	offerer, answerer := newPC(), newPC()
	got := make(chan string, 1)
	answerer.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			select {
			case got <- string(m.Data):
			default:
			}
		})
	})
	dc, err := offerer.CreateDataChannel("lesson", nil)
	if err != nil {
		t.Fatal(err)
	}
	dc.OnOpen(func() { _ = dc.SendText("hello from the teaching point") })

	// Non-trickle: each description carries its relay candidates.
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(offerer)
	if err := offerer.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered = webrtc.GatheringCompletePromise(answerer)
	if err := answerer.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	if err := offerer.SetRemoteDescription(*answerer.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "hello from the teaching point" {
			t.Errorf("message %q", m)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no message through the relay; ICE %v / %v", offerer.ICEConnectionState(), answerer.ICEConnectionState())
	}
	pair, err := offerer.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local.Typ != webrtc.ICECandidateTypeRelay {
		t.Errorf("selected pair %v, %v: want a relay candidate", pair, err)
	}
	up, down := r.Stats()
	tc.Eventually(t, 10*time.Second, "the relay counts the packets", func() (bool, string) {
		up, down = r.Stats()
		return up.Delivered > 0 && down.Delivered > 0, fmt.Sprintf("up %+v down %+v", up, down)
	})
	t.Logf("allocations %d, up %+v, down %+v", r.Allocations(), up, down)
}
