package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/livekit/protocol/auth"

	"github.com/sanke-edu/sanke/recorder/storage"
)

// HTTP API (all JSON, authenticated with a LiveKit access token as "Authorization: Bearer"
// or, for links opened by a browser, the access_token query parameter):
//
//	POST /api/v1/rooms/{room}/recording/start   roomRecord    -> Status
//	POST /api/v1/rooms/{room}/recording/stop    roomRecord    -> Manifest (once stored)
//	GET  /api/v1/rooms/{room}/recordings        roomRecord, roomAdmin or roomJoin for the room
//	                                            -> {"active": [Status], "recordings": [Manifest with file URLs]}
//	GET  /api/v1/recordings/{id}/files/{name}   same grants; the room is the token's (or ?room=)
//	                                            -> the file (local folder, with Range support)
//	                                               or a redirect to a presigned URL (S3)
//
// A roomRecord or roomAdmin grant applies to the room it names, or to every room when it
// names none (like LiveKit's egress tokens); roomJoin only to the room it names.

type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (r *Recorder) grants(req *http.Request) (*auth.ClaimGrants, error) {
	tok := ""
	if h := req.Header.Get("Authorization"); h != "" {
		scheme, t, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil, errors.New("authorization header is not a bearer token")
		}
		tok = strings.TrimSpace(t)
	} else {
		tok = req.URL.Query().Get("access_token")
	}
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
	return g, nil
}

// canRecord: roomRecord for room (or for all rooms), or roomAdmin of room.
func canRecord(g *auth.ClaimGrants, room string) bool {
	v := g.Video
	// roomRecord (a recording service), or roomAdmin of this very room (the class's
	// teacher moderates it, recording included).
	return (v.RoomRecord && (v.Room == "" || v.Room == room)) || (v.RoomAdmin && v.Room == room)
}

// canView: a token for the room: roomRecord, roomAdmin or roomJoin.
func canView(g *auth.ClaimGrants, room string) bool {
	v := g.Video
	switch {
	case (v.RoomRecord || v.RoomAdmin) && (v.Room == "" || v.Room == room):
		return true
	case v.RoomJoin && v.Room == room:
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

func (r *Recorder) authorize(w http.ResponseWriter, req *http.Request, room string, check func(*auth.ClaimGrants, string) bool) bool {
	g, err := r.grants(req)
	if err != nil {
		writeJSON(w, http.StatusUnauthorized, apiError{"unauthenticated: " + err.Error()})
		return false
	}
	if !check(g, room) {
		writeJSON(w, http.StatusForbidden, apiError{"token does not grant this for room " + room})
		return false
	}
	return true
}

func (r *Recorder) handleStart(w http.ResponseWriter, req *http.Request) {
	room := req.PathValue("room")
	if !r.authorize(w, req, room, canRecord) {
		return
	}
	st, err := r.StartRecording(req.Context(), room)
	switch {
	case errors.Is(err, ErrRoomNotFound):
		writeJSON(w, http.StatusNotFound, apiError{err.Error()})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
	default:
		writeJSON(w, http.StatusOK, st)
	}
}

func (r *Recorder) handleStop(w http.ResponseWriter, req *http.Request) {
	room := req.PathValue("room")
	if !r.authorize(w, req, room, canRecord) {
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Minute)
	defer cancel()
	m, err := r.StopRecording(ctx, room)
	switch {
	case errors.Is(err, ErrNotRecording):
		writeJSON(w, http.StatusNotFound, apiError{err.Error()})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
	default:
		writeJSON(w, http.StatusOK, m)
	}
}

// ListResponse is the answer of GET /api/v1/rooms/{room}/recordings.
type ListResponse struct {
	Active     []Status    `json:"active"`
	Recordings []*Manifest `json:"recordings"`
}

func (r *Recorder) handleList(w http.ResponseWriter, req *http.Request) {
	room := req.PathValue("room")
	if !r.authorize(w, req, room, canView) {
		return
	}
	ms, err := r.Recordings(req.Context(), room)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
		return
	}
	resp := ListResponse{Active: []Status{}, Recordings: ms}
	for _, st := range r.Active() {
		if st.Room == room {
			resp.Active = append(resp.Active, st)
		}
	}
	for _, m := range ms {
		for i := range m.Files {
			m.Files[i].URL = r.fileURL(req.Context(), m, &m.Files[i])
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// fileURL is where a file can be fetched: a presigned URL, or the authenticated download
// route (relative to the server).
func (r *Recorder) fileURL(ctx context.Context, m *Manifest, f *ManifestFile) string {
	if u, err := r.opts.Store.PresignGet(ctx, f.Key, r.opts.LinkExpiry); err == nil && u != "" {
		return u
	}
	return "/api/v1/recordings/" + url.PathEscape(m.RecordingID) + "/files/" + url.PathEscape(f.Name) +
		"?room=" + url.QueryEscape(m.Room)
}

// Recordings lists the stored recordings of a room, newest first.
func (r *Recorder) Recordings(ctx context.Context, room string) ([]*Manifest, error) {
	prefix := r.opts.Prefix + safeName(room) + "/"
	objs, err := r.opts.Store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := []*Manifest{}
	for _, o := range objs {
		rel := strings.TrimPrefix(o.Key, prefix)
		if path.Base(rel) != ManifestName || strings.Count(rel, "/") != 1 {
			continue
		}
		rc, err := r.opts.Store.Get(ctx, o.Key)
		if err != nil {
			continue
		}
		var m Manifest
		err = json.NewDecoder(rc).Decode(&m)
		rc.Close()
		if err == nil {
			out = append(out, &m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.After(out[j].StartedAt) })
	return out, nil
}

func (r *Recorder) handleFile(w http.ResponseWriter, req *http.Request) {
	id, name := req.PathValue("id"), req.PathValue("name")
	g, err := r.grants(req)
	if err != nil {
		writeJSON(w, http.StatusUnauthorized, apiError{"unauthenticated: " + err.Error()})
		return
	}
	room := g.Video.Room
	if q := req.URL.Query().Get("room"); q != "" {
		room = q
	}
	if room == "" || !canView(g, room) {
		writeJSON(w, http.StatusForbidden, apiError{"token does not grant access to room " + room})
		return
	}
	if !strings.HasPrefix(id, "RC_") || strings.ContainsAny(id, "/\\") || strings.ContainsAny(name, "/\\") ||
		name == ManifestName || strings.HasPrefix(name, ".") {
		writeJSON(w, http.StatusNotFound, apiError{"no such file"})
		return
	}
	key := r.sessionPrefix(room, id) + name
	obj, err := r.opts.Store.Stat(req.Context(), key)
	if errors.Is(err, storage.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, apiError{"no such file"})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
		return
	}
	if u, err := r.opts.Store.PresignGet(req.Context(), key, r.opts.LinkExpiry); err == nil && u != "" {
		http.Redirect(w, req, u, http.StatusFound)
		return
	}
	rc, err := r.opts.Store.Get(req.Context(), key)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", contentTypeOf(key))
	if rs, ok := rc.(io.ReadSeeker); ok {
		http.ServeContent(w, req, name, obj.Modified, rs)
		return
	}
	_, _ = io.Copy(w, rc)
}
