package recorder

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
)

// finishTimeout bounds how long a session keeps retrying to store its files after it ended
// (the store may be down); past it what is left stays in the spool for the next start.
const finishTimeout = 30 * time.Minute

// Bounds of a recording: its files (each is a spool file, an index, an uploader), and the
// files of one participant's camera or screen share (a new one each time the track set
// changes). Tracks past them are not recorded.
const (
	maxSessionFiles = 256
	maxGroupFiles   = 16
)

// errFileLimit: a track was not recorded because of the bounds above.
var errFileLimit = errors.New("file limit of the recording reached")

// fileGroup is a participant's camera (and microphone) or screen share.
type fileGroup struct{ identity, group string }

// sessionMeta is a session's state file (session.json in its spool directory), what
// recovery needs besides the files' own state.
type sessionMeta struct {
	ID             string    `json:"id"`
	Room           string    `json:"room"`
	RoomSID        string    `json:"room_sid"`
	ClassSessionID string    `json:"class_session_id,omitempty"`
	Prefix         string    `json:"prefix"`
	StartedAt      time.Time `json:"started_at"`
	// Participants seen so far.
	Participants []ManifestParticipant `json:"participants"`
}

// session is one recording of one room: from start until the room finishes or the API
// stops it. Its LiveKit client joins while the room has participants.
type session struct {
	r    *Recorder
	id   string
	room string
	dir  string
	log  *slog.Logger

	mu           sync.Mutex
	meta         sessionMeta
	lk           *lksdk.Room
	connecting   bool
	wantConnect  bool
	finishing    bool
	files        []*outFile
	byGroup      map[fileGroup]*outFile // current file of each group
	readers      sync.WaitGroup
	participants map[string]*ManifestParticipant

	// stopping is finishing, for readers that hold the recorder's lock.
	stopping atomic.Bool
	// byService: the server or a roomRecord caller started or claimed the recording, and
	// only roomRecord stops it. Guarded by the recorder's mu.
	byService bool

	// end finalizes the files in the spool (local), then store uploads them.
	endOnce   sync.Once
	ended     chan struct{} // closed once local and spooled are set
	local     *Manifest     // the manifest of the files finalized in the spool
	spooled   []*spooledFile
	lost      error // why files were left out of the recording
	storeOnce sync.Once
	done      chan struct{} // closed once stored or given up (manifest, err set)
	manifest  *Manifest
	err       error
}

func newRecordingID(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "RC_" + t.UTC().Format("20060102T150405Z") + "_" + hex.EncodeToString(b[:])
}

func newSession(r *Recorder, info *livekit.Room) *session {
	now := time.Now()
	id := newRecordingID(now)
	s := &session{
		r: r, id: id, room: info.GetName(), dir: filepath.Join(r.opts.SpoolDir, id),
		log:     r.log.With("recording", id, "room", info.GetName()),
		byGroup: map[fileGroup]*outFile{}, participants: map[string]*ManifestParticipant{},
		ended: make(chan struct{}), done: make(chan struct{}),
	}
	s.meta = sessionMeta{
		ID: id, Room: info.GetName(), RoomSID: info.GetSid(), ClassSessionID: classSessionID(info.GetMetadata()),
		Prefix: r.sessionPrefix(info.GetName(), id), StartedAt: now,
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		s.log.Error("cannot create spool directory", "dir", s.dir, "err", err)
	}
	s.saveMeta()
	return s
}

// saveMeta writes session.json (atomically).
func (s *session) saveMeta() {
	s.mu.Lock()
	m := s.meta
	m.Participants = s.participantList()
	s.mu.Unlock()
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := writeFileAtomic(filepath.Join(s.dir, "session.json"), b); err != nil {
		s.log.Error("cannot save session state", "err", err)
	}
}

func (s *session) participantList() []ManifestParticipant {
	out := make([]ManifestParticipant, 0, len(s.participants))
	for _, p := range s.participants {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FirstSeen < out[j].FirstSeen })
	return out
}

func (s *session) status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{RecordingID: s.id, Room: s.room, StartedAt: s.meta.StartedAt, Connected: s.lk != nil,
		State: StateRecording, Files: []string{}}
	for _, f := range s.files {
		st.Files = append(st.Files, f.name)
	}
	select {
	case <-s.ended:
		st.State = StateUploading
	default:
		if s.finishing {
			st.State = StateEnding
		}
	}
	return st
}

// ending reports whether the session has begun to end (it records nothing more). It takes
// no lock: the recorder asks while holding its own.
func (s *session) ending() bool { return s.stopping.Load() }

// attach joins the room (if not already in it) in the background.
func (s *session) attach() {
	s.mu.Lock()
	s.wantConnect = true
	if s.finishing || s.lk != nil || s.connecting {
		s.mu.Unlock()
		return
	}
	s.connecting = true
	s.mu.Unlock()
	go s.connectLoop()
}

// detach leaves the room; files stay open.
func (s *session) detach() {
	s.mu.Lock()
	s.wantConnect = false
	lk := s.lk
	s.lk = nil
	s.mu.Unlock()
	if lk != nil {
		s.log.Info("recorder leaving empty room")
		lk.Disconnect()
	}
}

func (s *session) connectLoop() {
	backoff := 500 * time.Millisecond
	for attempt := 0; ; attempt++ {
		s.mu.Lock()
		if s.finishing || !s.wantConnect {
			s.connecting = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		lk, err := s.connect()
		s.mu.Lock()
		if err == nil {
			if s.finishing || !s.wantConnect {
				s.connecting = false
				s.mu.Unlock()
				lk.Disconnect()
				return
			}
			s.lk = lk
			s.connecting = false
			s.mu.Unlock()
			s.log.Info("recorder joined room")
			return
		}
		s.mu.Unlock()
		s.log.Warn("recorder cannot join room, retrying", "err", err, "attempt", attempt+1)
		if attempt >= 20 {
			s.mu.Lock()
			s.connecting = false
			s.mu.Unlock()
			s.r.emit(Event{Type: EventRecordingFailed, RecordingID: s.id, Room: s.room, Error: "cannot join room: " + err.Error()})
			return
		}
		select {
		case <-time.After(backoff):
		case <-s.r.ctx.Done():
			return
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// token mints the recorder's join token: hidden, subscribe-only, marked as a recorder.
func (s *session) token() (string, error) {
	at := auth.NewAccessToken(s.r.opts.APIKey, s.r.opts.APISecret)
	f := false
	tr := true
	at.SetIdentity("recorder-" + s.id).SetName("Sanke recorder").SetValidFor(24 * time.Hour).
		SetKind(livekit.ParticipantInfo_EGRESS).
		SetVideoGrant(&auth.VideoGrant{
			RoomJoin: true, Room: s.room, Hidden: true, Recorder: true,
			CanSubscribe: &tr, CanPublish: &f, CanPublishData: &f,
		})
	return at.ToJWT()
}

func (s *session) connect() (*lksdk.Room, error) {
	tok, err := s.token()
	if err != nil {
		return nil, err
	}
	cb := lksdk.NewRoomCallback()
	cb.ParticipantCallback.OnTrackSubscribed = s.onTrackSubscribed
	cb.OnDisconnected = func() {
		s.mu.Lock()
		s.lk = nil
		again := s.wantConnect && !s.finishing
		s.mu.Unlock()
		if again {
			s.log.Warn("recorder disconnected from room, rejoining")
			go func() {
				time.Sleep(time.Second)
				s.attach()
			}()
		}
	}
	lk := lksdk.NewRoom(cb)
	lk.SetLogger(sdkLogger(s.log, s.room))
	ctx, cancel := context.WithTimeout(s.r.ctx, 20*time.Second)
	defer cancel()
	if err := lk.JoinWithContextAndToken(ctx, s.r.opts.URL, tok, lksdk.WithAutoSubscribe(true)); err != nil {
		lk.Disconnect()
		return nil, err
	}
	return lk, nil
}

// groupOf returns which file a track source goes to.
func groupOf(src livekit.TrackSource) string {
	switch src {
	case livekit.TrackSource_SCREEN_SHARE, livekit.TrackSource_SCREEN_SHARE_AUDIO:
		return "screen_share"
	default:
		return "camera"
	}
}

func (s *session) onTrackSubscribed(track *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
	kind := track.Kind()
	mime := strings.ToLower(track.Codec().MimeType)
	if kind == webrtc.RTPCodecTypeVideo {
		_ = pub.SetVideoQuality(livekit.VideoQuality_HIGH)
	}
	if !supportedCodec(mime) {
		s.log.Warn("codec not recorded", "participant", rp.Identity(), "track", pub.SID(), "codec", mime)
		return
	}
	group := groupOf(pub.Source())
	info := pub.TrackInfo()
	s.mu.Lock()
	if s.finishing {
		s.mu.Unlock()
		return
	}
	f, ft, err := s.fileFor(rp.Identity(), group, kind, mime, info)
	if err != nil {
		s.mu.Unlock()
		s.log.Warn("track not recorded", "participant", rp.Identity(), "track", pub.SID(), "err", err)
		return
	}
	now := time.Now()
	p := s.participants[rp.Identity()]
	if p == nil {
		p = &ManifestParticipant{Identity: rp.Identity(), Name: truncateUTF8(rp.Name(), maxTrackName), FirstSeen: now.Sub(s.meta.StartedAt).Seconds()}
		s.participants[rp.Identity()] = p
	}
	if sid := rp.SID(); sid != "" && !contains(p.SIDs, sid) && len(p.SIDs) < maxSIDs {
		p.SIDs = append(p.SIDs, sid)
	}
	tr := newTrackReader(f, ft, track, rp, mime, s.log)
	s.readers.Add(1)
	s.mu.Unlock()
	s.saveMeta()
	s.log.Info("recording track", "participant", rp.Identity(), "track", pub.SID(), "codec", mime,
		"source", pub.Source().String(), "file", f.currentName())
	go func() {
		defer s.readers.Done()
		tr.run()
	}()
	f.attachReader(ft, tr, pub.SID())
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fileFor picks (or creates) the file of a participant's group that takes a track of this
// kind and codec; a file whose writing failed takes nothing more. Called with s.mu held.
func (s *session) fileFor(identity, group string, kind webrtc.RTPCodecType, mime string, info *livekit.TrackInfo) (*outFile, *fileTrack, error) {
	gk := fileGroup{identity, group}
	old := s.byGroup[gk]
	if old != nil && !old.isFailed() {
		if ft, ok := old.takeTrack(kind, mime, info); ok {
			return old, ft, nil
		}
	}
	n := 1
	for _, f := range s.files {
		if f.identity == identity && f.group == group {
			n++
		}
	}
	if n > maxGroupFiles || len(s.files) >= maxSessionFiles {
		return nil, nil, fmt.Errorf("%w (%d files of this participant's %s, %d in all)", errFileLimit, n-1, group, len(s.files))
	}
	f := newOutFile(s, identity, group, n, mime, kind)
	s.byGroup[gk] = f
	s.files = append(s.files, f)
	ft, _ := f.takeTrack(kind, mime, info)
	if old != nil && !old.isFailed() {
		// The file's tracks are fixed and do not fit (a microphone granted after the camera
		// was gathered): continue in a new file, with the old file's running tracks in it.
		s.log.Info("track set changed, starting a new file", "participant", identity, "group", group, "old", old.name, "new", f.name)
		old.handOver(f)
		go old.finishEarly()
	}
	return f, ft, nil
}

// finish ends the session and stores it, retrying uploads for up to finishTimeout or until
// the recorder closes (what is not stored by then stays in the spool for the next start).
func (s *session) finish(reason string) {
	ctx, cancel := context.WithTimeout(s.r.ctx, finishTimeout)
	defer cancel()
	s.finishCtx(ctx, reason)
}

// finishCtx ends the session (end) and stores it (store), ctx bounding the uploads.
func (s *session) finishCtx(ctx context.Context, reason string) {
	s.end(reason)
	s.store(ctx)
}

// end stops recording: it leaves the room, stops the readers and finalizes every file in the
// spool, and makes the manifest. It calls no store: it takes at most the readers' grace
// period and local disk writes. Only the first call does the work; the others wait for it.
func (s *session) end(reason string) {
	s.endOnce.Do(func() {
		defer close(s.ended)
		s.log.Info("recording ending", "reason", reason)
		s.mu.Lock()
		s.finishing = true
		s.stopping.Store(true)
		s.wantConnect = false
		lk := s.lk
		s.lk = nil
		s.mu.Unlock()
		if lk != nil {
			lk.Disconnect()
		}
		s.mu.Lock()
		files := append([]*outFile(nil), s.files...)
		s.mu.Unlock()
		for _, f := range files {
			f.stopReaders()
		}
		waitTimeout(&s.readers, 5*time.Second)
		s.local, s.spooled, s.lost = s.finalize(files, time.Now())
		s.r.sessionEnded(s)
	})
}

// finalize finalizes the files in the spool (in parallel: each is hashed) and makes the
// manifest. A file that cannot be finalized is left out (lost says why); the others are
// stored all the same.
func (s *session) finalize(files []*outFile, ended time.Time) (m *Manifest, spooled []*spooledFile, lost error) {
	s.mu.Lock()
	meta := s.meta
	meta.Participants = s.participantList()
	s.mu.Unlock()
	m = &Manifest{
		RecordingID: s.id, Room: meta.Room, RoomSID: meta.RoomSID, ClassSessionID: meta.ClassSessionID,
		StartedAt: meta.StartedAt, EndedAt: ended, Duration: ended.Sub(meta.StartedAt).Seconds(),
		Prefix: meta.Prefix, Participants: meta.Participants, Files: []ManifestFile{},
	}
	results := make([]*spooledFile, len(files))
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = f.close()
			if errs[i] != nil {
				errs[i] = fmt.Errorf("%s: %w", f.name, errs[i])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		lost = fmt.Errorf("files lost (the others are stored): %w", err)
		s.log.Error("recording files lost", "err", err)
	}
	for _, sf := range results {
		if sf != nil {
			spooled = append(spooled, sf)
			m.Files = append(m.Files, sf.entry)
		}
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].StartOffset < m.Files[j].StartOffset })
	return m, spooled, lost
}

// store uploads the finalized files and then the manifest, retrying until ctx ends, and
// cleans up the spool. Only the first call does the work; the others wait for it.
func (s *session) store(ctx context.Context) {
	<-s.ended
	s.storeOnce.Do(func() {
		defer close(s.done)
		m, err := s.upload(ctx)
		s.mu.Lock()
		s.manifest, s.err = m, err
		s.mu.Unlock()
		if err != nil {
			s.r.emit(Event{Type: EventRecordingFailed, RecordingID: s.id, Room: s.room,
				Error: "recording kept in the spool for the next start: " + err.Error()})
		} else {
			e := Event{Type: EventRecordingFinished, RecordingID: s.id, Room: s.room, Manifest: m}
			if s.lost != nil {
				e.Error = s.lost.Error()
			}
			s.r.emit(e)
		}
		s.r.sessionDone(s)
	})
}

// upload stores every finalized file, then the manifest, and removes the session's spool.
func (s *session) upload(ctx context.Context) (*Manifest, error) {
	m := s.local
	errs := make([]error, len(s.spooled))
	var wg sync.WaitGroup
	for i, sf := range s.spooled {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sf.store(ctx, s.r); err != nil {
				errs[i] = fmt.Errorf("%s: %w", sf.meta.Name, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	b := m.marshal()
	if err := retry(ctx, s.r, func() error {
		return s.r.opts.Store.Put(ctx, m.Prefix+ManifestName, bytes.NewReader(b), int64(len(b)), "application/json")
	}); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	s.r.catalog.put(m, m.Prefix)
	if err := os.RemoveAll(s.dir); err != nil {
		s.log.Warn("cannot clean spool directory", "err", err)
	}
	s.log.Info("recording stored", "files", len(m.Files), "prefix", m.Prefix, "duration", m.Duration)
	return m, nil
}

// stopResult is what StopRecording answers once the session ended.
func (s *session) stopResult() *StopResult {
	select {
	case <-s.done:
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.err != nil {
			return &StopResult{Manifest: s.local, Upload: UploadFailed, UploadError: s.err.Error()}
		}
		return &StopResult{Manifest: s.manifest, Upload: UploadStored}
	default:
		res := &StopResult{Manifest: s.local, Upload: UploadPending}
		s.r.health.mu.Lock()
		if err := s.r.health.storeErr; err != nil {
			res.UploadError = err.Error()
		}
		s.r.health.mu.Unlock()
		return res
	}
}

// waitTimeout waits for wg, at most d.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(d):
	}
}

// retry runs op until it succeeds or ctx ends, backing off and reporting the store's state.
func retry(ctx context.Context, r *Recorder, op func() error) error {
	backoff := 250 * time.Millisecond
	for {
		err := op()
		if err == nil {
			r.setStoreDown(false, nil)
			return nil
		}
		r.setStoreDown(true, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// writeFileAtomic writes a small file through a rename.
func writeFileAtomic(p string, b []byte) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}
