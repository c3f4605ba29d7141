package recorder_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/recorder"
	"github.com/sanke-edu/sanke/recorder/storage"
	"github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// Regression tests of issue 12 (recordings), through the HTTP API.

// listAnswer is a listing as JSON (the fields any release answers, and those it added).
type listAnswer struct {
	Active     []recorder.Status    `json:"active"`
	Recordings []*recorder.Manifest `json:"recordings"`
	Complete   *bool                `json:"complete"`
	Problems   []string             `json:"problems"`
}

// stopAnswer is the answer of a stop.
type stopAnswer struct {
	RecordingID string `json:"recording_id"`
	Upload      string `json:"upload"`
	UploadError string `json:"upload_error"`
}

// listRoom lists a room's recordings with a roomJoin token for it.
func listRoom(t *testing.T, ts *testServer, room string) listAnswer {
	t.Helper()
	code, b := httpDo(t, http.MethodGet, ts.target.HTTPURL+"/api/v1/rooms/"+url.PathEscape(room)+"/recordings",
		ts.target.Token(t, "viewer", testclient.JoinGrant(room)))
	var l listAnswer
	if code != http.StatusOK || json.Unmarshal(b, &l) != nil {
		t.Fatalf("list %q: HTTP %d %s", room, code, b)
	}
	return l
}

// stopRoom stops a room's recording through the API.
func stopRoom(t *testing.T, ts *testServer, room string) (int, stopAnswer, []byte) {
	t.Helper()
	code, b := httpDo(t, http.MethodPost, ts.target.HTTPURL+"/api/v1/rooms/"+url.PathEscape(room)+"/recording/stop",
		ts.target.Token(t, "api-caller", recordGrant(room)))
	var a stopAnswer
	_ = json.Unmarshal(b, &a)
	return code, a, b
}

// filePathOf is the download route of a file, without a signature.
func filePathOf(id, name string) string {
	return "/api/v1/recordings/" + url.PathEscape(id) + "/files/" + url.PathEscape(name)
}

// writeStoredRecording writes a recording into a local store as a release wrote it: the
// manifest names room, the files are under dir (the room's name as that release put it in
// keys). It returns the manifest.
func writeStoredRecording(t *testing.T, storeDir, prefix, room, dir, id string, files map[string]string) *recorder.Manifest {
	t.Helper()
	p := prefix + dir + "/" + id + "/"
	start, _ := time.Parse("20060102T150405Z", strings.Split(strings.TrimPrefix(id, "RC_"), "_")[0])
	m := &recorder.Manifest{RecordingID: id, Room: room, StartedAt: start, EndedAt: start.Add(time.Minute), Duration: 60, Prefix: p,
		Participants: []recorder.ManifestParticipant{}}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		body := files[name]
		if err := os.MkdirAll(filepath.Join(storeDir, filepath.FromSlash(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(storeDir, filepath.FromSlash(p+name)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(body))
		m.Files = append(m.Files, recorder.ManifestFile{Name: name, Key: p + name, Participant: "a b", Source: "camera",
			ContentType: "video/webm", Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), Indexed: true})
	}
	b, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(storeDir, filepath.FromSlash(p+recorder.ManifestName)), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRecordingRoomNamesAreKeptApart records rooms "class 1", "class:1" and "class_1" (which
// releases before issue 12 stored under one name, class_1) with participants "a b" and "a_b"
// (one file name for both): every file has its own key, and a token for one room neither
// lists nor downloads another room's recordings, including one stored by such a release.
func TestRecordingRoomNamesAreKeptApart(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	storeDir := filepath.Join(dataDir, "recordings")
	legacy := writeStoredRecording(t, storeDir, "classes/", "class 1", "class_1", "RC_20200101T000000Z_1e9ac700",
		map[string]string{"a_b_camera.webm": "recorded by an earlier release in room class 1"})
	ts := startServer(t, nil, func(c *config.Config) {
		c.DataDir = dataDir
		c.Recording.AutoRooms = []string{"class*"}
	})
	rooms := map[string][]string{"class 1": {"a b", "a_b"}, "class:1": {"a b"}, "class_1": {"a_b"}}
	media := testmedia.Get(t)
	for room, ids := range rooms {
		for _, id := range ids {
			c := testclient.Join(t, ts.target, room, id, &testclient.JoinOptions{NoAutoSubscribe: true})
			if _, err := testclient.PublishOpus(c.Room, media, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Each publisher's file is being uploaded once its first tail object is in the store.
	local, err := storage.NewLocal(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	testclient.Eventually(t, 60*time.Second, "a file being uploaded per publisher", func() (bool, string) {
		objs, _ := local.List(t.Context(), "classes/")
		files := map[string]bool{}
		for _, o := range objs {
			if i := strings.Index(o.Key, "/.inprogress/"); i >= 0 {
				files[o.Key[:strings.LastIndexByte(o.Key, '/')]] = true
			}
		}
		return len(files) == 4, fmt.Sprint(slices.Sorted(maps.Keys(files)))
	})
	ids := map[string]string{}
	for room := range rooms {
		code, a, b := stopRoom(t, ts, room)
		if code != http.StatusOK || a.RecordingID == "" {
			t.Fatalf("stop %q: HTTP %d %s", room, code, b)
		}
		ids[room] = a.RecordingID
	}
	got := map[string]*recorder.Manifest{}
	for room, id := range ids {
		testclient.Eventually(t, 60*time.Second, "recording of "+room+" listed", func() (bool, string) {
			l := listRoom(t, ts, room)
			for _, m := range l.Recordings {
				if m.RecordingID == id {
					got[room] = m
					return true, ""
				}
			}
			return false, fmt.Sprintf("%+v", l)
		})
	}

	// Listings: a room's own recordings, and nothing else.
	for room := range rooms {
		l := listRoom(t, ts, room)
		want := []string{ids[room]}
		if room == "class 1" {
			want = append(want, legacy.RecordingID)
		}
		var have []string
		for _, m := range l.Recordings {
			have = append(have, m.RecordingID)
			if m.Room != room {
				t.Errorf("token for %q lists recording %s of room %q", room, m.RecordingID, m.Room)
			}
		}
		slices.Sort(want)
		slices.Sort(have)
		if !slices.Equal(have, want) {
			t.Errorf("token for %q lists %v, want %v", room, have, want)
		}
	}

	// Files: one key each, the right content, for their own room's token only.
	keys := map[string]string{}
	for room, m := range got {
		participants := map[string]bool{}
		for _, f := range m.Files {
			participants[f.Participant] = true
			if prev, dup := keys[f.Key]; dup {
				t.Errorf("file %s of %q has the key of %s", f.Name, room, prev)
			}
			keys[f.Key] = room + "/" + f.Participant
			code, body := httpDo(t, http.MethodGet, ts.target.HTTPURL+filePathOf(m.RecordingID, f.Name),
				ts.target.Token(t, "viewer", testclient.JoinGrant(room)))
			sum := sha256.Sum256(body)
			if code != http.StatusOK || hex.EncodeToString(sum[:]) != f.SHA256 {
				t.Errorf("download of %s by its room's token: HTTP %d, checksum matches: %v", f.Name, code, hex.EncodeToString(sum[:]) == f.SHA256)
			}
			for other := range rooms {
				if other == room {
					continue
				}
				if code, _ := httpDo(t, http.MethodGet, ts.target.HTTPURL+filePathOf(m.RecordingID, f.Name),
					ts.target.Token(t, "viewer", testclient.JoinGrant(other))); code != http.StatusForbidden && code != http.StatusNotFound {
					t.Errorf("a token for %q downloads %s of %q: HTTP %d", other, f.Name, room, code)
				}
			}
		}
		for _, id := range rooms[room] {
			if !participants[id] {
				t.Errorf("recording of %q has no file of %q: %+v", room, id, m.Files)
			}
		}
	}
	for _, room := range []string{"class_1", "class:1"} {
		if code, _ := httpDo(t, http.MethodGet, ts.target.HTTPURL+filePathOf(legacy.RecordingID, legacy.Files[0].Name),
			ts.target.Token(t, "viewer", testclient.JoinGrant(room))); code != http.StatusForbidden && code != http.StatusNotFound {
			t.Errorf("a token for %q downloads the earlier release's recording of class 1: HTTP %d", room, code)
		}
	}
	if code, body := httpDo(t, http.MethodGet, ts.target.HTTPURL+filePathOf(legacy.RecordingID, legacy.Files[0].Name),
		ts.target.Token(t, "viewer", testclient.JoinGrant("class 1"))); code != http.StatusOK || !strings.Contains(string(body), "room class 1") {
		t.Errorf("the earlier release's recording of class 1, by a token for class 1: HTTP %d %q", code, body)
	}
}

// TestRecordingLinksAreSigned lists a stored recording: its file URLs are short-lived links
// signed for exactly that file, which open it without any token, and a tampered link, one
// signed for another file, or an access token in the URL open nothing.
func TestRecordingLinksAreSigned(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	const room = "links-room"
	m := writeStoredRecording(t, filepath.Join(dataDir, "recordings"), "classes/", room, room, "RC_20240101T080000Z_0badc0de",
		map[string]string{"teacher_camera.webm": "the teacher's camera", "pupil_camera.webm": "a pupil's camera"})
	ts := startServer(t, nil, func(c *config.Config) { c.DataDir = dataDir })
	l := listRoom(t, ts, room)
	if len(l.Recordings) != 1 || len(l.Recordings[0].Files) != 2 {
		t.Fatalf("listing: %+v", l)
	}
	links := map[string]string{}
	for _, f := range l.Recordings[0].Files {
		links[f.Name] = f.URL
		u, err := url.Parse(f.URL)
		if err != nil || u.Path != filePathOf(m.RecordingID, f.Name) || u.Query().Get("expires") == "" || u.Query().Get("sig") == "" ||
			strings.Contains(f.URL, "access_token") || strings.Contains(f.URL, ".ey") {
			t.Fatalf("file URL %q is not a signed link of %s", f.URL, f.Name)
		}
	}
	get := func(u string) (int, string) {
		code, b := httpDo(t, http.MethodGet, ts.target.HTTPURL+u, "")
		return code, string(b)
	}
	for name, link := range links {
		if code, body := get(link); code != http.StatusOK || !strings.Contains(body, "camera") {
			t.Errorf("signed link of %s: HTTP %d %q", name, code, body)
		}
	}
	link := links["teacher_camera.webm"]
	u, _ := url.Parse(link)
	q := u.Query()
	tampered := map[string]string{}
	sig := []byte(q.Get("sig"))
	sig[3] ^= 1
	tampered["signature changed"] = u.Path + "?expires=" + q.Get("expires") + "&sig=" + string(sig)
	var exp int64
	if _, err := fmt.Sscan(q.Get("expires"), &exp); err != nil {
		t.Fatalf("expires %q: %v", q.Get("expires"), err)
	}
	tampered["expiry extended"] = u.Path + "?expires=" + fmt.Sprint(exp+3600) + "&sig=" + q.Get("sig")
	tampered["other file"] = filePathOf(m.RecordingID, "pupil_camera.webm") + "?" + u.RawQuery
	tampered["no signature"] = u.Path + "?expires=" + q.Get("expires")
	for what, bad := range tampered {
		if code, body := get(bad); code != http.StatusForbidden && code != http.StatusUnauthorized {
			t.Errorf("%s: HTTP %d %q, want 403", what, code, body)
		}
	}
	// Tokens in URLs are refused, for files and listings alike.
	tok := ts.target.Token(t, "viewer", testclient.JoinGrant(room))
	for _, p := range []string{filePathOf(m.RecordingID, "teacher_camera.webm"), "/api/v1/rooms/" + room + "/recordings"} {
		if code, body := get(p + "?access_token=" + url.QueryEscape(tok)); code != http.StatusUnauthorized {
			t.Errorf("%s with ?access_token=: HTTP %d %q, want 401", p, code, body)
		}
	}
	// A bearer token for the room still opens the file without a link; another room's does not.
	if code, _ := httpDo(t, http.MethodGet, ts.target.HTTPURL+u.Path, tok); code != http.StatusOK {
		t.Errorf("bearer token of the room: HTTP %d", code)
	}
	if code, _ := httpDo(t, http.MethodGet, ts.target.HTTPURL+u.Path, ts.target.Token(t, "viewer", testclient.JoinGrant("other"))); code != http.StatusForbidden {
		t.Errorf("bearer token of another room: HTTP %d, want 403", code)
	}
}

// TestRecordingStoreThatNeverAnswers records into an S3 endpoint that accepts connections
// and never answers: stopping answers once the files are finalized locally, saying the
// upload is pending, and listing answers from what the recorder knows, saying it may be
// incomplete and why.
func TestRecordingStoreThatNeverAnswers(t *testing.T) {
	t.Parallel()
	endpoint := testclient.SilentEndpoint(t)
	ts := startServer(t, nil, func(c *config.Config) {
		c.Recording.Storage.Type = "s3"
		c.Recording.Storage.S3 = config.S3Config{Endpoint: endpoint, Region: "us-east-1", Bucket: s3Bucket,
			PathStyle: true, AccessKey: s3Access, SecretKey: s3Secret}
	})
	const room = "rec-hanging-store"
	c := testclient.Join(t, ts.target, room, "teacher", &testclient.JoinOptions{NoAutoSubscribe: true})
	if _, err := testclient.PublishOpus(c.Room, testmedia.Get(t), nil); err != nil {
		t.Fatal(err)
	}
	waitRecorderIn(t, ts.srv.Recorder(), room)

	code, stop, b := stopRoom(t, ts, room)
	if code != http.StatusOK || stop.RecordingID == "" || stop.Upload != recorder.UploadPending {
		t.Fatalf("stop: HTTP %d %s; want 200 with upload pending", code, b)
	}
	t.Logf("stop: %s", b)
	l := listRoom(t, ts, room)
	if l.Complete == nil || *l.Complete || len(l.Problems) == 0 {
		t.Errorf("listing does not say it may miss recordings, and why: %+v", l)
	}
	var uploading bool
	for _, st := range l.Active {
		uploading = uploading || (st.RecordingID == stop.RecordingID && st.State == recorder.StateUploading)
	}
	if !uploading {
		t.Errorf("the stopped recording is not listed as uploading: %+v", l.Active)
	}
	t.Logf("listing problems: %q", l.Problems)
}

// TestRecordingSpoolNotWritable starts a server whose spool and local store cannot be
// written: classes are served, starting a recording answers why it cannot, and listings
// carry the problems.
func TestRecordingSpoolNotWritable(t *testing.T) {
	t.Parallel()
	blocker := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(blocker, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, nil, func(c *config.Config) {
		c.Recording.SpoolDir = filepath.Join(blocker, "spool")
		c.Recording.Storage.LocalDir = filepath.Join(blocker, "recordings")
	})
	const room = "rec-readonly"
	c := testclient.Join(t, ts.target, room, "teacher", &testclient.JoinOptions{NoAutoSubscribe: true})
	if _, err := testclient.PublishOpus(c.Room, testmedia.Get(t), nil); err != nil {
		t.Fatal(err)
	}
	code, b := httpDo(t, http.MethodPost, ts.target.HTTPURL+"/api/v1/rooms/"+room+"/recording/start",
		ts.target.Token(t, "api-caller", recordGrant(room)))
	if code != http.StatusServiceUnavailable || !strings.Contains(string(b), "spool") {
		t.Errorf("start with an unwritable spool: HTTP %d %s; want 503 saying why", code, b)
	}
	testclient.Eventually(t, 30*time.Second, "listing tells the spool and the store problems", func() (bool, string) {
		l := listRoom(t, ts, room)
		var spool, store bool
		for _, p := range l.Problems {
			spool = spool || strings.Contains(p, "spool")
			store = store || strings.Contains(p, "store")
		}
		return spool && store, fmt.Sprintf("%q", l.Problems)
	})
}

// TestRecordingStartsAreLimited starts and stops a room's recording again and again through
// the API: each start makes a recording in the store, so past a few they are refused for a
// while with 429.
func TestRecordingStartsAreLimited(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	const room = "starts-room"
	testclient.Join(t, ts.target, room, "teacher", &testclient.JoinOptions{NoAutoSubscribe: true})
	start := func() int {
		code, _ := httpDo(t, http.MethodPost, ts.target.HTTPURL+"/api/v1/rooms/"+room+"/recording/start",
			ts.target.Token(t, "api-caller", recordGrant(room)))
		return code
	}
	for i := 0; i < 20; i++ {
		code := start()
		if code == http.StatusTooManyRequests {
			t.Logf("start %d refused with 429", i+1)
			return
		}
		if code != http.StatusOK {
			t.Fatalf("start %d: HTTP %d", i+1, code)
		}
		if code, _, b := stopRoom(t, ts, room); code != http.StatusOK {
			t.Fatalf("stop %d: HTTP %d %s", i+1, code, b)
		}
	}
	t.Errorf("20 recordings started in a row: none refused")
}

// TestRecordingKeysInS3 stores, lists, reads and downloads through a presigned URL objects
// whose keys carry escaped names ('%', '~', '.'), in a real S3 server.
func TestRecordingKeysInS3(t *testing.T) {
	t.Parallel()
	store := startS3(t).store(t)
	ctx := t.Context()
	if err := store.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	keys := []string{
		"classes/class%201/RC_20240101T000000Z_00000001/a%20b_camera.webm",
		"classes/class%3A1/RC_20240101T000000Z_00000002/a_b_camera.webm",
		"classes/%E7%8E%8B~0123456789abcdef0123456789abcdef/RC_20240101T000000Z_00000003/%2E.x_screen_share_2.mkv",
	}
	for i, k := range keys {
		body := fmt.Sprintf("object %d", i)
		if err := store.Put(ctx, k, strings.NewReader(body), int64(len(body)), "video/webm"); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	for i, k := range keys {
		dir := k[:strings.LastIndexByte(k, '/')+1]
		objs, err := store.List(ctx, dir)
		if err != nil || len(objs) != 1 || objs[0].Key != k {
			t.Errorf("list %s: %+v %v", dir, objs, err)
		}
		u, err := store.PresignGet(ctx, k, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		code, b := httpDo(t, http.MethodGet, u, "")
		if code != http.StatusOK || string(b) != fmt.Sprintf("object %d", i) {
			t.Errorf("presigned GET of %s: HTTP %d %q", k, code, b)
		}
	}
}

// TestDistrictRecordingBeyondTeacher: a teacher's room token (roomAdmin of its own room)
// starts and stops its class's recording, but a recording the server or the district
// started (recording.auto_rooms, or a roomRecord token) is stopped only with roomRecord
// (red team t13: the teacher stopped the district's recording with its room token). A
// teacher's recording that the district starts too becomes the district's.
func TestDistrictRecordingBeyondTeacher(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	rec := ts.srv.Recorder()
	teacher := func(room string) *auth.VideoGrant {
		return &auth.VideoGrant{RoomJoin: true, RoomAdmin: true, Room: room}
	}
	district := &auth.VideoGrant{RoomRecord: true}
	call := func(grant *auth.VideoGrant, room, action string) int {
		t.Helper()
		return api(t, ts.target, http.MethodPost, "/api/v1/rooms/"+room+"/recording/"+action, grant, nil)
	}
	recording := func(room string) bool {
		for _, st := range rec.Active() {
			if st.Room == room && st.State == recorder.StateRecording {
				return true
			}
		}
		return false
	}
	for _, c := range []struct {
		room  string
		start func(room string) // the district's way of starting it
	}{
		{"rec-auto", func(room string) { waitRecorderIn(t, rec, room) }},
		{"district-api", func(room string) {
			if code := call(district, room, "start"); code != http.StatusOK {
				t.Fatalf("district start: HTTP %d", code)
			}
		}},
		{"teacher-then-district", func(room string) {
			if code := call(teacher(room), room, "start"); code != http.StatusOK {
				t.Fatalf("teacher start: HTTP %d", code)
			}
			if code := call(district, room, "start"); code != http.StatusOK {
				t.Fatalf("district start: HTTP %d", code)
			}
		}},
	} {
		testclient.Join(t, ts.target, c.room, "teacher", &testclient.JoinOptions{NoAutoSubscribe: true})
		c.start(c.room)
		if code := call(teacher(c.room), c.room, "stop"); code != http.StatusForbidden {
			t.Errorf("%s: the teacher's stop of the district's recording: HTTP %d, want 403", c.room, code)
		}
		if !recording(c.room) {
			t.Errorf("%s: not recording after the teacher's refused stop: %+v", c.room, rec.Active())
		}
		if code := call(district, c.room, "stop"); code != http.StatusOK {
			t.Errorf("%s: the district's stop: HTTP %d", c.room, code)
		}
	}

	// The teacher's own recording: the teacher starts and stops it.
	const room = "own-class"
	testclient.Join(t, ts.target, room, "teacher", &testclient.JoinOptions{NoAutoSubscribe: true})
	if code := call(teacher(room), room, "start"); code != http.StatusOK {
		t.Fatalf("teacher start: HTTP %d", code)
	}
	if code := call(teacher(room), room, "stop"); code != http.StatusOK {
		t.Errorf("the teacher's stop of its own recording: HTTP %d, want 200", code)
	}
}
