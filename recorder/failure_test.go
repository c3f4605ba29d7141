package recorder

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
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
	"github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// testLogger logs to stderr with SANKE_TEST_LOG set.
func testLogger() *slog.Logger {
	w := io.Discard
	if os.Getenv("SANKE_TEST_LOG") != "" {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// opusPackets is the Opus fixture as RTP.
func opusPackets(t *testing.T) []*rtp.Packet {
	t.Helper()
	frames, err := testmedia.ReadOggOpus(testmedia.Get(t).Opus.Path)
	if err != nil {
		t.Fatal(err)
	}
	ap := rtp.NewPacketizer(1200, 111, 2, &codecs.OpusPayloader{}, rtp.NewFixedSequencer(100), 48000)
	var out []*rtp.Packet
	for _, f := range frames {
		out = append(out, ap.Packetize(f, 960)...)
	}
	return out
}

// push feeds packets to a reader.
func push(tr *trackReader, pkts []*rtp.Packet) {
	now := time.Now()
	for _, p := range pkts {
		q := *p
		q.Payload = bytes.Clone(p.Payload)
		tr.push(&q, now)
	}
}

// TestFailedSpoolWriteReleasesTheFile records two participants; writing one's file starts
// failing (a full disk) while it is recorded. The failure is reported, a rejoin of that
// participant gets a new file, and when the recording ends nothing of the failed file is
// left running or counted: its uploader is stopped, its bytes no longer count against the
// spool limit, and the recording (the failed file as far as it was written included) is
// stored and no longer active.
func TestFailedSpoolWriteReleasesTheFile(t *testing.T) {
	r, store := localRecorder(t, Options{GatherWindow: 20 * time.Millisecond,
		ClusterMax: 200 * time.Millisecond, FlushInterval: time.Hour, SpoolLimit: 1 << 30})
	s := newSession(r, &livekit.Room{Name: "class 1", Sid: "RM_1"})
	r.mu.Lock()
	r.sessions[s.id] = s
	r.mu.Unlock()
	pkts := opusPackets(t)
	files := map[string]*outFile{}
	readers := map[string]*trackReader{}
	for _, id := range []string{"a b", "a_b"} {
		s.mu.Lock()
		f, ft, err := s.fileFor(id, "camera", webrtc.RTPCodecTypeAudio, "audio/opus", &livekit.TrackInfo{Sid: "TR_" + id})
		s.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		tr := newReader(f, ft, false, "audio/opus", 48000, func() {}, r.log)
		f.attachReader(ft, tr, "")
		files[id], readers[id] = f, tr
		push(tr, pkts[:5])
		testclient.Eventually(t, 10*time.Second, "file head of "+id, func() (bool, string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.headDone, ""
		})
		push(tr, pkts[5:100])
	}
	failing := files["a b"]
	failing.mu.Lock()
	written := failing.written
	rw := failing.spool
	var err error
	failing.spool, err = os.Open(filepath.Join(s.dir, failing.name)) // writes now fail, reads work
	if err != nil {
		t.Fatal(err)
	}
	_ = failing.idx.Close() // replaced by a read-only handle just below
	failing.idx, _ = os.Open(filepath.Join(s.dir, failing.name+".idx"))
	failing.mu.Unlock()
	t.Cleanup(func() { _ = rw.Close() })
	for id, tr := range readers {
		push(tr, pkts[100:200])
		_ = id
	}
	if !failing.isFailed() {
		t.Fatal("writing to a read-only spool did not fail the file")
	}
	if p := strings.Join(r.Problems(), "; "); !strings.Contains(p, "spool") {
		t.Errorf("problems do not tell the spool failure: %q", p)
	}
	if r.SpoolPending() == 0 {
		t.Fatal("nothing counted as waiting for upload (the test needs some)")
	}
	// The participant rejoins: a new file, not the failed one.
	s.mu.Lock()
	again, _, err := s.fileFor("a b", "camera", webrtc.RTPCodecTypeAudio, "audio/opus", &livekit.TrackInfo{Sid: "TR_again"})
	s.mu.Unlock()
	if err != nil || again == failing {
		t.Errorf("a rejoin after the failure got file %v (%v), want a new one", again.name, err)
	}

	s.finishCtx(context.Background(), "test")
	if s.err != nil {
		t.Fatalf("recording not stored: %v", s.err)
	}
	select {
	case <-failing.up.stopped:
	default:
		t.Error("the failed file's uploader is still running")
	}
	if n := r.SpoolPending(); n != 0 {
		t.Errorf("%d bytes still counted as waiting for upload", n)
	}
	if a := r.Active(); len(a) != 0 {
		t.Errorf("recording still active: %+v", a)
	}
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Errorf("spool directory left: %v", err)
	}
	e, ok := r.catalog.get(s.id)
	if !ok || len(e.m.Files) != 2 {
		t.Fatalf("stored manifest: %+v", e.m)
	}
	for _, mf := range e.m.Files {
		rc, err := store.Get(context.Background(), mf.Key)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := mkv.Scan(rc, io.Discard)
		rc.Close()
		if err != nil || (!sc.Finalized && len(sc.Index) == 0) || sc.Tags[tagParticipant] != mf.Participant || sc.Tags[tagRoom] != "class 1" {
			t.Errorf("stored file %s: %v %+v", mf.Name, err, sc)
		}
		if mf.Participant == "a b" && (mf.Indexed || mf.Size != written) {
			t.Errorf("the failed file should be stored as written before the failure (%d bytes, no cues): %+v", written, mf)
		}
		if mf.Participant == "a_b" && (!mf.Indexed || !sc.Finalized) {
			t.Errorf("the other file should be complete: %+v", mf)
		}
	}
}

// TestSignedLinkExpires opens a file with a link signed for it that has expired, and with
// one that has not, through the recorder's HTTP routes.
func TestSignedLinkExpires(t *testing.T) {
	dir := t.TempDir()
	store, err := storage.NewLocal(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	m := &Manifest{RecordingID: "RC_20240101T000000Z_00000001", Room: "room", Prefix: "room/RC_20240101T000000Z_00000001/",
		Files: []ManifestFile{{Name: "t_camera.webm", Key: "room/RC_20240101T000000Z_00000001/t_camera.webm"}}}
	ctx := context.Background()
	_ = store.Put(ctx, m.Files[0].Key, strings.NewReader("media"), 5, "video/webm")
	b := m.marshal()
	_ = store.Put(ctx, m.Prefix+ManifestName, bytes.NewReader(b), int64(len(b)), "application/json")
	r, err := New(Options{Store: store, SpoolDir: filepath.Join(dir, "spool"), APISecret: "secret", LinkExpiry: time.Minute, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.cancel)
	r.catalog.load(ctx)
	mux := http.NewServeMux()
	r.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		what   string
		method string
		link   string
		want   int
	}{
		{"valid", http.MethodGet, r.links.link(m.RecordingID, "t_camera.webm", time.Now()), http.StatusOK},
		{"valid, HEAD", http.MethodHead, r.links.link(m.RecordingID, "t_camera.webm", time.Now()), http.StatusOK},
		{"expired", http.MethodGet, r.links.link(m.RecordingID, "t_camera.webm", time.Now().Add(-2*time.Minute)), http.StatusForbidden},
		{"another signer's", http.MethodGet, newLinkSigner("other secret", time.Minute).link(m.RecordingID, "t_camera.webm", time.Now()), http.StatusForbidden},
		{"for another recording", http.MethodGet, strings.Replace(r.links.link("RC_other", "t_camera.webm", time.Now()), "RC_other", m.RecordingID, 1), http.StatusForbidden},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.link, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s link: HTTP %d %s, want %d", tc.what, resp.StatusCode, body, tc.want)
		}
	}
}

// TestRecordingStateIsBounded checks the bounds on what publishers make the recorder keep:
// files per participant and per recording (a new file each time a track set changes),
// readers per file (one per republished track), SIDs per track, media waiting for a file's
// head, and the listings' scans of the store.
func TestRecordingStateIsBounded(t *testing.T) {
	r, store := localRecorder(t, Options{})
	s := newSession(r, &livekit.Room{Name: "room", Sid: "RM_1"})

	// A publisher switching codecs again and again: a new file each time, up to a bound.
	var refused error
	for i := 0; i < 3*maxGroupFiles && refused == nil; i++ {
		mime := []string{"video/vp8", "video/h264"}[i%2]
		s.mu.Lock()
		_, _, refused = s.fileFor("switcher", "camera", webrtc.RTPCodecTypeVideo, mime, &livekit.TrackInfo{Sid: "TR_v"})
		s.mu.Unlock()
	}
	if refused == nil || len(s.files) != maxGroupFiles {
		t.Errorf("%d files of one participant's camera (%v), want at most %d", len(s.files), refused, maxGroupFiles)
	}
	// Many publishers: up to a bound per recording.
	var err error
	for i := 0; i < maxSessionFiles+10; i++ {
		s.mu.Lock()
		_, _, err = s.fileFor("p"+strings.Repeat("x", i), "camera", webrtc.RTPCodecTypeAudio, "audio/opus", &livekit.TrackInfo{Sid: "TR_a"})
		s.mu.Unlock()
	}
	if err == nil || len(s.files) != maxSessionFiles {
		t.Errorf("%d files in a recording (%v), want at most %d", len(s.files), err, maxSessionFiles)
	}

	// One participant republishing the same track again and again.
	s2 := newSession(r, &livekit.Room{Name: "room2", Sid: "RM_2"})
	var f *outFile
	for i := 0; i < 200; i++ {
		s2.mu.Lock()
		file, ft, err := s2.fileFor("pupil", "camera", webrtc.RTPCodecTypeAudio, "audio/opus", &livekit.TrackInfo{Sid: "TR_" + strings.Repeat("a", i)})
		s2.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		f = file
		f.attachReader(ft, newReader(f, ft, false, "audio/opus", 48000, func() {}, r.log), "")
	}
	f.mu.Lock()
	readers, sids := len(f.readers), len(f.tracks[0].sids)
	f.mu.Unlock()
	if len(s2.files) != 1 || readers > 2 || sids > maxSIDs {
		t.Errorf("200 republishes: %d files, %d readers, %d SIDs; want 1, at most 2, at most %d", len(s2.files), readers, sids, maxSIDs)
	}

	// Big frames while a file waits for its head (the gather window never ends here).
	slow, err := New(Options{Store: store, SpoolDir: filepath.Join(t.TempDir(), "spool"), GatherWindow: time.Hour, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(slow.cancel)
	s3 := newSession(slow, &livekit.Room{Name: "room3", Sid: "RM_3"})
	s3.mu.Lock()
	g, gt, err := s3.fileFor("slow", "camera", webrtc.RTPCodecTypeAudio, "audio/opus", &livekit.TrackInfo{Sid: "TR_s"})
	s3.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	gr := newReader(g, gt, false, "audio/opus", 48000, func() {}, r.log)
	g.attachReader(gt, gr, "")
	frame := make([]byte, 1<<20)
	for i := 0; i < 100; i++ {
		g.write(gr, gt, int64(i*20), 20, true, frame, nil)
	}
	g.mu.Lock()
	pending, frames, headDone := g.pendingN, len(g.pending), g.headDone
	g.mu.Unlock()
	if headDone || frames == 0 || pending > maxPendingBytes {
		t.Errorf("%d bytes in %d frames wait for the head (head written: %v), want at most %d", pending, frames, headDone, maxPendingBytes)
	}

	// Listings of many rooms: the scans remembered stay bounded.
	for i := 0; i < 3*maxScannedRooms; i++ {
		_, _ = r.catalog.list(t.Context(), fmt.Sprintf("room-%d", i))
	}
	r.catalog.mu.Lock()
	n := len(r.catalog.scans)
	r.catalog.mu.Unlock()
	if n > maxScannedRooms {
		t.Errorf("%d room scans remembered, want at most %d", n, maxScannedRooms)
	}
}

// TestTailObjectsAreBounded uploads a file that grows too slowly to ever fill a part (a
// muted participant): the tail objects in the store, and their list in the file's state,
// stay bounded, and completing the file from the store alone still gives every byte.
func TestTailObjectsAreBounded(t *testing.T) {
	r, store := localRecorder(t, Options{})
	spool, err := os.Create(filepath.Join(t.TempDir(), "spooled.webm"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = spool.Close() }()
	const key = "room/RC_20240101T000000Z_00000001/muted_camera.webm"
	u := &uploader{r: r, key: key, tailPrefix: tailPrefix(key), spool: spool}
	ctx := context.Background()
	var want []byte
	for i := 0; i < 300; i++ {
		chunk := bytes.Repeat([]byte{byte(i)}, 100)
		if _, err := spool.Write(chunk); err != nil {
			t.Fatal(err)
		}
		want = append(want, chunk...)
		u.setWritten(int64(len(want)))
		u.mu.Lock()
		u.lastTail = time.Time{}
		u.mu.Unlock()
		if err := u.step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tails, err := store.List(ctx, u.tailPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(u.snapshot().Tails); n > maxTails || len(tails) > maxTails {
		t.Errorf("%d tail objects in the store, %d in the state, want at most %d", len(tails), n, maxTails)
	}
	if _, err := r.completeFromStore(ctx, key, "", nil, tails); err != nil {
		t.Fatal(err)
	}
	rc, err := store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, want) {
		t.Errorf("completed from the store: %d bytes, want the %d written", len(got), len(want))
	}
}
