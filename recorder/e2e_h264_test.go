package recorder_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/recorder/storage"
	"github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// TestRecordH264 records a Go SDK publisher sending H.264 (640x360 constrained baseline) and
// Opus into the local-folder store: the file is Matroska with both streams, decodes, starts
// on a keyframe and lasts as long as the publisher published.
func TestRecordH264(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	const room = "rec-h264"
	files := testmedia.Get(t)
	pub := testclient.Join(t, ts.target, room, "teacher", &testclient.JoinOptions{NoAutoSubscribe: true})
	if _, err := testclient.PublishH264(pub.Room, files, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := testclient.PublishOpus(pub.Room, files, nil); err != nil {
		t.Fatal(err)
	}
	waitRecording(t, ts.srv.Recorder(), room)
	start := time.Now()
	time.Sleep(15*time.Second - time.Since(start))
	pub.Disconnect()
	published := time.Since(start)
	m := stopAndGet(t, ts, room)
	if len(m.Files) != 1 {
		t.Fatalf("manifest files: %+v", m.Files)
	}
	f := m.Files[0]
	if !strings.HasSuffix(f.Name, ".mkv") || f.ContentType != "video/x-matroska" || !f.Indexed || f.Size == 0 || f.SHA256 == "" {
		t.Errorf("manifest file entry: %+v", f)
	}
	codecs := map[string]string{}
	for _, tr := range f.Tracks {
		codecs[tr.Kind] = tr.Codec
	}
	if len(f.Tracks) != 2 || codecs["video"] != "V_MPEG4/ISO/AVC" || codecs["audio"] != "A_OPUS" {
		t.Errorf("manifest tracks: %+v", f.Tracks)
	}
	store, err := storage.NewLocal(filepath.Join(ts.cfg.DataDir, "recordings"))
	if err != nil {
		t.Fatal(err)
	}
	r := probe(t, fetch(t, store, f.Key))
	if r.VideoCodec != "h264" || r.AudioCodec != "opus" {
		t.Errorf("codecs %s + %s, want h264 + opus", r.VideoCodec, r.AudioCodec)
	}
	if r.Width != files.H264.Width || r.Height != files.H264.Height {
		t.Errorf("recorded %dx%d, want %dx%d", r.Width, r.Height, files.H264.Width, files.H264.Height)
	}
	checkDuration(t, r, f.Duration, published)
	if min := int(published.Seconds() * 30 * 0.7); r.VideoFrames < min {
		t.Errorf("%d video frames, want at least %d", r.VideoFrames, min)
	}
	if min := int(published.Seconds() * 50 * 0.8); r.AudioFrames < min {
		t.Errorf("%d audio frames, want at least %d", r.AudioFrames, min)
	}
}
