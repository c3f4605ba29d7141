package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/livekit/protocol/auth"

	"github.com/sanke-edu/sanke/recorder/storage"
)

// HTTP API (JSON), authenticated with a LiveKit access token in an "Authorization: Bearer"
// header; tokens in the URL (?access_token=) are refused, they end up in logs, histories and
// Referer headers:
//
//	POST /api/v1/rooms/{room}/recording/start   roomRecord, or roomAdmin of the room -> Status
//	POST /api/v1/rooms/{room}/recording/stop    roomRecord, or roomAdmin of the room for a
//	                                            recording room admins started -> StopResult
//	                                            (the manifest and whether it is stored yet)
//	GET  /api/v1/rooms/{room}/recordings        roomRecord, roomAdmin or roomJoin for the room
//	                                            -> ListResponse (file URLs: signed links, or
//	                                               presigned URLs of an S3 store)
//	GET  /api/v1/recordings/{id}/files/{name}   the same grants for the recording's room, or a
//	                                            valid signed link (links.go) for this file
//	                                            -> the file (local folder, with Range support)
//	                                               or a redirect to a presigned URL (S3)
//
// A roomRecord or roomAdmin grant applies to the room it names, or to every room when it
// names none (like LiveKit's egress tokens); roomJoin only to the room it names. A room
// admin's token (the class's teacher) starts and stops the room's recording, but does not
// stop one the server (recording.auto_rooms, metadata) or a roomRecord caller started or
// also started: the district's recordings are beyond a teacher's reach. The room of a
// stored recording is the exact name its manifest gives, never one derived from keys.
//
// Answers never wait on the store for long: listings come from the catalog (catalog.go)
// within listWait, a stop returns once the files are finalized in the spool.

type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// errQueryToken: a token in the URL.
var errQueryToken = errors.New("access tokens in the URL are not accepted: send an Authorization: Bearer header (recording files are opened with the signed links of a listing)")

func (r *Recorder) grants(req *http.Request) (*auth.ClaimGrants, error) {
	h := req.Header.Get("Authorization")
	if h == "" {
		if req.URL.Query().Has("access_token") {
			return nil, errQueryToken
		}
		return nil, errors.New("missing access token")
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, errors.New("authorization header is not a bearer token")
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return nil, errors.New("missing access token")
	}
	v, err := auth.ParseAPIToken(tok)
	if err != nil {
		return nil, err
	}
	if r.opts.Keys == nil {
		return nil, errors.New("no API keys")
	}
	secret := r.opts.Keys.GetSecret(v.APIKey())
	if secret == "" {
		return nil, errors.New("unknown API key")
	}
	_, g, err := v.Verify(secret)
	if err != nil {
		return nil, err
	}
	if g.Video == nil {
		return nil, errors.New("token has no video grant")
	}
	if r.opts.GrantsCheck != nil {
		if err := r.opts.GrantsCheck(g); err != nil {
			return nil, fmt.Errorf("token no longer valid: %w", err)
		}
	}
	return g, nil
}

// canRecord: roomRecord for room (or for all rooms), or roomAdmin of room.
func canRecord(g *auth.ClaimGrants, room string) bool {
	// roomAdmin of this very room: the class's teacher moderates it, recording included.
	return recordsAs(g, room) == byService || (g.Video.RoomAdmin && g.Video.Room != "" && g.Video.Room == room)
}

// recordsAs is who a caller allowed by canRecord records room as: the service with
// roomRecord for the room (or for all rooms), else a room admin.
func recordsAs(g *auth.ClaimGrants, room string) starter {
	if v := g.Video; v.RoomRecord && (v.Room == "" || v.Room == room) {
		return byService
	}
	return byRoomAdmin
}

// canView: a token for the room: roomRecord, roomAdmin or roomJoin.
func canView(g *auth.ClaimGrants, room string) bool {
	v := g.Video
	switch {
	case (v.RoomRecord || v.RoomAdmin) && (v.Room == "" || v.Room == room):
		return true
	case v.RoomJoin && v.Room != "" && v.Room == room:
		return true
	}
	return false
}

// Register adds the recording routes to mux.
func (r *Recorder) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/rooms/{room}/recording/start", r.handleStart)
	mux.HandleFunc("POST /api/v1/rooms/{room}/recording/stop", r.handleStop)
	mux.HandleFunc("GET /api/v1/rooms/{room}/recordings", r.handleList)
	mux.HandleFunc("GET /api/v1/recordings/{id}/files/{name}", r.handleFile)
}

// authorize returns the caller's grants if check allows them for room, else answers 401
// or 403 and returns nil.
func (r *Recorder) authorize(w http.ResponseWriter, req *http.Request, room string, check func(*auth.ClaimGrants, string) bool) *auth.ClaimGrants {
	g, err := r.grants(req)
	if err != nil {
		writeJSON(w, http.StatusUnauthorized, apiError{"unauthenticated: " + err.Error()})
		return nil
	}
	if !check(g, room) {
		writeJSON(w, http.StatusForbidden, apiError{"token does not grant this for room " + room})
		return nil
	}
	return g
}

func (r *Recorder) handleStart(w http.ResponseWriter, req *http.Request) {
	room := req.PathValue("room")
	g := r.authorize(w, req, room, canRecord)
	if g == nil {
		return
	}
	st, err := r.startRecording(req.Context(), room, recordsAs(g, room))
	switch {
	case errors.Is(err, ErrRoomNotFound):
		writeJSON(w, http.StatusNotFound, apiError{err.Error()})
	case errors.Is(err, ErrTooManyStarts):
		w.Header().Set("Retry-After", strconv.Itoa(int(startEvery.Seconds())))
		writeJSON(w, http.StatusTooManyRequests, apiError{err.Error()})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
	default:
		writeJSON(w, http.StatusOK, st)
	}
}

// stopTimeout bounds a stop: the readers' grace period and finalizing files on local disk.
const stopTimeout = time.Minute

func (r *Recorder) handleStop(w http.ResponseWriter, req *http.Request) {
	room := req.PathValue("room")
	g := r.authorize(w, req, room, canRecord)
	if g == nil {
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), stopTimeout)
	defer cancel()
	res, err := r.stopRecording(ctx, room, recordsAs(g, room))
	switch {
	case errors.Is(err, ErrNotRecording):
		writeJSON(w, http.StatusNotFound, apiError{err.Error()})
	case errors.Is(err, ErrStopNotAllowed):
		writeJSON(w, http.StatusForbidden, apiError{err.Error()})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// ListResponse is the answer of GET /api/v1/rooms/{room}/recordings.
type ListResponse struct {
	// Active are the recordings of the room in progress, uploads included.
	Active []Status `json:"active"`
	// Recordings are the stored recordings of the room, newest first; each file's URL is a
	// signed link of the download route or a presigned URL of an S3 store.
	Recordings []*Manifest `json:"recordings"`
	// Complete is false when the store could not be read in time: Recordings holds what
	// the recorder knows, and may miss some (Problems says why).
	Complete bool `json:"complete"`
	// Problems describe what keeps recording or listing from working: the spool directory
	// not writable, the store not answering, the spool limit reached. Empty when all is well.
	Problems []string `json:"problems"`
}

func (r *Recorder) handleList(w http.ResponseWriter, req *http.Request) {
	room := req.PathValue("room")
	if r.authorize(w, req, room, canView) == nil {
		return
	}
	ms, err := r.catalog.list(req.Context(), room)
	resp := ListResponse{Active: []Status{}, Recordings: ms, Complete: err == nil, Problems: r.Problems()}
	if err != nil {
		resp.Problems = append(resp.Problems, err.Error())
	}
	for _, st := range r.Active() {
		if st.Room == room {
			resp.Active = append(resp.Active, st)
		}
	}
	// Presigning may ask the store for the bucket's region: one deadline for the listing.
	ctx, cancel := context.WithTimeout(req.Context(), presignTimeout)
	defer cancel()
	now := time.Now()
	for _, m := range ms {
		for i := range m.Files {
			m.Files[i].URL = r.fileURL(ctx, m, &m.Files[i], now)
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// presignTimeout bounds presigning the URLs of a listing.
const presignTimeout = 5 * time.Second

// fileURL is where a file can be fetched: a presigned URL of the store, or the signed link
// of the download route (relative to the server), which also serves S3 files when
// presigning fails.
func (r *Recorder) fileURL(ctx context.Context, m *Manifest, f *ManifestFile, now time.Time) string {
	if u, err := r.opts.Store.PresignGet(ctx, f.Key, r.opts.LinkExpiry); err == nil && u != "" {
		return u
	}
	return r.links.link(m.RecordingID, f.Name, now)
}

// Recordings lists the stored recordings of a room (exactly that name), newest first. It
// reads the store again when the room's last listing is older than catalogFresh, waiting for
// it at most listWait: a non-nil error says the list may be incomplete.
func (r *Recorder) Recordings(ctx context.Context, room string) ([]*Manifest, error) {
	return r.catalog.list(ctx, room)
}

// fileTimeout bounds looking up a file of the store for a download (reading it is bounded
// by the store itself).
const fileTimeout = 30 * time.Second

func (r *Recorder) handleFile(w http.ResponseWriter, req *http.Request) {
	id, name := req.PathValue("id"), req.PathValue("name")
	q := req.URL.Query()
	var g *auth.ClaimGrants
	if q.Has("sig") || q.Has("expires") {
		if err := r.links.verify(req, id, name, time.Now()); err != nil {
			writeJSON(w, http.StatusForbidden, apiError{err.Error()})
			return
		}
	} else {
		var err error
		if g, err = r.grants(req); err != nil {
			writeJSON(w, http.StatusUnauthorized, apiError{"unauthenticated: " + err.Error()})
			return
		}
	}
	e, ok := r.catalog.get(id)
	if !ok && g != nil && g.Video.Room != "" {
		// A recording of the token's room this node has not seen yet (another node's).
		_, _ = r.catalog.list(req.Context(), g.Video.Room)
		e, ok = r.catalog.get(id)
	}
	if !ok {
		if loaded, _ := r.catalog.status(); !loaded {
			writeJSON(w, http.StatusServiceUnavailable, apiError{"the recordings in the store have not been read yet: try again"})
			return
		}
		writeJSON(w, http.StatusNotFound, apiError{"no such recording"})
		return
	}
	if g != nil && !canView(g, e.m.Room) {
		writeJSON(w, http.StatusForbidden, apiError{"token does not grant access to this recording's room"})
		return
	}
	var f *ManifestFile
	for i := range e.m.Files {
		if e.m.Files[i].Name == name {
			f = &e.m.Files[i]
		}
	}
	// Only a file the manifest lists, stored beside it.
	if f == nil || f.Key != e.dir+name || strings.ContainsAny(name, "/\\") {
		writeJSON(w, http.StatusNotFound, apiError{"no such file"})
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), fileTimeout)
	defer cancel()
	if u, err := r.opts.Store.PresignGet(ctx, f.Key, r.opts.LinkExpiry); err == nil && u != "" {
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.Redirect(w, req, u, http.StatusFound)
		return
	}
	obj, err := r.opts.Store.Stat(ctx, f.Key)
	if errors.Is(err, storage.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, apiError{"no such file"})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
		return
	}
	rc, err := r.opts.Store.Get(req.Context(), f.Key)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", contentTypeOf(f.Key))
	w.Header().Set("Cache-Control", "private")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if rs, ok := rc.(io.ReadSeeker); ok {
		http.ServeContent(w, req, name, obj.Modified, rs)
		return
	}
	_, _ = io.Copy(w, rc)
}
