package room

import (
	"testing"

	"github.com/pion/webrtc/v4"
)

// TestOfferNeeded follows a single PeerConnection through the cases where the server, which
// only answers, must ask the client for an offer: a track added on a receive section the
// client offered ahead but that was answered without it (pion's AddTrack reuses it: no new
// section is missing, yet only a new offer lets the answer send on it), a track with no
// section at all, and a track removed from a section negotiated as sending.
func TestOfferNeeded(t *testing.T) {
	client, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Close() }()
	server, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = server.Close() }()
	tr := &transport{pc: server}
	// The client offers one receive section ahead, as the LiveKit SDKs do.
	if _, err := client.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	negotiate := func() {
		t.Helper()
		offer, err := client.CreateOffer(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := client.SetLocalDescription(offer); err != nil {
			t.Fatal(err)
		}
		if err := server.SetRemoteDescription(offer); err != nil {
			t.Fatal(err)
		}
		answer, err := server.CreateAnswer(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := server.SetLocalDescription(answer); err != nil {
			t.Fatal(err)
		}
		if err := client.SetRemoteDescription(answer); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(step string, audios, videos uint32, needed bool) {
		t.Helper()
		a, v, n := tr.offerNeeded()
		if a != audios || v != videos || n != needed {
			t.Errorf("%s: offerNeeded() = %d audio, %d video sections, needed %v; want %d, %d, %v", step, a, v, n, audios, videos, needed)
		}
	}
	track := func(id string, kind webrtc.RTPCodecType) *webrtc.TrackLocalStaticRTP {
		mime := webrtc.MimeTypeVP8
		if kind == webrtc.RTPCodecTypeAudio {
			mime = webrtc.MimeTypeOpus
		}
		tl, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: mime}, id, "PA_x|"+id)
		if err != nil {
			t.Fatal(err)
		}
		return tl
	}

	negotiate()
	expect("first answer, nothing sent", 0, 0, false)

	video, err := server.AddTrack(track("TR_v", webrtc.RTPCodecTypeVideo))
	if err != nil {
		t.Fatal(err)
	}
	expect("video added on the receive section answered without it", 0, 0, true)
	if _, err := server.AddTrack(track("TR_a", webrtc.RTPCodecTypeAudio)); err != nil {
		t.Fatal(err)
	}
	expect("audio added with no section", 1, 0, true)

	if _, err := client.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	negotiate()
	expect("both answered as sent", 0, 0, false)

	if err := server.RemoveTrack(video); err != nil {
		t.Fatal(err)
	}
	expect("video removed from a sending section", 0, 0, true)
	negotiate()
	expect("removal answered", 0, 0, false)
}
