package recorder_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/interceptor"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/recorder"
	"github.com/sanke-edu/sanke/recorder/storage"
	"github.com/sanke-edu/sanke/test/testclient"
)

// publishFor is how long the end-to-end tests publish.
const publishFor = 20 * time.Second

func recordGrant(room string) *auth.VideoGrant { return &auth.VideoGrant{RoomRecord: true, Room: room} }

// stopAndGet stops the room's recording through the API and returns the manifest, once the
// recording is stored.
func stopAndGet(t *testing.T, ts *testServer, room string) *recorder.Manifest {
	t.Helper()
	var res recorder.StopResult
	start := time.Now()
	if code := api(t, ts.target, http.MethodPost, "/api/v1/rooms/"+room+"/recording/stop", recordGrant(room), &res); code != http.StatusOK {
		t.Fatalf("stop: HTTP %d", code)
	}
	if res.Manifest == nil {
		t.Fatalf("stop answered no manifest: %+v", res)
	}
	m := res.Manifest
	t.Logf("stop returned after %.1fs: %d file(s), upload %s %s", time.Since(start).Seconds(), len(m.Files), res.Upload, res.UploadError)
	if res.Upload != recorder.UploadStored {
		// Stored in the background: wait until the recording is listed.
		testclient.Eventually(t, 2*time.Minute, "recording stored", func() (bool, string) {
			var list recorder.ListResponse
			api(t, ts.target, http.MethodGet, "/api/v1/rooms/"+room+"/recordings", recordGrant(room), &list)
			for _, l := range list.Recordings {
				if l.RecordingID == m.RecordingID {
					m = l
					return true, ""
				}
			}
			return false, fmt.Sprintf("%+v", list)
		})
	}
	if len(m.Files) == 0 {
		t.Fatalf("manifest has no files: %+v", m)
	}
	return m
}

// checkCameraFile probes the participant's camera file and checks its duration.
func checkCameraFile(t *testing.T, store storage.Store, m *recorder.Manifest, identity string, published time.Duration) {
	t.Helper()
	checkCameraFileFrames(t, store, m, identity, published, published, 0.7, 0.8)
}

// checkCameraFileFrames is checkCameraFile with the time media flowed and the fractions of
// the video and audio frames sent that must be in the file.
func checkCameraFileFrames(t *testing.T, store storage.Store, m *recorder.Manifest, identity string, published, flowing time.Duration, videoFrac, audioFrac float64) {
	t.Helper()
	var f *recorder.ManifestFile
	for i := range m.Files {
		if m.Files[i].Participant == identity && m.Files[i].Source == "camera" {
			f = &m.Files[i]
		}
	}
	if f == nil {
		t.Fatalf("no camera file for %s in %+v", identity, m.Files)
	}
	if !f.Indexed || f.SHA256 == "" || f.Size == 0 || len(f.Tracks) != 2 {
		t.Errorf("manifest file entry incomplete: %+v", f)
	}
	p := fetch(t, store, f.Key)
	r := probe(t, p)
	checkDuration(t, r, f.Duration, published)
	if r.Width != 1280 || r.Height != 720 {
		t.Errorf("recorded %dx%d, want the high layer 1280x720", r.Width, r.Height)
	}
	// Frames: 30 fps video and 50 packets/s audio over the published time, give or take
	// what loss and the start take.
	if min := max(int(flowing.Seconds()*30*videoFrac), 1); r.VideoFrames < min {
		t.Errorf("%d video frames, want at least %d", r.VideoFrames, min)
	}
	if min := int(flowing.Seconds() * 50 * audioFrac); r.AudioFrames < min {
		t.Errorf("%d audio frames, want at least %d", r.AudioFrames, min)
	}
}

// TestRecordLocal records a VP8 simulcast + Opus publisher into the local-folder store and
// checks the file with ffprobe, the manifest and the download API.
func TestRecordLocal(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	const room = "rec-local"
	pub := publishCameraMic(t, ts.target, room, "teacher")
	waitRecording(t, ts.srv.Recorder(), room)
	start := time.Now()
	time.Sleep(publishFor - time.Since(start))
	pub.Disconnect()
	published := time.Since(start)
	m := stopAndGet(t, ts, room)
	store, err := storage.NewLocal(filepath.Join(ts.cfg.DataDir, "recordings"))
	if err != nil {
		t.Fatal(err)
	}
	checkCameraFile(t, store, m, "teacher", published)
	if !strings.HasPrefix(m.Prefix, "classes/rec-local/RC_") || m.Room != room {
		t.Errorf("manifest prefix %q room %q", m.Prefix, m.Room)
	}

	// The list and download API.
	var list recorder.ListResponse
	if code := api(t, ts.target, http.MethodGet, "/api/v1/rooms/"+room+"/recordings", testclient.JoinGrant(room), &list); code != 200 || len(list.Recordings) != 1 {
		t.Fatalf("list: HTTP %d, %d recordings", code, len(list.Recordings))
	}
	url := list.Recordings[0].Files[0].URL
	if code := api(t, ts.target, http.MethodGet, url, testclient.JoinGrant(room), nil); code != http.StatusOK {
		t.Errorf("download %s: HTTP %d", url, code)
	}
	bare, _, _ := strings.Cut(url, "?")
	if code := api(t, ts.target, http.MethodGet, bare, testclient.JoinGrant("other-room"), nil); code != http.StatusForbidden {
		t.Errorf("download with a token for another room: HTTP %d, want 403", code)
	}
	if code := api(t, ts.target, http.MethodPost, "/api/v1/rooms/"+room+"/recording/start", testclient.JoinGrant(room), nil); code != http.StatusForbidden {
		t.Errorf("start without roomRecord: HTTP %d, want 403", code)
	}
}

// TestRecordS3LossAndRejoin records into versitygw a publisher whose packets suffer 10%
// loss and 10% reordering, and who disconnects for 5 s half way and comes back.
func TestRecordS3LossAndRejoin(t *testing.T) {
	t.Parallel()
	s3 := startS3(t)
	ts := startServer(t, s3)
	const room = "rec-lossy"
	// The lossy interceptor sits nearest the wire, after the SDK's own NACK responder (the
	// SDK registers only the given interceptors unless asked to include its defaults), so
	// the publisher retransmits what the SFU asks for, as a real browser would.
	lossOpts := []lksdk.ConnectOption{
		lksdk.WithInterceptors([]interceptor.Factory{lossyFactory{loss: 0.10, reorder: 0.10}}),
		lksdk.WithIncludeDefaultInterceptors(true),
	}
	pub := publishCameraMic(t, ts.target, room, "teacher", lossOpts...)
	waitRecording(t, ts.srv.Recorder(), room)
	start := time.Now()
	time.Sleep(8*time.Second - time.Since(start))
	pub.Disconnect()
	time.Sleep(5 * time.Second)
	pub, vp := publishCameraMicPub(t, ts.target, room, "teacher", lossOpts...)
	time.Sleep(publishFor - time.Since(start))
	t.Logf("publisher layers: %+v", vp.Stats())
	pub.Disconnect()
	published := time.Since(start)
	m := stopAndGet(t, ts, room)
	// NACKs repair most video loss (the SFU asks the publisher, the recorder asks the SFU);
	// what is left becomes gaps until the next keyframe. Audio is not retransmitted and
	// loses about the 10% dropped.
	checkCameraFileFrames(t, s3.store(t), m, "teacher", published, published-5*time.Second, 0.5, 0.75)
	f := m.Files[0]
	if len(f.Tracks[0].TrackSIDs) != 2 {
		t.Errorf("the rejoined publisher's tracks should continue the same file: %+v", f.Tracks)
	}
	var list recorder.ListResponse
	api(t, ts.target, http.MethodGet, "/api/v1/rooms/"+room+"/recordings", recordGrant(room), &list)
	if len(list.Recordings) != 1 || !strings.Contains(list.Recordings[0].Files[0].URL, "X-Amz-Signature") {
		t.Errorf("S3 listing should hand out presigned URLs: %+v", list.Recordings)
	}
	assertNoLeftovers(t, s3.store(t), "classes/")
}

// assertNoLeftovers checks that no multipart upload or tail object is left in the store.
func assertNoLeftovers(t *testing.T, store storage.Store, prefix string) {
	t.Helper()
	ctx := context.Background()
	ups, err := store.ListMultipart(ctx, prefix)
	if err != nil || len(ups) > 0 {
		t.Errorf("multipart uploads left open: %v %v", ups, err)
	}
	objs, err := store.List(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if strings.Contains(o.Key, "/.inprogress/") {
			t.Errorf("tail object left: %s", o.Key)
		}
	}
}

// TestRecordStoreDown stops the S3 server for part of the session: the recording spools and
// still ends up complete in the store.
func TestRecordStoreDown(t *testing.T) {
	t.Parallel()
	s3 := startS3(t)
	ts := startServer(t, s3)
	const room = "rec-storedown"
	pub := publishCameraMic(t, ts.target, room, "teacher")
	waitRecording(t, ts.srv.Recorder(), room)
	start := time.Now()
	time.Sleep(4 * time.Second)
	s3.stop()
	// Wait for the recorder to notice (an upload fails within a flush interval).
	waitEvent(t, ts, recorder.EventStoreUnavailable, 30*time.Second)
	time.Sleep(6 * time.Second)
	s3.start()
	time.Sleep(publishFor - time.Since(start))
	pub.Disconnect()
	published := time.Since(start)
	m := stopAndGet(t, ts, room)
	checkCameraFile(t, s3.store(t), m, "teacher", published)
	assertNoLeftovers(t, s3.store(t), "classes/")
}

// TestRecordSpoolLimit keeps the store down until the spool limit (1 MB) is hit: the
// recorder reports it, drops media instead of filling the disk, reports when it is below the
// limit again once the store is back, and the file still decodes end to end (a gap, not
// corruption) with the right duration.
func TestRecordSpoolLimit(t *testing.T) {
	t.Parallel()
	s3 := startS3(t)
	ts := startServer(t, s3, func(c *config.Config) { c.Recording.SpoolLimitMB = 1 })
	const room = "rec-spoollimit"
	pub := publishCameraMic(t, ts.target, room, "teacher")
	waitRecording(t, ts.srv.Recorder(), room)
	start := time.Now()
	time.Sleep(3 * time.Second)
	s3.stop()
	waitEvent(t, ts, recorder.EventStoreUnavailable, 30*time.Second)
	// The limit is the node's (summed over recordings): the event names no room.
	// The publisher fills 1 MB in seconds, or in a minute on a loaded machine.
	full := waitEvent(t, ts, recorder.EventSpoolFull, time.Minute)
	fullAt := time.Since(start)
	if full.Error == "" {
		t.Error("the spool-full event does not say what happened")
	}
	time.Sleep(2 * time.Second)
	s3.start()
	waitEvent(t, ts, recorder.EventSpoolResumed, 30*time.Second)
	resumedAt := time.Since(start)
	time.Sleep(publishFor - time.Since(start))
	pub.Disconnect()
	published := time.Since(start)
	m := stopAndGet(t, ts, room)
	// Media flowed into the file except between the spool filling and draining.
	flowing := published - (resumedAt - fullAt)
	t.Logf("spool full at %.1fs, below the limit again at %.1fs", fullAt.Seconds(), resumedAt.Seconds())
	checkCameraFileFrames(t, s3.store(t), m, "teacher", published, flowing, 0.6, 0.7)
	assertNoLeftovers(t, s3.store(t), "classes/")
}

func waitEvent(t *testing.T, ts *testServer, typ recorder.EventType, d time.Duration) recorder.Event {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e := <-ts.events:
			if e.Type == typ {
				t.Logf("event %s: %s", e.Type, e.Error)
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event within %v", typ, d)
			return recorder.Event{}
		}
	}
}
