package classroom

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/classroom/coverage"
	"github.com/sanke-edu/sanke/classroom/model"
)

// Request bodies are bounded per route; a larger body is refused with 413 before it is read
// (Content-Length) or as soon as the limit is crossed (chunked).
const (
	// maxBody bounds small JSON bodies: class control, token requests.
	maxBody = 4 << 10
	// entityMaxBody bounds one entity sent to PUT /api/v1/{table}/{id}.
	entityMaxBody = 64 << 10
	// importMaxBody bounds an import (all files of a multipart upload together): a term's
	// timetable for a whole province, some 200,000 session rows of about 150 bytes, fits;
	// a larger dataset is imported in parts (per term or per city, mode=merge).
	importMaxBody = 32 << 20
)

// Handler returns the REST API, served under /api/v1/. All bodies are JSON unless noted;
// errors are {"error": "...", "errors": [{"file", "row", "table", "id", "field", "message"}]}.
// Every route needs "Authorization: Bearer <token>" (see authenticate) except sign-in.
//
// Sign-in and room tokens (classroom and supervisor accounts):
//
//	POST   /api/v1/login                      {"account","password","device"} -> {"token","expires_at","account","device"}
//	POST   /api/v1/logout                     ends the sign-in of the token presented
//	GET    /api/v1/me?from=&to=               account, its sessions with its role in each, and a directory of their names
//	                                          (supervisors: also every region inside theirs)
//	POST   /api/v1/sessions/{id}/view-token   a token to list and play the session's recordings (any time)
//	POST   /api/v1/sessions/{id}/token        -> {"token","room","identity","role","expires_at","grant","attributes"}
//	                                          (admins: body {"classroom": "..."} or {"supervisor": true})
//
// Class control (room tokens of the session's room; call-on and mode: the teacher):
//
//	POST   /api/v1/rooms/{room}/hand          {"raised": true|false}   the caller's own hand
//	POST   /api/v1/rooms/{room}/call-on       {"identity", "exclusive"} grants the microphone
//	DELETE /api/v1/rooms/{room}/call-on/{identity}
//	PUT    /api/v1/rooms/{room}/mode          {"mode": "lecture"|"free"}
//	GET    /api/v1/rooms/{room}/class         {"session","room","mode","called_on","hands"}
//
// Dataset (administrators write; readers read):
//
//	GET    /api/v1/dataset                    the whole dataset (password hashes omitted)
//	POST   /api/v1/import?mode=merge|replace&dry_run=true&table=
//	                                          YAML/JSON body, CSV body (text/csv, table= or
//	                                          filename=), or multipart/form-data of files
//	GET    /api/v1/{table}                    regions, schools, classrooms, pairings, terms,
//	                                          sessions (?from=&to=&classroom=), accounts
//	GET|PUT|DELETE /api/v1/{table}/{id}       one entity (PUT upserts, validated with the rest)
//
// Statistics (readers):
//
//	GET    /api/v1/coverage?region=&from=&to=&group_by=&course_type=&subject=
//	                 &routine_min_per_week=&routine_weeks=&format=json|csv
//	                                          (also supervisor accounts: their own region,
//	                                          the default, or a region inside it)
//	GET    /api/v1/records?from=&to=&limit=   finalized session records
//	GET    /api/v1/sessions/{id}/record       {"final": bool, "record": {...}} (a preview until final)
//	GET    /api/v1/audit?from=&to=&action=&limit=
//	GET    /api/v1/outbox                     delivery backlog to the platform
//
// Dates (from, to) are YYYY-MM-DD in the configured time zone (to is inclusive) or RFC 3339
// instants (to is exclusive).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, limit int64, h http.HandlerFunc) { mux.Handle(pattern, limitBody(limit, h)) }
	handle("POST /api/v1/login", loginMaxBody, s.handleLogin)
	handle("POST /api/v1/logout", maxBody, s.handleLogout)
	handle("GET /api/v1/me", maxBody, s.handleMe)
	handle("POST /api/v1/sessions/{id}/token", maxBody, s.handleToken)
	handle("POST /api/v1/sessions/{id}/view-token", maxBody, s.handleViewToken)
	handle("GET /api/v1/sessions/{id}/record", maxBody, s.handleSessionRecord)

	handle("POST /api/v1/rooms/{room}/hand", maxBody, s.handleHand)
	handle("POST /api/v1/rooms/{room}/call-on", maxBody, s.handleCallOn)
	handle("DELETE /api/v1/rooms/{room}/call-on/{identity}", maxBody, s.handleEndCallOn)
	handle("PUT /api/v1/rooms/{room}/mode", maxBody, s.handleMode)
	handle("GET /api/v1/rooms/{room}/class", maxBody, s.handleClassState)

	handle("GET /api/v1/dataset", maxBody, s.handleDataset)
	handle("POST /api/v1/import", importMaxBody, s.handleImport)
	handle("GET /api/v1/{table}", maxBody, s.handleList)
	handle("GET /api/v1/{table}/{id}", maxBody, s.handleGet)
	handle("PUT /api/v1/{table}/{id}", entityMaxBody, s.handlePut)
	handle("DELETE /api/v1/{table}/{id}", maxBody, s.handleDelete)

	handle("GET /api/v1/coverage", maxBody, s.handleCoverage)
	handle("GET /api/v1/records", maxBody, s.handleRecords)
	handle("GET /api/v1/audit", maxBody, s.handleAudit)
	handle("GET /api/v1/outbox", maxBody, s.handleOutbox)
	// Each route bounds its own body (handle); routes not listed (404/405) read none. No bound
	// may wrap them all: nested MaxBytesReaders keep the smallest limit.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

// require authenticates and checks a predicate on the caller.
func (s *Service) require(w http.ResponseWriter, r *http.Request, ok func(*caller) bool, what string) *caller {
	c, err := s.authenticate(r)
	if err != nil {
		writeErr(w, err)
		return nil
	}
	if ok != nil && !ok(c) {
		writeError(w, http.StatusForbidden, what+" required")
		return nil
	}
	return c
}

func isAdmin(c *caller) bool  { return c.admin }
func isReader(c *caller) bool { return c.reader }

// --- sign-in and tokens ---

// publicAccount strips secrets.
func publicAccount(a model.Account) model.Account {
	a.PasswordHash, a.Password = "", ""
	return a
}

// sessionView is a session with the caller's role in it.
type sessionView struct {
	*model.Session
	Term string `json:"term,omitempty"`
	Role Role   `json:"role,omitempty"`
}

func (s *Service) handleMe(w http.ResponseWriter, r *http.Request) {
	c := s.require(w, r, func(c *caller) bool { return c.account != nil }, "a sign-in token")
	if c == nil || !s.limitTokens(w, c) {
		return
	}
	from, to, err := s.parseRange(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	if from.IsZero() {
		now := s.clock.Now().In(s.loc)
		from = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, s.loc)
	}
	if to.IsZero() {
		to = from.AddDate(0, 0, 7)
	}
	if to.After(from.AddDate(0, 0, maxMeDays)) {
		writeErr(w, badRequest("from and to span more than %d days", maxMeDays))
		return
	}
	idx := s.Index()
	sessions := []sessionView{}
	for i := range idx.Data.Sessions {
		sess := &idx.Data.Sessions[i]
		if sess.End.Before(from) || !sess.Start.Before(to) {
			continue
		}
		if role, _, err := s.sessionAccess(c.account, sess); err == nil {
			sessions = append(sessions, sessionView{Session: sess, Term: idx.TermOf(sess), Role: role})
		}
	}
	dir := directoryOf(idx, sessions)
	if c.account.Kind == model.SupervisorAccount {
		// The regions a supervisor reads coverage of (its own and those inside it), for the
		// dashboard's region choice.
		for i := range idx.Data.Regions {
			if rg := &idx.Data.Regions[i]; rg.Code == c.account.Region || model.RegionContains(c.account.Region, rg.Code) {
				dir["regions"][rg.Code] = directoryEntry{Name: rg.Name}
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"account":   publicAccount(*c.account),
		"sessions":  sessions,
		"directory": dir,
	})
}

// directoryEntry names one classroom, school or region for display.
type directoryEntry struct {
	Name   string `json:"name,omitempty"`
	School string `json:"school,omitempty"`
	Kind   string `json:"kind,omitempty"`
	Region string `json:"region,omitempty"`
}

// directoryOf names the classrooms of the given sessions, their schools and regions (county,
// city and province), so that a client can show names and filter by region without the
// whole dataset.
func directoryOf(idx *model.Index, sessions []sessionView) map[string]map[string]directoryEntry {
	dir := map[string]map[string]directoryEntry{"classrooms": {}, "schools": {}, "regions": {}}
	addRegion := func(code string) {
		if len(code) != 6 {
			return
		}
		// GB/T 2260: county XXXXXX, its city XXXX00, its province XX0000.
		for _, c := range []string{code, code[:4] + "00", code[:2] + "0000"} {
			if r := idx.Region(c); r != nil {
				dir["regions"][c] = directoryEntry{Name: r.Name}
			}
		}
	}
	for _, sv := range sessions {
		for _, id := range append([]string{sv.Master}, sv.Receivers...) {
			c := idx.Classroom(id)
			if c == nil {
				continue
			}
			dir["classrooms"][id] = directoryEntry{Name: c.Name, School: c.School, Kind: string(c.Kind)}
			if sc := idx.School(c.School); sc != nil {
				dir["schools"][sc.ID] = directoryEntry{Name: sc.Name, Region: sc.Region}
				addRegion(sc.Region)
			}
		}
	}
	return dir
}

// viewTokenTTL bounds a view token: long enough to watch a recorded lesson.
const viewTokenTTL = 3 * time.Hour

// handleViewToken gives an account of a session (at any time, also after the class) a token
// that lets it list and play the session's recordings and nothing else: it names the room
// with roomJoin (what the recorder's read API checks) but grants no publish, subscribe or
// data, and is hidden should it ever be used to join.
func (s *Service) handleViewToken(w http.ResponseWriter, r *http.Request) {
	c := s.require(w, r, func(c *caller) bool { return c.account != nil }, "a sign-in token")
	if c == nil || !s.limitTokens(w, c) {
		return
	}
	sess := s.Index().Session(r.PathValue("id"))
	if sess == nil {
		writeError(w, http.StatusNotFound, "unknown session")
		return
	}
	if _, _, err := s.sessionAccess(c.account, sess); err != nil {
		s.auditRefusal(r.Context(), c.actor, "view-token.refused", sess.ID, sess.Room, err.Error())
		writeError(w, http.StatusForbidden, err.Error())
		return
	}
	grant := &auth.VideoGrant{RoomJoin: true, Room: sess.Room, Hidden: true}
	grant.SetCanPublish(false)
	grant.SetCanSubscribe(false)
	grant.SetCanPublishData(false)
	now := s.clock.Now()
	jwt, err := auth.NewAccessToken(s.cfg.APIKey, s.cfg.APISecret).
		SetIdentity("viewer-" + strings.TrimPrefix(c.account.ID, "account:")).SetAttributes(s.issuedTo(c.account)).
		SetVideoGrant(grant).SetValidFor(viewTokenTTL).ToJWT()
	if err != nil {
		writeErr(w, err)
		return
	}
	s.audit(r.Context(), c.actor, "view-token", sess.ID, sess.Room, "")
	writeJSON(w, http.StatusOK, map[string]any{
		"token": jwt, "room": sess.Room, "session": sess.ID,
		"expires_at": now.Add(viewTokenTTL).In(s.loc).Format(time.RFC3339),
	})
}

func (s *Service) handleToken(w http.ResponseWriter, r *http.Request) {
	c := s.require(w, r, func(c *caller) bool { return c.account != nil || c.admin }, "a sign-in token")
	if c == nil || !s.limitTokens(w, c) {
		return
	}
	idx := s.Index()
	sess := idx.Session(r.PathValue("id"))
	if sess == nil {
		writeError(w, http.StatusNotFound, "unknown session")
		return
	}
	acc := c.account
	if acc == nil { // an administrator asks on behalf of a classroom or as a supervisor
		var req struct {
			Classroom  string `json:"classroom"`
			Supervisor bool   `json:"supervisor"`
		}
		if err := decode(r, &req); err != nil {
			writeErr(w, err)
			return
		}
		acc = &model.Account{ID: c.actor, Kind: model.ClassroomAccount, Classroom: req.Classroom}
		if req.Supervisor {
			acc = &model.Account{ID: c.actor, Kind: model.SupervisorAccount, Region: ""}
		}
	}
	var role Role
	var classroom string
	var err error
	if acc.Kind == model.SupervisorAccount && acc.Region == "" && c.admin {
		role = RoleSupervisor
	} else if role, classroom, err = s.sessionAccess(acc, sess); err != nil {
		s.auditRefusal(r.Context(), c.actor, "token.refused", sess.ID, sess.Room, err.Error())
		writeError(w, http.StatusForbidden, err.Error())
		return
	}
	now := s.clock.Now()
	if opens := sess.Start.Add(-s.cfg.EarlyJoin); now.Before(opens) {
		writeError(w, http.StatusForbidden, "the session's room opens at "+opens.In(s.loc).Format("2006-01-02 15:04"))
		return
	}
	if closes := sess.End.Add(s.cfg.FinalizeDelay); !now.Before(closes) {
		writeError(w, http.StatusForbidden, "the session is over")
		return
	}
	identity, name, school := classroom, "", idx.SchoolOf(classroom)
	if cl := idx.Classroom(classroom); cl != nil {
		name = cl.Name
	}
	if role == RoleSupervisor {
		identity, name = "supervisor-"+strings.TrimPrefix(acc.ID, "account:"), acc.Name
	}
	tok, err := s.mint(role, sess, identity, name, classroom, school, acc.ID, c.account)
	if err != nil {
		writeErr(w, err)
		return
	}
	// Open the session's room, so that it can be joined with room.auto_create off (only
	// scheduled classes then have rooms).
	md, _ := json.Marshal(map[string]string{"sanke.session": sess.ID, "sanke.mode": ModeLecture})
	if _, err := s.rooms.CreateRoom(r.Context(), &livekit.CreateRoomRequest{Name: sess.Room, Metadata: string(md)}); err != nil {
		s.logger.Warn("opening a session's room", "room", sess.Room, "err", err)
	}
	action := "token.issued"
	if role == RoleSupervisor {
		action = "supervisor.token"
	}
	s.audit(r.Context(), c.actor, action, sess.ID, sess.Room, "identity="+identity+" role="+string(role))
	writeJSON(w, http.StatusOK, tok)
}

// --- class control ---

// roomSession returns the session of a class room, answering 404 when there is none.
func (s *Service) roomSession(w http.ResponseWriter, r *http.Request) *model.Session {
	sess := s.Index().SessionByRoom(r.PathValue("room"))
	if sess == nil {
		writeError(w, http.StatusNotFound, "no class session uses this room")
	}
	return sess
}

func (s *Service) handleHand(w http.ResponseWriter, r *http.Request) {
	c := s.require(w, r, nil, "")
	if c == nil {
		return
	}
	sess := s.roomSession(w, r)
	if sess == nil {
		return
	}
	identity, role, ok := c.inRoom(sess)
	if !ok || role == RoleSupervisor || role == RoleTeacher || c.grants.Video.RoomAdmin {
		writeError(w, http.StatusForbidden, "a room token of a classroom in this room is required")
		return
	}
	if !s.limitControl(w, c, sess.Room) {
		return
	}
	var req struct {
		Raised bool `json:"raised"`
	}
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	if err := s.ctl.raiseHand(r.Context(), sess, identity, req.Raised); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.ctl.state(sess))
}

// moderatedSession authenticates a request about a room's class and checks that the caller
// moderates it (the teacher, or an administrator); otherwise it answers with denial (403)
// and returns a nil session.
func (s *Service) moderatedSession(w http.ResponseWriter, r *http.Request, denial string) (*caller, *model.Session) {
	c := s.require(w, r, nil, "")
	if c == nil {
		return nil, nil
	}
	sess := s.roomSession(w, r)
	if sess == nil {
		return nil, nil
	}
	if !c.moderates(sess) {
		writeError(w, http.StatusForbidden, denial)
		return nil, nil
	}
	if !s.limitControl(w, c, sess.Room) {
		return nil, nil
	}
	return c, sess
}

func (s *Service) handleCallOn(w http.ResponseWriter, r *http.Request) {
	c, sess := s.moderatedSession(w, r, "only the teacher calls on")
	if sess == nil {
		return
	}
	var req struct {
		Identity  string `json:"identity"`
		Exclusive bool   `json:"exclusive"`
	}
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	if req.Identity == "" {
		writeError(w, http.StatusBadRequest, "body {\"identity\": \"...\"} required")
		return
	}
	start := time.Now()
	info, err := s.ctl.callOn(r.Context(), sess, req.Identity, c.actor, req.Exclusive)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"participant": info.GetIdentity(), "permission": info.GetPermission(),
		"attributes": info.GetAttributes(), "applied_in_ms": time.Since(start).Milliseconds(), "class": s.ctl.state(sess)})
}

func (s *Service) handleEndCallOn(w http.ResponseWriter, r *http.Request) {
	_, sess := s.moderatedSession(w, r, "only the teacher ends a call")
	if sess == nil {
		return
	}
	// Ending a call sets a teaching point's permission: never anyone else's (a hidden
	// supervisor would get a camera, the teacher would lose its microphone).
	target := r.PathValue("identity")
	if _, role, _, err := s.ctl.participant(r.Context(), sess, target); err == nil && role != RoleTeachingPoint {
		writeErr(w, fmt.Errorf("%w (%s is %q)", errNotCallable, target, role))
		return
	}
	if err := s.ctl.endCallOn(r.Context(), sess, target); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.ctl.state(sess))
}

func (s *Service) handleMode(w http.ResponseWriter, r *http.Request) {
	_, sess := s.moderatedSession(w, r, "only the teacher changes the mode")
	if sess == nil {
		return
	}
	var req struct {
		Mode string `json:"mode"`
	}
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	if req.Mode != ModeFree && req.Mode != ModeLecture {
		writeError(w, http.StatusBadRequest, `mode must be "lecture" or "free"`)
		return
	}
	if err := s.ctl.setMode(r.Context(), sess, req.Mode); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.ctl.state(sess))
}

func (s *Service) handleClassState(w http.ResponseWriter, r *http.Request) {
	c := s.require(w, r, nil, "")
	if c == nil {
		return
	}
	sess := s.roomSession(w, r)
	if sess == nil {
		return
	}
	if _, _, in := c.inRoom(sess); !in && !c.reader && !c.moderates(sess) {
		writeError(w, http.StatusForbidden, "a room token of this room required")
		return
	}
	writeJSON(w, http.StatusOK, s.ctl.state(sess))
}

// --- statistics ---

// handleCoverage answers readers for any region and supervisor accounts for their own region
// (see coverageRegion).
func (s *Service) handleCoverage(w http.ResponseWriter, r *http.Request) {
	c := s.require(w, r, nil, "")
	if c == nil {
		return
	}
	q, csv, err := s.coverageQuery(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	if q.Region, err = coverageRegion(c, q.Region); err != nil {
		msg := "roomList, roomCreate, the admin key or a supervisor account required"
		if c.account != nil && c.account.Kind == model.SupervisorAccount {
			msg = "region " + strconv.Quote(r.URL.Query().Get("region")) + " is outside the supervisor's region " + strconv.Quote(c.account.Region)
		}
		writeError(w, http.StatusForbidden, msg)
		return
	}
	rep, err := s.Coverage(r.Context(), q)
	if err != nil {
		writeErr(w, err)
		return
	}
	if !csv {
		writeJSON(w, http.StatusOK, rep)
		return
	}
	var buf bytes.Buffer // written whole, so that an error is still an answer
	if err := rep.WriteCSV(&buf); err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="coverage.csv"`)
	_, _ = w.Write(buf.Bytes())
}

// coverageQuery reads and checks the parameters of GET /coverage, and whether CSV is asked
// for (format=csv, or Accept: text/csv without format).
func (s *Service) coverageQuery(r *http.Request) (coverage.Query, bool, error) {
	var q coverage.Query
	var err error
	if q.From, q.To, err = s.parseRange(r); err != nil {
		return q, false, err
	}
	q.Region = r.URL.Query().Get("region")
	if q.Region != "" && (len(q.Region) != 6 || strings.Trim(q.Region, "0123456789") != "") {
		return q, false, badRequest("region: %s is not a GB/T 2260 code (6 digits)", quoteTrunc(q.Region))
	}
	if q.Region != "" && s.Index().Region(q.Region) == nil {
		return q, false, badRequest("region: unknown region code %s", strconv.Quote(q.Region))
	}
	if q.Subject, err = textParam(r, "subject"); err != nil {
		return q, false, err
	}
	if q.GroupBy, err = coverage.ParseDimensions(r.URL.Query().Get("group_by")); err != nil {
		return q, false, badRequest("group_by: %v", err)
	}
	for _, p := range []struct {
		name string
		dst  *int
		max  int
	}{{"course_type", &q.CourseType, 3}, {"routine_min_per_week", &q.RoutineMinPerWeek, 50}, {"routine_weeks", &q.RoutineWeeks, 52}} {
		if *p.dst, err = intParam(r, p.name, 0, 0, p.max); err != nil {
			return q, false, err
		}
	}
	switch f := r.URL.Query().Get("format"); f {
	case "csv":
		return q, true, nil
	case "json":
		return q, false, nil
	case "":
		return q, strings.Contains(r.Header.Get("Accept"), "text/csv"), nil
	default:
		return q, false, badRequest("format: %s is not json or csv", quoteTrunc(f))
	}
}

func (s *Service) handleRecords(w http.ResponseWriter, r *http.Request) {
	if s.require(w, r, isReader, "roomList, roomCreate or the admin key") == nil {
		return
	}
	from, to, limit, err := s.rangeAndLimit(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	recs, err := s.store.Records(r.Context(), from, to, limit)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, recs)
}

func (s *Service) handleSessionRecord(w http.ResponseWriter, r *http.Request) {
	if s.require(w, r, isReader, "roomList, roomCreate or the admin key") == nil {
		return
	}
	id := r.PathValue("id")
	raw, err := s.store.Record(r.Context(), id)
	if err != nil {
		writeErr(w, err)
		return
	}
	if raw != nil {
		writeJSON(w, http.StatusOK, map[string]any{"final": true, "record": raw})
		return
	}
	idx := s.Index()
	sess := idx.Session(id)
	if sess == nil {
		writeError(w, http.StatusNotFound, "unknown session")
		return
	}
	rec, err := s.Record(r.Context(), idx, sess, s.clock.Now())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"final": false, "record": rec})
}

func (s *Service) handleAudit(w http.ResponseWriter, r *http.Request) {
	if s.require(w, r, isReader, "roomList, roomCreate or the admin key") == nil {
		return
	}
	from, to, limit, err := s.rangeAndLimit(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	action, err := textParam(r, "action")
	if err != nil {
		writeErr(w, err)
		return
	}
	entries, err := s.store.AuditLog(r.Context(), from, to, action, limit)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, entries)
}

func (s *Service) handleOutbox(w http.ResponseWriter, r *http.Request) {
	if s.require(w, r, isReader, "roomList, roomCreate or the admin key") == nil {
		return
	}
	st, err := s.outbox.Stats(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"enabled": s.outbox.Enabled(), "stats": st})
}
