package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/recorder/storage"
	"github.com/sanke-edu/sanke/sfu/room"
)

// Errors returned by the recorder's API.
var (
	// ErrRoomNotFound: the room to record is not active on this server.
	ErrRoomNotFound = errors.New("recorder: room not found")
	// ErrNotRecording: the room has no recording in progress.
	ErrNotRecording = errors.New("recorder: room is not being recorded")
	// ErrClosed: the recorder is shutting down.
	ErrClosed = errors.New("recorder: closed")
	// ErrTooManyStarts: recordings of the room were started too often (see startEvery).
	ErrTooManyStarts = errors.New("recorder: recordings of this room were started too often; try again in a few seconds")
	// ErrStopNotAllowed: a room admin (the class's teacher) asked to stop a recording that
	// the server or a roomRecord caller started, which only roomRecord stops.
	ErrStopNotAllowed = errors.New("recorder: this recording was started by the server or the district: only a roomRecord token stops it")
)

// starter is who starts (or stops) a recording.
type starter int

const (
	// byService: the server itself (recording.auto_rooms, metadata) or a roomRecord caller.
	byService starter = iota
	// byRoomAdmin: a room admin of that room (the class's teacher), who stops only what it
	// started.
	byRoomAdmin
)

// Recordings of a room started through the API: at most startBurst at once, then one per
// startEvery (each makes a recording, files and a manifest in the store).
const (
	startEvery = 10 * time.Second
	startBurst = 3
)

// stopUploadWait is how long StopRecording waits for the upload after the files are
// finalized in the spool, before answering that the upload is pending.
const stopUploadWait = 5 * time.Second

// Rooms is what the recorder needs from the room layer: which rooms exist. *room.Manager
// implements it.
type Rooms interface {
	ListRooms(ctx context.Context, names []string) ([]*livekit.Room, error)
}

// Options configures a Recorder.
type Options struct {
	// URL is the websocket URL the recorder's own LiveKit client dials (ws://127.0.0.1:7880).
	URL string
	// APIKey and APISecret sign the recorder's join tokens.
	APIKey, APISecret string
	// Keys verify the tokens of HTTP API callers.
	Keys auth.KeyProvider
	// GrantsCheck, when set, must also accept every verified token (e.g. the classroom
	// service refusing the tokens of an account whose password changed).
	GrantsCheck func(*auth.ClaimGrants) error
	// Rooms lists active rooms.
	Rooms Rooms
	// Store receives recordings.
	Store storage.Store
	// Prefix starts every object key; a room's recordings are under Prefix + room + "/".
	Prefix string
	// SpoolDir holds recordings being written and what could not be uploaded yet.
	SpoolDir string
	// SpoolLimit caps the bytes waiting for upload (summed over recordings); past it media is
	// dropped (a gap) and EventSpoolFull is reported. 0 means no limit.
	SpoolLimit int64
	// PartSize is the size of multipart upload parts (at least storage.MinPartSize).
	PartSize int64
	// FlushInterval is how often the data not yet in a part is uploaded as a tail object:
	// what a crash can lose beyond the cluster being written.
	FlushInterval time.Duration
	// ClusterMax bounds a cluster's duration (clusters also start at each video keyframe).
	ClusterMax time.Duration
	// LinkExpiry is the validity of download links: presigned URLs of an S3 store and the
	// signed links of the download route.
	LinkExpiry time.Duration
	// AutoRooms are path.Match patterns of room names recorded automatically.
	AutoRooms []string
	// AutoMetadata records rooms whose metadata is JSON with "record": true.
	AutoMetadata bool
	// GatherWindow is how long a new participant file waits for the companion track (camera
	// for microphone and the reverse) before its tracks are fixed.
	GatherWindow time.Duration
	// StaleAfter is how old an in-progress recording found only in the store must be before
	// the recovery sweep completes it (it may belong to another node that is still recording).
	StaleAfter time.Duration
	// Logger receives the recorder's logs.
	Logger *slog.Logger
}

func (o *Options) defaults() error {
	if o.Store == nil {
		return errors.New("recorder: no store")
	}
	if o.SpoolDir == "" {
		return errors.New("recorder: no spool dir")
	}
	if o.PartSize < storage.MinPartSize {
		o.PartSize = storage.MinPartSize
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 2 * time.Second
	}
	if o.ClusterMax <= 0 {
		o.ClusterMax = 4 * time.Second
	}
	if o.LinkExpiry <= 0 {
		o.LinkExpiry = time.Hour
	}
	if o.GatherWindow <= 0 {
		o.GatherWindow = 1500 * time.Millisecond
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = 2 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Prefix != "" && !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	for _, p := range o.AutoRooms {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("recorder: bad auto room pattern %q: %w", p, err)
		}
	}
	return nil
}

// roomState is what the recorder knows of one active room.
type roomState struct {
	info *livekit.Room
	// wanted: the room should be recorded while it has participants.
	wanted bool
	// stopped: an API stop turned recording off for the rest of the room's life.
	stopped bool
	sess    *session
	// starts limits the recordings started through the API.
	starts *rate.Limiter
	// refused: the room was not recorded because the spool is not writable (told once).
	refused bool
}

// Recorder records rooms. It is a room.Observer: register it with room.Manager.AddObserver,
// call Start, and Close on shutdown.
type Recorder struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	rooms     map[string]*roomState
	sessions  map[string]*session // by recording id, until stored
	observers []Observer
	closed    bool
	health    health

	catalog *catalog
	links   linkSigner

	queue   chan room.Event
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started atomic.Bool

	spoolPending atomic.Int64
	spoolFull    atomic.Bool
	storeDown    atomic.Bool
}

// New makes a recorder. It starts nothing until Start.
func New(opts Options) (*Recorder, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Recorder{
		opts: opts, log: opts.Logger.With("component", "recorder"),
		rooms: map[string]*roomState{}, sessions: map[string]*session{},
		queue: make(chan room.Event, 1024), ctx: ctx, cancel: cancel,
		links: newLinkSigner(opts.APISecret, opts.LinkExpiry),
	}
	r.catalog = newCatalog(r)
	return r, nil
}

// AddObserver registers o for recording events. Call it before Start.
func (r *Recorder) AddObserver(o Observer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observers = append(r.observers, o)
}

// Start checks that the spool directory takes files (logging loudly if not: rooms are then
// served but not recorded), then, in the background, checks the store, reads the recordings
// it holds, completes recordings interrupted by a crash and handles room events.
func (r *Recorder) Start() {
	if !r.started.CompareAndSwap(false, true) {
		return
	}
	_ = r.checkSpool()
	r.goBackground(r.eventLoop)
	r.goBackground(r.checkStore)
	r.goBackground(func() { r.catalog.load(r.ctx) })
	r.goBackground(r.recoveryLoop)
}

// goBackground runs f in a goroutine that Close waits for; it reports false (and does not
// run f) once the recorder is closing.
func (r *Recorder) goBackground(f func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
	return true
}

// OnRoomEvent implements room.Observer: events are queued and handled in order.
func (r *Recorder) OnRoomEvent(e room.Event) {
	select {
	case r.queue <- e:
	default:
		r.log.Error("room event queue full, event dropped", "type", e.Type, "room", e.Room.GetName())
	}
}

func (r *Recorder) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	lvl := slog.LevelInfo
	if e.Error != "" {
		lvl = slog.LevelError
	}
	r.log.Log(context.Background(), lvl, "recording event", "type", e.Type, "recording", e.RecordingID,
		"room", e.Room, "error", e.Error)
	r.mu.Lock()
	obs := r.observers
	r.mu.Unlock()
	for _, o := range obs {
		o.OnRecordingEvent(e)
	}
}

func (r *Recorder) eventLoop() {
	for {
		select {
		case <-r.ctx.Done():
			return
		case e := <-r.queue:
			r.handle(e)
		}
	}
}

// isRecorder reports whether p is a hidden or recorder participant (ours or another's).
func isRecorder(p *livekit.ParticipantInfo) bool {
	return p == nil || p.GetPermission().GetHidden() || p.GetPermission().GetRecorder() //nolint:staticcheck // LiveKit protocol: the recorder grant
}

// autoRecord reports whether configuration says a room is recorded.
func (r *Recorder) autoRecord(info *livekit.Room) bool {
	for _, p := range r.opts.AutoRooms {
		if ok, _ := path.Match(p, info.GetName()); ok {
			return true
		}
	}
	if r.opts.AutoMetadata && info.GetMetadata() != "" {
		var md struct {
			Record bool `json:"record"`
		}
		if json.Unmarshal([]byte(info.GetMetadata()), &md) == nil && md.Record {
			return true
		}
	}
	return false
}

func (r *Recorder) handle(e room.Event) {
	name := e.Room.GetName()
	r.mu.Lock()
	st := r.rooms[name]
	if st == nil && e.Type != room.EventRoomFinished {
		st = &roomState{}
		r.rooms[name] = st
	}
	if st != nil && e.Room != nil {
		st.info = e.Room
	}
	r.mu.Unlock()
	switch e.Type {
	case room.EventRoomStarted:
		r.mu.Lock()
		st.wanted = !st.stopped && r.autoRecord(e.Room)
		r.mu.Unlock()
	case room.EventParticipantJoined:
		if isRecorder(e.Participant) {
			return
		}
		r.mu.Lock()
		if !st.wanted && !st.stopped && r.autoRecord(e.Room) {
			st.wanted = true // metadata may have been set after the room started
		}
		wanted := st.wanted
		r.mu.Unlock()
		if wanted {
			if _, err := r.ensureSession(name, e.Room, false, byService); err != nil {
				r.refuse(name, err)
			}
		}
	case room.EventParticipantLeft:
		if isRecorder(e.Participant) {
			return
		}
		if e.Room.GetNumParticipants() == 0 {
			// Leave so that the room can close; the session stays open until the room
			// finishes, and the recorder joins again if someone comes back.
			r.mu.Lock()
			s := st.sess
			r.mu.Unlock()
			if s != nil {
				s.detach()
			}
		}
	case room.EventRoomFinished:
		r.mu.Lock()
		var s *session
		if st != nil {
			s = st.sess
		}
		delete(r.rooms, name)
		r.mu.Unlock()
		if s != nil {
			go s.finish("room finished")
		}
	}
}

// ensureSession starts recording a room, or rejoins it with the current session. It fails
// when the spool directory cannot take files, or, for a start through the API (fromAPI),
// when recordings of the room were started too often. A session started or rejoined by the
// service (by), or of a room the configuration records, is the service's from then on.
func (r *Recorder) ensureSession(name string, info *livekit.Room, fromAPI bool, by starter) (*session, error) {
	r.mu.Lock()
	st := r.rooms[name]
	var s *session
	if st != nil && st.sess != nil && !st.sess.ending() {
		s = st.sess
	}
	r.mu.Unlock()
	if s == nil {
		if err := r.spoolUsable(); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	st = r.rooms[name]
	if st == nil {
		st = &roomState{info: info}
		r.rooms[name] = st
	}
	s = st.sess
	if s != nil && s.ending() {
		s = nil // stopped a moment ago: a new recording starts
	}
	created := s == nil
	if created {
		if st.starts == nil {
			st.starts = rate.NewLimiter(rate.Every(startEvery), startBurst)
		}
		if fromAPI && !st.starts.Allow() {
			r.mu.Unlock()
			return nil, ErrTooManyStarts
		}
		s = newSession(r, info)
		st.sess, st.refused = s, false
		r.sessions[s.id] = s
	}
	if by == byService || r.autoRecord(info) {
		s.byService = true
	}
	r.mu.Unlock()
	if created {
		r.emit(Event{Type: EventRecordingStarted, RecordingID: s.id, Room: s.room})
	}
	s.attach()
	return s, nil
}

// refuse reports, once per room, that it is not recorded.
func (r *Recorder) refuse(name string, err error) {
	if errors.Is(err, ErrClosed) {
		return
	}
	r.mu.Lock()
	st := r.rooms[name]
	first := st != nil && !st.refused
	if st != nil {
		st.refused = true
	}
	r.mu.Unlock()
	if first {
		r.emit(Event{Type: EventRoomNotRecorded, Room: name, Error: err.Error()})
	}
}

// sessionEnded lets the room start a new recording: s is finalized in the spool and only
// uploads remain.
func (r *Recorder) sessionEnded(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.rooms[s.room]; st != nil && st.sess == s {
		st.sess = nil
	}
}

// sessionDone forgets a session that is stored (or left in the spool for the next start).
func (r *Recorder) sessionDone(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.sessions, s.id)
	if st := r.rooms[s.room]; st != nil && st.sess == s {
		st.sess = nil
	}
}

// StartRecording starts recording an active room now (the roomRecord API). It returns the
// recording in progress if there is one; that one becomes the service's (only StopRecording
// stops it).
func (r *Recorder) StartRecording(ctx context.Context, roomName string) (Status, error) {
	return r.startRecording(ctx, roomName, byService)
}

// startRecording starts recording an active room for by.
func (r *Recorder) startRecording(ctx context.Context, roomName string, by starter) (Status, error) {
	rooms, err := r.opts.Rooms.ListRooms(ctx, []string{roomName})
	if err != nil {
		return Status{}, err
	}
	if len(rooms) == 0 {
		return Status{}, ErrRoomNotFound
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return Status{}, ErrClosed
	}
	st := r.rooms[roomName]
	if st == nil {
		st = &roomState{info: rooms[0]}
		r.rooms[roomName] = st
	}
	st.wanted, st.stopped = true, false
	r.mu.Unlock()
	s, err := r.ensureSession(roomName, rooms[0], true, by)
	if err != nil {
		return Status{}, err
	}
	if rooms[0].GetNumParticipants() == 0 {
		s.detach()
	}
	return s.status(), nil
}

// StopRecording stops a room's recording (the roomRecord API). It returns once the files
// are finalized in the spool (no store call), after waiting a few seconds (stopUploadWait)
// for the upload, which otherwise goes on in the background.
func (r *Recorder) StopRecording(ctx context.Context, roomName string) (*StopResult, error) {
	return r.stopRecording(ctx, roomName, byService)
}

// stopRecording stops a room's recording for by: a room admin stops only a recording that
// room admins started (ErrStopNotAllowed), and changes nothing when it is refused.
func (r *Recorder) stopRecording(ctx context.Context, roomName string, by starter) (*StopResult, error) {
	r.mu.Lock()
	st := r.rooms[roomName]
	var s *session
	if st != nil {
		s = st.sess
	}
	switch {
	case by == byRoomAdmin && s == nil:
		r.mu.Unlock()
		return nil, ErrNotRecording
	case by == byRoomAdmin && s.byService:
		r.mu.Unlock()
		return nil, ErrStopNotAllowed
	case st != nil:
		st.wanted, st.stopped = false, true
	}
	r.mu.Unlock()
	if s == nil {
		return nil, ErrNotRecording
	}
	go s.finish("stopped by API")
	select {
	case <-s.ended:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	t := time.NewTimer(stopUploadWait)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
	case <-ctx.Done():
	}
	return s.stopResult(), nil
}

// Active returns the recordings in progress.
func (r *Recorder) Active() []Status {
	r.mu.Lock()
	ss := make([]*session, 0, len(r.sessions))
	for _, s := range r.sessions {
		ss = append(ss, s)
	}
	r.mu.Unlock()
	out := make([]Status, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RecordingID < out[j].RecordingID })
	return out
}

// Close finishes every recording in progress (files and manifests uploaded, or left in the
// spool for the next start when ctx ends first) and stops the recorder: uploads still
// retrying are abandoned to the spool when ctx ends.
func (r *Recorder) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	ss := make([]*session, 0, len(r.sessions))
	for _, s := range r.sessions {
		ss = append(ss, s)
	}
	r.mu.Unlock()
	for _, s := range ss {
		go s.finishCtx(ctx, "server shutting down")
	}
	var err error
	for _, s := range ss {
		select {
		case <-s.done:
		case <-ctx.Done():
			err = fmt.Errorf("recorder: %d recording(s) left in the spool for the next start: %w", len(ss), ctx.Err())
		}
		if err != nil {
			break
		}
	}
	r.cancel()
	r.wg.Wait()
	return err
}

// addPending accounts for bytes waiting for upload and enforces the spool limit.
func (r *Recorder) addPending(delta int64) {
	n := r.spoolPending.Add(delta)
	lim := r.opts.SpoolLimit
	if lim <= 0 {
		return
	}
	if n > lim && r.spoolFull.CompareAndSwap(false, true) {
		r.emit(Event{Type: EventSpoolFull, Error: fmt.Sprintf("spool limit of %d bytes reached (%d waiting for upload): new media is dropped until the store catches up", lim, n)})
	} else if n < lim*9/10 && r.spoolFull.CompareAndSwap(true, false) {
		r.emit(Event{Type: EventSpoolResumed})
	}
}

// SpoolPending returns the bytes written but not yet uploaded.
func (r *Recorder) SpoolPending() int64 { return r.spoolPending.Load() }
