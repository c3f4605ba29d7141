package testclient

import (
	"net"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/test/testmedia"
)

// loopbackPair connects two pion PeerConnections over 127.0.0.1 only, sending track from the
// first to the second, and returns the receiver's statistics and the receiving PC.
func loopbackPair(t *testing.T, track webrtc.TrackLocal) (*TrackStats, *webrtc.PeerConnection) {
	t.Helper()
	newPC := func() *webrtc.PeerConnection {
		me := &webrtc.MediaEngine{}
		if err := me.RegisterDefaultCodecs(); err != nil {
			t.Fatal(err)
		}
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
		ir := &interceptor.Registry{}
		if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
			t.Fatal(err)
		}
		se := webrtc.SettingEngine{}
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pc.Close() })
		return pc
	}
	send, recv := newPC(), newPC()
	if _, err := send.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	got := make(chan *TrackStats, 1)
	recv.OnTrack(func(tr *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		ts := newTrackStats(tr, r, "publisher", "PA_x", "TR_x")
		go ts.read(tr, nil)
		go func() { // consume RTCP so interceptors run
			for {
				if _, _, err := r.ReadRTCP(); err != nil {
					return
				}
			}
		}()
		got <- ts
	})
	offer, err := send.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gather := webrtc.GatheringCompletePromise(send)
	if err := send.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gather
	if err := recv.SetRemoteDescription(*send.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	answer, err := recv.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gather = webrtc.GatheringCompletePromise(recv)
	if err := recv.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	<-gather
	if err := send.SetRemoteDescription(*recv.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	select {
	case ts := <-got:
		return ts, recv
	case <-time.After(10 * time.Second):
		t.Fatal("no track within 10s over loopback")
		return nil, nil
	}
}

// TestLoopbackVP8 checks, without any SFU, that the publishing side (file provider, SDK
// LocalTrack pacing and packetization) and the receiving statistics agree: real-time 30 fps,
// the layer's resolution, no gaps, and a keyframe in answer to a PLI.
func TestLoopbackVP8(t *testing.T) {
	files := testmedia.Get(t)
	layer := files.VP8[testmedia.Medium]
	pr, err := vp8Provider(layer.Path, &VideoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	track, err := newTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, pr)
	if err != nil {
		t.Fatal(err)
	}
	ts, recv := loopbackPair(t, track)

	Eventually(t, 10*time.Second, "first keyframe", func() (bool, string) {
		s := ts.Snapshot()
		return s.HasResolution(layer.Width, layer.Height), s.String()
	})
	first := ts.Snapshot()
	time.Sleep(2 * time.Second) // measuring a rate over a fixed window, not asserting on time
	s := ts.Snapshot()
	elapsed := s.LastPacketAt.Sub(first.LastPacketAt).Seconds()
	fps := float64(s.Frames-first.Frames) / elapsed
	if fps < 20 || fps > 40 {
		t.Errorf("%.1f fps over %.1fs, want ~30: %s", fps, elapsed, s)
	}
	if s.Gaps != 0 || s.BrokenFrames != 0 || s.TimestampBackwards != 0 || s.PictureIDJumps != 0 {
		t.Errorf("stream not continuous: %s", s)
	}
	// RTP timestamps advance 3000 ticks (90 kHz / 30) per frame.
	if d := int64(s.LastTimestamp - first.LastTimestamp); d < int64(s.Frames-first.Frames-2)*3000 || d > int64(s.Frames-first.Frames+2)*3000 {
		t.Errorf("RTP timestamp advanced %d over %d frames", d, s.Frames-first.Frames)
	}
	bitrate := s.BitrateSince(first)
	if bitrate < 0.4*float64(layer.Bitrate) || bitrate > 2.5*float64(layer.Bitrate) {
		t.Errorf("bitrate %.0f, layer target %d", bitrate, layer.Bitrate)
	}

	// A PLI makes the provider jump to the next keyframe at once.
	keys := s.Keyframes
	if err := recv.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: s.SSRC}}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 2*time.Second, "keyframe after PLI", func() (bool, string) {
		st := pr.snapshot()
		return ts.Snapshot().Keyframes > keys && st.PLIs >= 1, ts.Snapshot().String()
	})
	if st := pr.snapshot(); st.ForcedKeyframes < 1 && st.KeySamples < 2 {
		t.Errorf("provider stats after PLI: %+v", st)
	}
}

// TestLoopbackOpus checks the Opus provider: 50 packets/s and the audio-level extension
// following the file's loud/quiet envelope.
func TestLoopbackOpus(t *testing.T) {
	files := testmedia.Get(t)
	packets, err := testmedia.ReadOggOpus(files.Opus.Path)
	if err != nil {
		t.Fatal(err)
	}
	pr := newLoopProvider(packets, nil, files.Opus.FrameDuration, true, false)
	pr.levels = files.Opus.Levels
	track, err := newTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, pr)
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := loopbackPair(t, track)
	Eventually(t, 10*time.Second, "audio flowing", func() (bool, string) {
		s := ts.Snapshot()
		return s.Packets >= 25, s.String()
	})
	first := ts.Snapshot()
	time.Sleep(time.Second)
	s := ts.Snapshot()
	rate := float64(s.Packets-first.Packets) / s.LastPacketAt.Sub(first.LastPacketAt).Seconds()
	if rate < 40 || rate > 60 || s.Gaps != 0 {
		t.Errorf("%.1f packets/s, want 50: %s", rate, s)
	}
	// The first two seconds of the file are loud (about 13 dBov).
	if s.AudioLevelPackets == 0 || s.AudioLevel < 0 || s.AudioLevel > 30 {
		t.Errorf("audio level %d (%d packets with the extension) in the loud part", s.AudioLevel, s.AudioLevelPackets)
	}
}

// TestLoopbackH264 checks the H.264 provider: one access unit per 1/30 s with the IDR first,
// and a keyframe again after a PLI.
func TestLoopbackH264(t *testing.T) {
	files := testmedia.Get(t)
	units, err := testmedia.ReadH264AccessUnits(files.H264.Path)
	if err != nil {
		t.Fatal(err)
	}
	isKey := make([]bool, len(units))
	for i, u := range units {
		isKey[i] = testmedia.IsH264Keyframe(u)
	}
	pr := newLoopProvider(units, isKey, time.Second/testmedia.FPS, true, true)
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
	track, err := newTrack(codec, pr)
	if err != nil {
		t.Fatal(err)
	}
	ts, recv := loopbackPair(t, track)
	Eventually(t, 10*time.Second, "H.264 frames", func() (bool, string) {
		s := ts.Snapshot()
		return s.Keyframes >= 1 && s.Frames >= 30, s.String()
	})
	s := ts.Snapshot()
	if s.Gaps != 0 || s.TimestampBackwards != 0 {
		t.Errorf("not continuous: %s", s)
	}
	if err := recv.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: s.SSRC}}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 2*time.Second, "IDR after PLI", func() (bool, string) {
		now := ts.Snapshot()
		return now.Keyframes > s.Keyframes, now.String()
	})
}
