package room_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	tc "github.com/sanke-edu/sanke/test/testclient"
)

// chromiumAudioOffer returns a publisher offer as Chromium makes it for one microphone with
// client track id cid: Opus first, then RED (63, "111/111"), transport-cc and no audio NACK.
func chromiumAudioOffer(t *testing.T, cid string) string {
	t.Helper()
	me := &webrtc.MediaEngine{}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1", RTCPFeedback: []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}}}, PayloadType: 111},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/red", ClockRate: 48000, Channels: 2, SDPFmtpLine: "111/111"}, PayloadType: 63},
	} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pc.Close() }()
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, cid, "stream")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(o.SDP, "m=audio 9 UDP/TLS/RTP/SAVPF 111 63") {
		t.Fatalf("offer is not Chromium's order:\n%s", o.SDP)
	}
	return o.SDP
}

// answerAudio announces a microphone with req's options, offers it and returns the answer's
// audio section.
func answerAudio(t *testing.T, c *sigClient, req *livekit.AddTrackRequest) *sdp.MediaDescription {
	t.Helper()
	req.Type, req.Source, req.Name = livekit.TrackType_AUDIO, livekit.TrackSource_MICROPHONE, "mic"
	c.send(&livekit.SignalRequest{Message: &livekit.SignalRequest_AddTrack{AddTrack: req}})
	c.await("track published", func(m *livekit.SignalResponse) bool { return m.GetTrackPublished().GetCid() == req.Cid })
	c.send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Offer{Offer: &livekit.SessionDescription{
		Type: "offer", Sdp: chromiumAudioOffer(t, req.Cid), Id: 1}}})
	a := c.await("answer", func(m *livekit.SignalResponse) bool { return m.GetAnswer() != nil })
	if a == nil {
		t.Fatalf("no answer: %v", c.closed())
	}
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(a.GetAnswer().Sdp); err != nil {
		t.Fatal(err)
	}
	for _, m := range parsed.MediaDescriptions {
		if m.MediaName.Media == "audio" {
			return m
		}
	}
	t.Fatalf("no audio section in the answer:\n%s", a.GetAnswer().Sdp)
	return nil
}

// attrs returns the values of a section's attributes named key.
func attrs(m *sdp.MediaDescription, key string) []string {
	var out []string
	for _, a := range m.Attributes {
		if a.Key == key {
			out = append(out, a.Value)
		}
	}
	return out
}

// The answer to a Chromium publisher puts RED first (Chromium sends the first codec), keeps
// RED's fmtp, and answers Opus with in-band FEC, DTX unless the track disables it and stereo
// when asked; a track that disables RED is answered Opus alone.
func TestPublisherAudioAnswer(t *testing.T) {
	srv, _ := startServer(t, nil)
	for _, tt := range []struct {
		name      string
		req       *livekit.AddTrackRequest
		formats   string
		opusFmtp  string
		wantNoRED bool
	}{
		{"defaults", &livekit.AddTrackRequest{Cid: "mic-a"}, "63 111", "111 minptime=10;useinbandfec=1;usedtx=1", false},
		{"no dtx, stereo", &livekit.AddTrackRequest{Cid: "mic-b", DisableDtx: true, Stereo: true}, "63 111", //nolint:staticcheck // livekit-client still sends disable_dtx
			"111 minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1", false},
		{"no red", &livekit.AddTrackRequest{Cid: "mic-c", DisableRed: true}, "111", "111 minptime=10;useinbandfec=1;usedtx=1", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := dialSignal(t, srv.Target, srv.Target.Token(t, tt.req.Cid, tc.JoinGrant("audio-answer")), nil)
			if err != nil {
				t.Fatal(err)
			}
			m := answerAudio(t, c, tt.req)
			if got := strings.Join(m.MediaName.Formats, " "); got != tt.formats {
				t.Errorf("answer formats %q, want %q", got, tt.formats)
			}
			fmtps := attrs(m, "fmtp")
			if !slices.Contains(fmtps, tt.opusFmtp) {
				t.Errorf("fmtp %q, want %q", fmtps, tt.opusFmtp)
			}
			if !tt.wantNoRED && !slices.Contains(fmtps, "63 111/111") {
				t.Errorf("fmtp %q lacks RED's", fmtps)
			}
			if !slices.Contains(attrs(m, "rtcp-fb"), "111 nack") {
				t.Errorf("rtcp-fb %q lacks nack: the publisher would not resend the audio its uplink lost", attrs(m, "rtcp-fb"))
			}
			if !slices.Contains(attrs(m, "rtcp-fb"), "111 transport-cc") {
				t.Errorf("rtcp-fb %q lacks transport-cc: the publisher's estimator needs it", attrs(m, "rtcp-fb"))
			}
		})
	}
}
