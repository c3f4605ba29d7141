package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	tc "github.com/sanke-edu/sanke/test/testclient"
)

// TestTrackKindMatchesSource checks that a track's media kind matches its declared source
// (issue 12 #5: a teaching point allowed only CAMERA published Opus declared as CAMERA, and
// the teacher heard it):
//   - add_track declaring audio as CAMERA, or video as MICROPHONE or SCREEN_SHARE_AUDIO, is
//     answered NOT_ALLOWED;
//   - a participant allowed only CAMERA announces a video CAMERA track, then sends Opus
//     media with that track's cid from a plain pion PeerConnection: the server refuses it
//     (NOT_ALLOWED naming the cid) and publishes nothing, so nobody hears it.
func TestTrackKindMatchesSource(t *testing.T) {
	srv := startServer(t)
	target := srv.Target()
	room := roomName(t, "kind")

	t.Run("add_track", func(t *testing.T) {
		c := dialRaw(t, target, target.Token(t, "full", tc.JoinGrant(room)), url.Values{"auto_subscribe": {"0"}})
		c.startReading()
		c.waitJoin()
		for _, a := range []struct {
			kind   livekit.TrackType
			source livekit.TrackSource
		}{
			{livekit.TrackType_AUDIO, livekit.TrackSource_CAMERA},
			{livekit.TrackType_AUDIO, livekit.TrackSource_SCREEN_SHARE},
			{livekit.TrackType_VIDEO, livekit.TrackSource_MICROPHONE},
			{livekit.TrackType_VIDEO, livekit.TrackSource_SCREEN_SHARE_AUDIO},
		} {
			cid := fmt.Sprintf("%s-as-%s", a.kind, a.source)
			c.request(addTrack(cid, "t", a.kind, a.source))
			rr := c.waitMessage("an answer to "+cid, func(m *livekit.SignalResponse) bool {
				return m.GetTrackPublished().GetCid() == cid || m.GetRequestResponse().GetAddTrack().GetCid() == cid
			}).GetRequestResponse()
			if rr.GetReason() != livekit.RequestResponse_NOT_ALLOWED {
				t.Errorf("add_track %s: accepted, want NOT_ALLOWED", cid)
			}
		}
		c.request(addTrack("mic", "mic", livekit.TrackType_AUDIO, livekit.TrackSource_MICROPHONE))
		c.waitMessage("track_published for a real microphone", func(m *livekit.SignalResponse) bool { return m.GetTrackPublished().GetCid() == "mic" })
	})

	t.Run("media", func(t *testing.T) {
		grant := tc.JoinGrant(room)
		grant.SetCanPublishSources([]livekit.TrackSource{livekit.TrackSource_CAMERA})
		c := dialRaw(t, target, target.Token(t, "tp", grant), url.Values{"auto_subscribe": {"0"}})
		c.startReading()
		c.waitJoin()
		c.request(addTrack("cam", "camera", livekit.TrackType_VIDEO, livekit.TrackSource_CAMERA))
		c.waitMessage("track_published for cam", func(m *livekit.SignalResponse) bool { return m.GetTrackPublished().GetCid() == "cam" })

		pc, stop := sendOpusAs(t, c, "cam")
		defer stop()
		added := 0
		tc.Eventually(t, mediaWait, "the server refuses Opus sent for the video track", func() (bool, string) {
			var published []string
			addTrickled(t, c, pc, &added)
			for _, m := range c.messages() {
				if rr := m.GetRequestResponse(); rr.GetAddTrack().GetCid() == "cam" && rr.GetReason() == livekit.RequestResponse_NOT_ALLOWED {
					return true, ""
				}
				for _, p := range m.GetUpdate().GetParticipants() {
					for _, tr := range p.GetTracks() {
						published = append(published, fmt.Sprintf("%s %s %s %s", p.GetIdentity(), tr.GetType(), tr.GetSource(), tr.GetMimeType()))
					}
				}
			}
			return false, fmt.Sprintf("published: %v", published)
		})
		info, err := target.RoomClient().GetParticipant(ctxTimeout(t), &livekit.RoomParticipantIdentity{Room: room, Identity: "tp"})
		if err != nil {
			t.Fatal(err)
		}
		if len(info.GetTracks()) != 0 {
			t.Errorf("tp publishes %v", info.GetTracks())
		}
	})
	serverAlive(t, srv)
}

// sendOpusAs makes c a publisher with a plain pion PeerConnection whose one track is Opus
// with track id cid, and sends Opus silence on it until stop is called. The server's answer
// is applied here; add the candidates it trickles with addCandidate.
func sendOpusAs(t *testing.T, c *rawClient, cid string) (pc *webrtc.PeerConnection, stop func()) {
	t.Helper()
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(loopbackSettings())).NewPeerConnection(webrtc.Configuration{})
	t.Cleanup(func() { _ = pc.Close() })
	if err != nil {
		t.Fatal(err)
	}
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, cid, "stream")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	offerToServer(t, c, pc)
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				_ = track.WriteSample(media.Sample{Data: []byte{0xf8, 0xff, 0xfe}, Duration: 20 * time.Millisecond})
			}
		}
	}()
	return pc, func() { close(done) }
}

// loopbackSettings keeps a test's pion PeerConnection on IPv4 loopback.
func loopbackSettings() webrtc.SettingEngine {
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return se
}

// offerToServer sends pc's offer, its candidates gathered into it, as c's publisher offer,
// applies the server's answer and returns the answer's SDP. Add the candidates the server
// trickles with addTrickled.
func offerToServer(t *testing.T, c *rawClient, pc *webrtc.PeerConnection) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	c.request(&livekit.SignalRequest{Message: &livekit.SignalRequest_Offer{Offer: &livekit.SessionDescription{
		Type: "offer", Sdp: pc.LocalDescription().SDP, Id: 1,
	}}})
	answer := c.waitMessage("the server's answer", func(m *livekit.SignalResponse) bool { return m.GetAnswer() != nil }).GetAnswer()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer.GetSdp()}); err != nil {
		t.Fatal(err)
	}
	return answer.GetSdp()
}

// addTrickled adds to pc the publisher candidates the server trickled to c that are not
// added yet; added counts those added before, and is updated.
func addTrickled(t *testing.T, c *rawClient, pc *webrtc.PeerConnection, added *int) {
	trickles := 0
	for _, m := range c.messages() {
		if tr := m.GetTrickle(); tr != nil && tr.GetTarget() == livekit.SignalTarget_PUBLISHER {
			if trickles++; trickles > *added {
				*added++
				addCandidate(t, pc, tr)
			}
		}
	}
}

// addCandidate adds a candidate the server trickled to pc.
func addCandidate(t *testing.T, pc *webrtc.PeerConnection, tr *livekit.TrickleRequest) {
	var init webrtc.ICECandidateInit
	if err := json.Unmarshal([]byte(tr.GetCandidateInit()), &init); err != nil {
		t.Errorf("server trickled a bad candidate %q: %v", tr.GetCandidateInit(), err)
		return
	}
	if err := pc.AddICECandidate(init); err != nil {
		t.Logf("add candidate: %v", err)
	}
}
