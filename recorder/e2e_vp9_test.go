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

// TestRecordVP9 records a Go SDK publisher sending VP9 (640x360, profile 0) and Opus into the
// local-folder store: the file is WebM with a vp9 and an opus stream of the published size,
// decodes without an error, starts on a keyframe and lasts as long as the publisher published.
func TestRecordVP9(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	const room = "rec-vp9"
	files := testmedia.Get(t)
	pub := testclient.Join(t, ts.target, room, "teacher", &testclient.JoinOptions{NoAutoSubscribe: true})
	if _, err := testclient.PublishVP9(pub.Room, files, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := testclient.PublishOpus(pub.Room, files, nil); err != nil {
		t.Fatal(err)
	}
	waitRecording(t, ts.srv.Recorder(), room)
	start := time.Now()
	time.Sleep(15*time.Second - time.Since(start)) // the length of the recording, not a margin
	pub.Disconnect()
	published := time.Since(start)
	m := stopAndGet(t, ts, room)
	if len(m.Files) != 1 {
		t.Fatalf("manifest files: %+v", m.Files)
	}
	f := m.Files[0]
	if !strings.HasSuffix(f.Name, ".webm") || f.ContentType != "video/webm" || !f.Indexed || f.Size == 0 || f.SHA256 == "" {
		t.Errorf("manifest file entry: %+v", f)
	}
	codecs := map[string]string{}
	for _, tr := range f.Tracks {
		codecs[tr.Kind] = tr.Codec
	}
	if len(f.Tracks) != 2 || codecs["video"] != "V_VP9" || codecs["audio"] != "A_OPUS" {
		t.Errorf("manifest tracks: %+v", f.Tracks)
	}
	store, err := storage.NewLocal(filepath.Join(ts.cfg.DataDir, "recordings"))
	if err != nil {
		t.Fatal(err)
	}
	// probe also decodes the whole file (ffmpeg -v error ... -f null -) and fails on any error.
	r := probe(t, fetch(t, store, f.Key))
	if r.VideoCodec != "vp9" || r.AudioCodec != "opus" {
		t.Errorf("codecs %s + %s, want vp9 + opus", r.VideoCodec, r.AudioCodec)
	}
	if r.Width != files.VP9.Width || r.Height != files.VP9.Height {
		t.Errorf("recorded %dx%d, want %dx%d", r.Width, r.Height, files.VP9.Width, files.VP9.Height)
	}
	checkDuration(t, r, f.Duration, published)
	if min := int(published.Seconds() * 30 * 0.7); r.VideoFrames < min {
		t.Errorf("%d video frames, want at least %d", r.VideoFrames, min)
	}
	if min := int(published.Seconds() * 50 * 0.8); r.AudioFrames < min {
		t.Errorf("%d audio frames, want at least %d", r.AudioFrames, min)
	}
}
