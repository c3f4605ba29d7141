package recorder_test

import (
	"path/filepath"
	"testing"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/sanke-edu/sanke/recorder/storage"
	"github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// TestRecordH264 records H.264 (640x360 constrained baseline) and Opus: the file is Matroska
// with both streams.
func TestRecordH264(t *testing.T) {
	t.Parallel()
	recordCodec(t, codecRecording{
		room:    "rec-h264",
		publish: func(r *lksdk.Room, f testmedia.Files) error { _, err := testclient.PublishH264(r, f, nil); return err },
		ext:     ".mkv", contentType: "video/x-matroska", trackCodec: "V_MPEG4/ISO/AVC", probeCodec: "h264",
		size: func(f testmedia.Files) [2]int { return [2]int{f.H264.Width, f.H264.Height} },
	})
}

// TestRecordVP9 records VP9 (640x360, profile 0) and Opus: the file is WebM with both streams.
func TestRecordVP9(t *testing.T) {
	t.Parallel()
	recordCodec(t, codecRecording{
		room:    "rec-vp9",
		publish: func(r *lksdk.Room, f testmedia.Files) error { _, err := testclient.PublishVP9(r, f, nil); return err },
		ext:     ".webm", contentType: "video/webm", trackCodec: "V_VP9", probeCodec: "vp9",
		size: func(f testmedia.Files) [2]int { return [2]int{f.VP9.Width, f.VP9.Height} },
	})
}

// codecRecording is what recordCodec publishes and what it expects of the file.
type codecRecording struct {
	room    string
	publish func(*lksdk.Room, testmedia.Files) error // publishes the video
	// ext and contentType are the file's; trackCodec is its video track's Matroska codec id
	// and probeCodec ffprobe's name of it.
	ext, contentType, trackCodec, probeCodec string
	size                                     func(testmedia.Files) [2]int
}

// recordCodec records a Go SDK publisher sending c's video and Opus for 15 s into the
// local-folder store: the manifest names one file of the expected type with both tracks,
// and the file has the published size, decodes without an error, starts on a keyframe and
// lasts as long as the publisher published.
func recordCodec(t *testing.T, c codecRecording) {
	t.Helper()
	ts := startServer(t, nil)
	files := testmedia.Get(t)
	pub := testclient.Join(t, ts.target, c.room, "teacher", &testclient.JoinOptions{NoAutoSubscribe: true})
	if err := c.publish(pub.Room, files); err != nil {
		t.Fatal(err)
	}
	if _, err := testclient.PublishOpus(pub.Room, files, nil); err != nil {
		t.Fatal(err)
	}
	waitRecording(t, ts.srv.Recorder(), c.room)
	start := time.Now()
	time.Sleep(15 * time.Second) // the length of the recording, not a margin
	pub.Disconnect()
	published := time.Since(start)
	m := stopAndGet(t, ts, c.room)
	if len(m.Files) != 1 {
		t.Fatalf("manifest files: %+v", m.Files)
	}
	f := m.Files[0]
	if f.Name != "teacher_camera"+c.ext || f.ContentType != c.contentType || !f.Indexed || f.Size == 0 || f.SHA256 == "" {
		t.Errorf("manifest file entry: %+v", f)
	}
	codecs := map[string]string{}
	for _, tr := range f.Tracks {
		codecs[tr.Kind] = tr.Codec
	}
	if len(f.Tracks) != 2 || codecs["video"] != c.trackCodec || codecs["audio"] != "A_OPUS" {
		t.Errorf("manifest tracks: %+v", f.Tracks)
	}
	store, err := storage.NewLocal(filepath.Join(ts.cfg.DataDir, "recordings"))
	if err != nil {
		t.Fatal(err)
	}
	// probe also decodes the whole file (ffmpeg -v error ... -f null -) and fails on any error.
	r := probe(t, fetch(t, store, f.Key))
	if r.VideoCodec != c.probeCodec || r.AudioCodec != "opus" {
		t.Errorf("codecs %s + %s, want %s + opus", r.VideoCodec, r.AudioCodec, c.probeCodec)
	}
	if size := c.size(files); r.Width != size[0] || r.Height != size[1] {
		t.Errorf("recorded %dx%d, want %dx%d", r.Width, r.Height, size[0], size[1])
	}
	checkDuration(t, r, f.Duration, published)
	if min := int(published.Seconds() * 30 * 0.7); r.VideoFrames < min {
		t.Errorf("%d video frames, want at least %d", r.VideoFrames, min)
	}
	if min := int(published.Seconds() * 50 * 0.8); r.AudioFrames < min {
		t.Errorf("%d audio frames, want at least %d", r.AudioFrames, min)
	}
}
