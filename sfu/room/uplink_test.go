package room

import (
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/livekit/protocol/auth"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// singlePCOffer returns an offer shaped as livekit-client 2.23 makes it on its single
// PeerConnection: receive sections offered ahead (audio first, then video), then the
// microphone's and the camera's send sections; Opus without NACK, RED, VP8, and the
// transport-wide-cc header extension on every section.
func singlePCOffer(t *testing.T) string {
	t.Helper()
	me := &webrtc.MediaEngine{}
	videoFB := []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBGoogREMB}, {Type: webrtc.TypeRTCPFBTransportCC},
		{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"}, {Type: webrtc.TypeRTCPFBNACK}, {Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"}}
	for _, c := range []struct {
		kind webrtc.RTPCodecType
		c    webrtc.RTPCodecParameters
	}{
		{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
			ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1",
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}}}, PayloadType: 111}},
		{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/red",
			ClockRate: 48000, Channels: 2, SDPFmtpLine: "111/111"}, PayloadType: 63}},
		{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8,
			ClockRate: 90000, RTCPFeedback: videoFB}, PayloadType: 96}},
	} {
		if err := me.RegisterCodec(c.c, c.kind); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []struct {
		kind webrtc.RTPCodecType
		uri  string
	}{
		{webrtc.RTPCodecTypeAudio, extAudioLevel}, {webrtc.RTPCodecTypeAudio, extTWCC}, {webrtc.RTPCodecTypeAudio, sdp.SDESMidURI},
		{webrtc.RTPCodecTypeVideo, extTWCC}, {webrtc.RTPCodecTypeVideo, sdp.SDESMidURI}, {webrtc.RTPCodecTypeVideo, sdp.SDESRTPStreamIDURI},
	} {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: e.uri}, e.kind); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pc.Close() }()
	recv := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(kind, recv); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []webrtc.RTPCodecCapability{{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, {MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}} {
		track, err := webrtc.NewTrackLocalStaticRTP(c, strings.ToLower(strings.TrimPrefix(c.MimeType, "audio/")), "stream")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o.SDP
}

// The answer to a publisher on a single PeerConnection, whose first audio section is one it
// receives on: pion negotiates a PeerConnection's codecs from the first section of each kind,
// so the NACK that withAudioNACK gives Opus has to be on that section too, or the microphone
// is answered without it (Chromium then keeps no audio to retransmit, and a pupil's uplink
// loss is a gap the teacher hears). The microphone gets RED first; both send sections keep
// transport-cc feedback and the transport-wide-cc extension (Chromium's send-side estimate
// adapts the pupil's sending rate from the feedback the server sends for them).
func TestPublisherAnswerSinglePeerConnection(t *testing.T) {
	media, err := NewMediaAPI(MediaConfig{BindIP: "127.0.0.1"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = media.Close() })
	p, _ := testParticipant(testRoom(t), "pupil", &auth.VideoGrant{})
	p.single = true
	if err := p.setupTransports(media, nil); err != nil {
		t.Fatal(err)
	}
	pub := p.pub()
	t.Cleanup(pub.Close)
	answer, err := pub.HandleOffer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: singlePCOffer(t)})
	if err != nil {
		t.Fatal(err)
	}
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(answer.SDP); err != nil {
		t.Fatal(err)
	}
	sections := map[string]*sdp.MediaDescription{}
	for _, m := range parsed.MediaDescriptions {
		mid, _ := m.Attribute(sdp.AttrKeyMID)
		sections[mid] = m
	}
	mic, cam := sections["2"], sections["3"]
	if mic == nil || cam == nil {
		t.Fatalf("no answer to the send sections (mids 2 and 3):\n%s", answer.SDP)
	}
	values := func(m *sdp.MediaDescription, key string) []string {
		var out []string
		for _, a := range m.Attributes {
			if a.Key == key {
				out = append(out, a.Value)
			}
		}
		return out
	}
	if got := strings.Join(mic.MediaName.Formats, " "); got != "63 111" {
		t.Errorf("microphone answered with formats %q, want RED first (63 111)", got)
	}
	for _, want := range []string{"111 nack", "111 transport-cc"} {
		if fb := values(mic, "rtcp-fb"); !slices.Contains(fb, want) {
			t.Errorf("microphone's rtcp-fb %q lacks %q", fb, want)
		}
	}
	if fb := values(cam, "rtcp-fb"); !slices.Contains(fb, "96 transport-cc") {
		t.Errorf("camera's rtcp-fb %q lacks transport-cc", fb)
	}
	for name, m := range map[string]*sdp.MediaDescription{"microphone": mic, "camera": cam} {
		if ext := values(m, "extmap"); !slices.ContainsFunc(ext, func(v string) bool { return strings.HasSuffix(v, " "+extTWCC) }) {
			t.Errorf("%s answered without the transport-wide-cc extension: %q", name, ext)
		}
	}
}
