package e2e

import (
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/sfu/bwe"
	tc "github.com/sanke-edu/sanke/test/testclient"
)

// transportCCURI is the transport-wide sequence number header extension.
const transportCCURI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

// TestPublisherTransportFeedback checks the feedback a publisher's congestion control rests on
// (issue 14, "Uplink for rural publishers"): a publisher that offers transport-cc and the
// transport-wide-cc extension on its microphone and camera, as Chromium does, is answered
// with both, and the server's transport-wide feedback reports the packets of both as
// received. Chromium's send-side estimate adapts a pupil's sending rate to a thin uplink from
// that feedback alone (the server sends no REMB); the browser test R5 (test/browser) shows it
// doing so.
func TestPublisherTransportFeedback(t *testing.T) {
	srv := startServer(t)
	target := srv.Target()
	room := roomName(t, "twcc")
	c := dialRaw(t, target, target.Token(t, "pupil", tc.JoinGrant(room)), url.Values{"auto_subscribe": {"0"}})
	c.startReading()
	c.waitJoin()
	for _, a := range []struct {
		cid    string
		kind   livekit.TrackType
		source livekit.TrackSource
	}{{"mic", livekit.TrackType_AUDIO, livekit.TrackSource_MICROPHONE}, {"cam", livekit.TrackType_VIDEO, livekit.TrackSource_CAMERA}} {
		c.request(addTrack(a.cid, a.cid, a.kind, a.source))
		c.waitMessage("track_published for "+a.cid, func(m *livekit.SignalResponse) bool { return m.GetTrackPublished().GetCid() == a.cid })
	}

	me := &webrtc.MediaEngine{}
	tcc := []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
		ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1", RTCPFeedback: tcc}, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8,
		ClockRate: 90000, RTCPFeedback: append(tcc, webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"})}, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: transportCCURI}, kind); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(loopbackSettings())).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	mic, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "stream")
	if err != nil {
		t.Fatal(err)
	}
	cam, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "cam", "stream")
	if err != nil {
		t.Fatal(err)
	}
	var senders []*webrtc.RTPSender
	for _, tr := range []*webrtc.TrackLocalStaticRTP{mic, cam} {
		s, err := pc.AddTrack(tr)
		if err != nil {
			t.Fatal(err)
		}
		senders = append(senders, s)
	}
	answer := offerToServer(t, c, pc)
	extID := map[*webrtc.RTPSender]uint8{}
	for _, s := range senders {
		for _, e := range s.GetParameters().HeaderExtensions {
			if e.URI == transportCCURI {
				extID[s] = uint8(e.ID)
			}
		}
		if extID[s] == 0 {
			t.Fatalf("the answer negotiated no transport-wide-cc extension for the %s:\n%s", s.Track().Kind(), answer)
		}
	}

	var mu sync.Mutex
	kindOf := map[uint16]string{} // transport-wide sequence number -> "audio" or "video"
	acked := map[string]int{}     // packets the feedback reported received, by kind
	feedback := 0
	for _, s := range senders {
		go func() {
			var r bwe.TWCCReader
			for {
				pkts, _, err := s.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					raw, err := p.Marshal()
					if err != nil || r.Reset(raw) != nil {
						continue // not transport-wide feedback
					}
					mu.Lock()
					feedback++
					for {
						seq, received, _, ok, err := r.Next()
						if !ok || err != nil {
							break
						}
						if received {
							acked[kindOf[seq]]++
						}
					}
					mu.Unlock()
				}
			}
		}()
	}

	// Media every 20 ms, each packet numbered transport-wide as Chromium's pacer does.
	done := make(chan struct{})
	sent := make(chan struct{})
	t.Cleanup(func() { close(done); <-sent })
	go func() {
		defer close(sent)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var tseq, aseq, vseq uint16
		for n := uint32(0); ; n++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			for _, m := range []struct {
				kind    string
				track   *webrtc.TrackLocalStaticRTP
				id      uint8
				seq     *uint16
				ts      uint32
				payload []byte
			}{
				{"audio", mic, extID[senders[0]], &aseq, n * 960, []byte{0xf8, 0xff, 0xfe}},
				{"video", cam, extID[senders[1]], &vseq, n * 1800, []byte{0x10, 0x00, 0x9d, 0x01, 0x2a, 0x02, 0x00, 0x02, 0x00}},
			} {
				tseq++
				*m.seq++
				pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: *m.seq, Timestamp: m.ts}, Payload: m.payload}
				ext, err := (&rtp.TransportCCExtension{TransportSequence: tseq}).Marshal()
				if err != nil || pkt.SetExtension(m.id, ext) != nil {
					return
				}
				mu.Lock()
				kindOf[tseq] = m.kind
				mu.Unlock()
				_ = m.track.WriteRTP(pkt)
			}
		}
	}()

	added := 0
	tc.Eventually(t, mediaWait, "transport-wide feedback on the publisher's audio and video", func() (bool, string) {
		addTrickled(t, c, pc, &added)
		mu.Lock()
		defer mu.Unlock()
		return acked["audio"] >= 50 && acked["video"] >= 50, fmt.Sprintf("%d feedback packets, received by kind %v, %s",
			feedback, acked, pc.ConnectionState())
	})
}
