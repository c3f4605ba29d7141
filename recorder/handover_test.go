package recorder

import (
	"context"
	"testing"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/test/testmedia"
)

// TestLateTrackKeepsTheCamera: a microphone that arrives after the camera's file was gathered
// (a teaching point called on mid-class) starts a new file, and the camera goes on recording
// in it; the first file keeps what came before.
func TestLateTrackKeepsTheCamera(t *testing.T) {
	m := loadBenchMedia(t)
	r, store := localRecorder(t, Options{})
	s := newSession(r, &livekit.Room{Name: "late", Sid: "RM_late"})
	take := func(kind webrtc.RTPCodecType, mime, sid string) *trackReader {
		t.Helper()
		s.mu.Lock()
		f, ft, err := s.fileFor("pupil", "camera", kind, mime, &livekit.TrackInfo{Sid: sid, Width: 1280, Height: 720})
		s.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		clock := int64(48000)
		if kind == webrtc.RTPCodecTypeVideo {
			clock = 90000
		}
		tr := newReader(f, ft, kind == webrtc.RTPCodecTypeVideo, mime, clock, func() {}, r.log)
		f.attachReader(ft, tr, sid)
		return tr
	}
	perSecond := m.videoPackets()
	// second pushes second sec of the media to tr (video or audio), arriving "now" at the
	// start of tr's file: the timeline is the media's, whatever the machine's speed.
	second := func(tr *trackReader, sec int) {
		frames, clock := m.audio, uint32(48000)
		if tr.video {
			frames, clock = m.video, 90000
		}
		for _, fr := range frames {
			for _, p := range fr {
				q := *p
				q.Payload = append([]byte(nil), p.Payload...)
				q.Timestamp += uint32(sec) * clock
				if tr.video {
					q.SequenceNumber += uint16(sec * perSecond)
				} else {
					q.SequenceNumber += uint16(sec * len(m.audio))
				}
				tr.push(&q, tr.f.created)
			}
		}
	}

	tv := take(webrtc.RTPCodecTypeVideo, "video/vp8", "TR_cam")
	first := tv.f
	first.gatherDone() // the gather window passed with the camera alone
	second(tv, 0)
	second(tv, 1)

	ta := take(webrtc.RTPCodecTypeAudio, "audio/opus", "TR_mic")
	next := ta.f
	if next == first {
		t.Fatal("the microphone joined a file whose tracks were fixed")
	}
	// The camera goes on past the new file's start (however long after the first one's it
	// came), the microphone from then on.
	shiftSec := int(next.created.Sub(first.created).Seconds())
	for sec := 2; sec < shiftSec+6; sec++ {
		second(tv, sec)
		if sec >= shiftSec+2 {
			second(ta, sec-shiftSec-2)
		}
	}
	if tv.f != next {
		t.Fatalf("the camera is still recorded into %s, not %s", tv.f.name, next.name)
	}
	for _, tr := range []*trackReader{tv, ta} {
		tr.sb.Flush()
		tr.drain()
	}

	ctx := context.Background()
	mf1, err := finishFile(ctx, first)
	if err != nil || mf1 == nil || len(mf1.Tracks) != 1 {
		t.Fatalf("first file: %+v, %v", mf1, err)
	}
	mf2, err := finishFile(ctx, next)
	if err != nil || mf2 == nil {
		t.Fatalf("second file: %v", err)
	}
	if len(mf2.Tracks) != 2 {
		t.Fatalf("second file's tracks %+v, want the camera and the microphone", mf2.Tracks)
	}
	p, _ := storedCopy(t, store, mf2.Key)
	pr := testmedia.Probe(t, p)
	if pr.VideoCodec != "vp8" || pr.AudioCodec != "opus" {
		t.Errorf("second file's streams %+v, want vp8 and opus", pr)
	}
	// Four seconds of the camera at 30 fps (every second starts on a keyframe).
	if pr.VideoFrames < 90 || pr.AudioFrames < 150 {
		t.Errorf("second file: %d video and %d audio frames, want the camera's last seconds and the microphone's", pr.VideoFrames, pr.AudioFrames)
	}
}
