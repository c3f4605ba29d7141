package recorder

import (
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/test/testmedia"
)

// benchMedia is one second of 720p VP8 and Opus as RTP packets.
type benchMedia struct {
	video, audio [][]*rtp.Packet // per frame
}

func loadBenchMedia(b testing.TB) benchMedia {
	files := testmedia.Get(b)
	ivf, err := testmedia.ReadIVF(files.VP8[testmedia.High].Path)
	if err != nil {
		b.Fatal(err)
	}
	opus, err := testmedia.ReadOggOpus(files.Opus.Path)
	if err != nil {
		b.Fatal(err)
	}
	var m benchMedia
	vp := rtp.NewPacketizer(1200, 96, 1, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
	for i := 0; i < 30; i++ {
		m.video = append(m.video, vp.Packetize(ivf.Frames[i], 3000))
	}
	ap := rtp.NewPacketizer(1200, 111, 2, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)
	for i := 0; i < 50; i++ {
		m.audio = append(m.audio, ap.Packetize(opus[i], 960))
	}
	return m
}

// videoPackets is how many video packets one second of m holds: each second's sequence
// numbers follow the previous second's.
func (m benchMedia) videoPackets() int {
	n := 0
	for _, fr := range m.video {
		n += len(fr)
	}
	return n
}

func benchRecorder(b *testing.B) *Recorder {
	r, _ := localRecorder(b, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return r
}

// benchFile makes a recording with one camera+mic file and its two readers.
func benchFile(r *Recorder, n int) (*outFile, *trackReader, *trackReader) {
	s := newSession(r, &livekit.Room{Name: "bench", Sid: "RM_bench"})
	f := newOutFile(s, "p", "camera", n, "video/vp8", webrtc.RTPCodecTypeVideo)
	fv, _ := f.takeTrack(webrtc.RTPCodecTypeVideo, "video/vp8", &livekit.TrackInfo{Sid: "TR_v", Width: 1280, Height: 720})
	fa, _ := f.takeTrack(webrtc.RTPCodecTypeAudio, "audio/opus", &livekit.TrackInfo{Sid: "TR_a"})
	tv := newReader(f, fv, true, "video/vp8", 90000, func() {}, r.log)
	ta := newReader(f, fa, false, "audio/opus", 48000, func() {}, r.log)
	f.attachReader(fv, tv, "TR_v")
	f.attachReader(fa, ta, "TR_a")
	return f, tv, ta
}

// feedSecond pushes one second of media (timestamps shifted by sec seconds).
func feedSecond(m benchMedia, tv, ta *trackReader, sec int) {
	now := time.Now()
	for i := 0; i < 50; i++ {
		if i < 30 {
			for _, p := range m.video[i] {
				q := *p
				q.Header.Timestamp += uint32(sec * 90000)
				q.Header.SequenceNumber += uint16(sec * m.videoPackets())
				tv.push(&q, now)
			}
		}
		for _, p := range m.audio[i] {
			q := *p
			q.Header.Timestamp += uint32(sec * 48000)
			q.Header.SequenceNumber += uint16(sec * 50)
			ta.push(&q, now)
		}
	}
}

// BenchmarkRecordTrackSecond measures the CPU cost of recording: depacketizing, checking,
// muxing and spooling one second of 720p VP8 (~1.5 Mbit/s) plus one second of Opus, i.e. two
// track-seconds per iteration. Uploads to the local store run in the background.
func BenchmarkRecordTrackSecond(b *testing.B) {
	m := loadBenchMedia(b)
	r := benchRecorder(b)
	f, tv, ta := benchFile(r, 1)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		feedSecond(m, tv, ta, i)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(el.Nanoseconds())/float64(2*b.N), "ns/track-second")
	b.ReportMetric(float64(el.Nanoseconds())/float64(2*b.N)/1e9*100, "%core/track")
	_, _ = finishFile(b.Context(), f)
}

// BenchmarkActiveRecordingMemory reports the heap held per active recording (one camera+mic
// file that has recorded 3 s and stays open).
func BenchmarkActiveRecordingMemory(b *testing.B) {
	m := loadBenchMedia(b)
	r := benchRecorder(b)
	const n = 20
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		files := make([]*outFile, n)
		for j := range files {
			f, tv, ta := benchFile(r, j+1)
			for s := 0; s < 3; s++ {
				feedSecond(m, tv, ta, s)
			}
			files[j] = f
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/recording")
		for _, f := range files {
			_, _ = finishFile(b.Context(), f)
		}
	}
}
