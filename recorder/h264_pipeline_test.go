package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/recorder/mkv"
	"github.com/sanke-edu/sanke/recorder/storage"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// h264Feed is 10 s of the H.264 and Opus fixtures as RTP, in send order, with malformed
// video in three places.
type h264Feed struct {
	packets []*rtp.Packet
	video   []bool
}

func makeH264Feed(t *testing.T) h264Feed {
	t.Helper()
	files := testmedia.Get(t)
	units, err := testmedia.ReadH264AccessUnits(files.H264.Path)
	if err != nil {
		t.Fatal(err)
	}
	opus, err := testmedia.ReadOggOpus(files.Opus.Path)
	if err != nil {
		t.Fatal(err)
	}
	vp := rtp.NewPacketizer(1200, 102, 1, &codecs.H264Payloader{}, rtp.NewFixedSequencer(1000), 90000)
	ap := rtp.NewPacketizer(1200, 111, 2, &codecs.OpusPayloader{}, rtp.NewFixedSequencer(5000), 48000)
	var f h264Feed
	vi, ai := 0, 0
	for vi < 300 || ai < 500 {
		if vi < 300 && vi*1000/30 <= ai*20 {
			au := units[vi]
			switch vi {
			case 100: // a NAL unit with the forbidden bit set
				au = annexB([]byte{0xe5, 0x88, 0x84, 0x21, 0x43})
			case 200: // a keyframe whose SPS would make a parser allocate terabytes
				au = annexB(evilSPS, testPPS, testIDR)
			}
			pkts := vp.Packetize(au, 3000)
			if vi == 150 {
				// A STAP-A whose NAL unit sizes overrun the packet.
				pkts = pkts[:1]
				pkts[0].Payload = []byte{0x78, 0xff, 0xff, 0x65, 0x88}
				pkts[0].Marker = true
			}
			for _, p := range pkts {
				f.packets, f.video = append(f.packets, p), append(f.video, true)
			}
			vi++
		} else {
			for _, p := range ap.Packetize(opus[ai], 960) {
				f.packets, f.video = append(f.packets, p), append(f.video, false)
			}
			ai++
		}
	}
	return f
}

// h264TestFile makes a recorder storing into a local folder and a camera+mic file fed by an
// H.264 and an Opus reader.
func h264TestFile(t *testing.T) (*Recorder, storage.Store, *outFile, *trackReader, *trackReader) {
	t.Helper()
	r, store := localRecorder(t, Options{})
	s := newSession(r, &livekit.Room{Name: "h264", Sid: "RM_h264"})
	f := newOutFile(s, "teacher", "camera", 1, "video/h264", webrtc.RTPCodecTypeVideo)
	fv, _ := f.takeTrack(webrtc.RTPCodecTypeVideo, "video/h264", &livekit.TrackInfo{Sid: "TR_v", Width: 640, Height: 360})
	fa, _ := f.takeTrack(webrtc.RTPCodecTypeAudio, "audio/opus", &livekit.TrackInfo{Sid: "TR_a"})
	tv := newReader(f, fv, true, "video/h264", 90000, func() {}, r.log)
	ta := newReader(f, fa, false, "audio/opus", 48000, func() {}, r.log)
	f.attachReader(fv, tv, "TR_v")
	f.attachReader(fa, ta, "TR_a")
	return r, store, f, tv, ta
}

// TestRecordH264Pipeline records the H.264 and Opus fixtures through the track readers into a
// Matroska file, with malformed video on the way, and checks the stored file with ffprobe:
// finished normally; completed from the spool as after a crash (which proves the persisted
// layout carries the H.264 CodecPrivate); and completed from the store alone after a crash
// that lost the spool (tail objects read back, indexed and stored again).
func TestRecordH264Pipeline(t *testing.T) {
	feed := makeH264Feed(t)
	for _, mode := range []string{"finish", "recover-from-spool", "recover-from-store"} {
		t.Run(mode, func(t *testing.T) {
			r, store, f, tv, ta := h264TestFile(t)
			// Every packet "arrives" when the file was made: the file's timeline is then the
			// feed's alone, however long the machine took between the two.
			now := f.created
			for i, p := range feed.packets {
				q := *p
				q.Payload = append([]byte(nil), p.Payload...)
				if feed.video[i] {
					tv.push(&q, now)
				} else {
					ta.push(&q, now)
				}
			}
			tv.sb.Flush()
			tv.drain()
			if tv.malformed == 0 {
				t.Errorf("the malformed access units were not noticed")
			}
			t.Logf("video: %d frames, %d malformed, %d dropped waiting for a keyframe", tv.frames, tv.malformed, tv.waitKey)
			if f.name != "teacher_camera.mkv" || f.docType != "matroska" {
				t.Fatalf("file %s (%s), want Matroska", f.name, f.docType)
			}
			ctx := context.Background()
			// Finished: everything; after a crash the open cluster (the last 2 s) is lost.
			key, wantMin := f.key, 7.0
			minVideo, minAudio := 140, 350
			switch mode {
			case "finish":
				mf, err := finishFile(ctx, f)
				if err != nil || mf == nil {
					t.Fatalf("finish: %v", err)
				}
				if len(mf.Tracks) != 2 || mf.Tracks[0].Codec != "V_MPEG4/ISO/AVC" || mf.Tracks[0].Width != 640 || mf.Tracks[0].Height != 360 {
					t.Errorf("manifest tracks %+v", mf.Tracks)
				}
				key, wantMin = mf.Key, 9.5
				minVideo, minAudio = 200, 480 // 300 and 500 sent, 87 video frames skipped
			case "recover-from-spool":
				f.up.stop()
				b, err := os.ReadFile(filepath.Join(f.s.dir, f.name+".json"))
				if err != nil {
					t.Fatal(err)
				}
				var m fileMeta
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatal(err)
				}
				if len(m.Tracks) != 2 || len(m.Tracks[0].CodecPrivate) == 0 || !strings.Contains(string(m.Layout.Head), string(m.Tracks[0].CodecPrivate)) {
					t.Fatalf("the persisted layout lacks the H.264 CodecPrivate: %+v", m.Tracks)
				}
				r.recoverSpool()
				if _, err := os.Stat(f.s.dir); !os.IsNotExist(err) {
					t.Fatalf("spool directory left after recovery: %v", err)
				}
			case "recover-from-store":
				// Upload what the spool holds as a tail object, as the uploader does every
				// flush interval, then lose the spool.
				f.up.stop()
				f.up.mu.Lock()
				f.up.lastTail = time.Time{}
				f.up.mu.Unlock()
				if err := f.up.step(ctx); err != nil {
					t.Fatal(err)
				}
				if err := os.RemoveAll(r.opts.SpoolDir); err != nil {
					t.Fatal(err)
				}
				r.opts.StaleAfter = time.Nanosecond
				if again := r.sweepStore(true); again > 0 {
					t.Fatalf("sweep left an upload alone for %v", again)
				}
				m := readStoredManifest(t, store, f.s.meta.Prefix)
				if len(m.Files) != 1 {
					t.Fatalf("manifest: %+v", m)
				}
				mf := m.Files[0]
				if !m.Recovered || !mf.Indexed || mf.Key != f.key || mf.Participant != "teacher" || mf.Source != "camera" ||
					len(mf.Tracks) != 2 || mf.Duration < wantMin || mf.Duration > 10.5 || !m.StartedAt.Before(m.EndedAt) {
					t.Errorf("manifest: %+v", m)
				}
				objs, _ := store.List(ctx, f.s.meta.Prefix)
				if len(objs) != 2 {
					t.Errorf("objects left: %+v", objs)
				}
			}
			p, b := storedCopy(t, store, key)
			if sc, err := mkv.Scan(bytes.NewReader(b), io.Discard); err != nil || !sc.Finalized {
				t.Errorf("stored file is not finalized (cues, sizes, duration): %v", err)
			}
			pr := testmedia.Probe(t, p)
			if pr.VideoCodec != "h264" || pr.AudioCodec != "opus" || pr.Width != 640 || pr.Height != 360 {
				t.Errorf("streams %+v, want h264 640x360 and opus", pr)
			}
			if pr.Duration < wantMin || pr.Duration > 10.5 {
				t.Errorf("duration %.2fs, want %.1f..10.5", pr.Duration, wantMin)
			}
			if pr.VideoFrames < minVideo || pr.AudioFrames < minAudio {
				t.Errorf("%d video and %d audio frames decoded, want at least %d and %d", pr.VideoFrames, pr.AudioFrames, minVideo, minAudio)
			}
		})
	}
}

// localRecorder makes a recorder with opts storing into a local folder (its spool beside
// it, the test logger unless opts has one), stopped with the test.
func localRecorder(t testing.TB, opts Options) (*Recorder, storage.Store) {
	t.Helper()
	dir := t.TempDir()
	store, err := storage.NewLocal(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Store, opts.SpoolDir = store, filepath.Join(dir, "spool")
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.cancel)
	return r, store
}

// storedCopy copies a stored object into a temporary file: its path and its bytes.
func storedCopy(t testing.TB, store storage.Store, key string) (string, []byte) {
	t.Helper()
	rc, err := store.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), path.Base(key))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// finishFile finalizes a file in the spool and stores it, as the end of a session does.
func finishFile(ctx context.Context, f *outFile) (*ManifestFile, error) {
	sf, err := f.close()
	if err != nil || sf == nil {
		return nil, err
	}
	if err := sf.store(ctx, f.s.r); err != nil {
		return nil, err
	}
	return &sf.entry, nil
}

// readStoredManifest reads a recording's manifest from the store.
func readStoredManifest(t *testing.T, store storage.Store, prefix string) Manifest {
	t.Helper()
	rc, err := store.Get(context.Background(), prefix+ManifestName)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var m Manifest
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}
