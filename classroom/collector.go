package classroom

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/classroom/coverage"
	"github.com/sanke-edu/sanke/classroom/model"
	"github.com/sanke-edu/sanke/classroom/outbox"
	"github.com/sanke-edu/sanke/classroom/store"
	"github.com/sanke-edu/sanke/sfu/room"
)

// Outbox events.
const (
	EventSessionRecord = "session.record"
	EventDailyReport   = "report.daily"
)

// metaObservingSince is when this database first started observing sessions: sessions that
// ended before are never recorded (nobody watched them).
const metaObservingSince = "observing_since"

// collector turns room events and statistics into stored observations, and observations
// into session records.
type collector struct {
	s *Service

	mu       sync.Mutex
	joined   map[string]joinInfo           // participant SID -> who and when
	counters map[[2]string]subCounters     // (subscriber SID, track SID) -> last sample
	runs     map[[2]string]*store.VideoRun // (session, classroom) -> current video run
	lastTick map[string]time.Time          // session -> time of its last sample
	// finalized holds the sessions that have a record.
	finalized map[string]bool
	since     time.Time
	// pending holds joins and leaves the store refused, oldest first (see writeConn);
	// writeMu makes their writers take turns.
	pending []connWrite
	writeMu sync.Mutex
}

type joinInfo struct {
	session   string
	classroom string
	role      Role
	at        time.Time
}

type subCounters struct {
	packets, bytes, nacks, plis uint64
	realAt                      time.Time // wall clock, for bitrates
}

func newCollector(s *Service) *collector {
	return &collector{s: s, joined: map[string]joinInfo{}, counters: map[[2]string]subCounters{},
		runs: map[[2]string]*store.VideoRun{}, lastTick: map[string]time.Time{}, finalized: map[string]bool{}}
}

func (c *collector) loadFinalized(ctx context.Context) error {
	f, err := c.s.store.FinalizedSessions(ctx)
	if err != nil {
		return err
	}
	since, err := c.s.store.Meta(ctx, metaObservingSince)
	if err != nil {
		return err
	}
	t, perr := time.Parse(time.RFC3339Nano, since)
	if since == "" || perr != nil {
		t = c.s.clock.Now()
		if err := c.s.store.Tx(ctx, func(tx *sql.Tx) error {
			return store.SetMeta(ctx, tx, metaObservingSince, t.Format(time.RFC3339Nano))
		}); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.finalized, c.since = f, t
	c.mu.Unlock()
	return nil
}

// identify returns the classroom and role of a participant of a session's room. Its
// identity, which nobody can change once it joined, decides first: a classroom ID (as in
// every room token Sanke issues) has that classroom's role in the session, or none. Only
// participants whose identity is not a classroom ID (tokens made elsewhere, e.g. by the
// platform) are identified by their attributes sanke.classroom and sanke.role. A hidden
// participant is a supervisor.
func identify(idx *model.Index, sess *model.Session, p *livekit.ParticipantInfo) (string, Role) {
	attrs := p.GetAttributes()
	classroom := p.GetIdentity()
	byIdentity := idx.Classroom(classroom) != nil
	if !byIdentity {
		classroom = attrs[AttrClassroom]
	}
	role, ok := RoleFor(sess, classroom)
	if !ok {
		role = ""
		if r, ok := ParseRole(attrs[AttrRole]); ok && !byIdentity {
			role = r
		}
	}
	if p.GetPermission().GetHidden() && role != RoleSupervisor {
		role = RoleSupervisor
	}
	return classroom, role
}

// handle records joins and leaves.
func (c *collector) handle(ctx context.Context, e room.Event) {
	if e.Room == nil {
		return
	}
	idx := c.s.Index()
	sess := idx.SessionByRoom(e.Room.GetName())
	if sess == nil {
		return
	}
	st := c.s.store
	switch e.Type {
	case room.EventParticipantJoined:
		p := e.Participant
		if p.GetPermission().GetRecorder() { //nolint:staticcheck // LiveKit protocol: the recorder grant
			return // the recorder is not a classroom
		}
		classroom, role := identify(idx, sess, p)
		if role == RoleSupervisor {
			c.s.audit(ctx, p.GetIdentity(), "supervisor.join", sess.ID, sess.Room, "")
			return
		}
		c.mu.Lock()
		c.joined[p.GetSid()] = joinInfo{session: sess.ID, classroom: classroom, role: role, at: e.Time}
		c.mu.Unlock()
		c.writeConn(ctx, connWrite{session: sess.ID, sid: p.GetSid(), open: &store.Connection{Session: sess.ID,
			ParticipantSID: p.GetSid(), Classroom: classroom, Identity: p.GetIdentity(), Role: string(role), JoinedAt: e.Time}})
		if _, member := RoleFor(sess, classroom); !member {
			c.s.logger.Info("participant outside the session's classrooms joined", "session", sess.ID, "identity", p.GetIdentity())
		}
	case room.EventParticipantLeft:
		p := e.Participant
		if p.GetPermission().GetRecorder() { //nolint:staticcheck // LiveKit protocol: the recorder grant
			return
		}
		if _, role := identify(idx, sess, p); role == RoleSupervisor {
			c.s.audit(ctx, p.GetIdentity(), "supervisor.leave", sess.ID, sess.Room, "")
			return
		}
		c.mu.Lock()
		delete(c.joined, p.GetSid())
		c.mu.Unlock()
		c.writeConn(ctx, connWrite{session: sess.ID, sid: p.GetSid(), at: e.Time, by: e.Reason.String()})
	case room.EventRoomFinished:
		c.retryConnWrites(ctx) // leaves written at their own time, not at the room's end
		if err := st.CloseSession(ctx, sess.ID, e.Time, "room_finished"); err != nil {
			c.s.logger.Error("closing a session's connections", "session", sess.ID, "err", err)
		}
	}
}

// classroomVideo accumulates, for one receiving classroom in one pass, the video it gets
// from the master classroom.
type classroomVideo struct {
	flowing   bool
	joinedAt  time.Time // earliest join among its participants receiving video
	main      *room.SubscriptionStats
	mainBytes uint64
	mainDT    time.Duration
	bytes     uint64
	nacks     uint64
	plis      uint64
}

// sample takes one pass over the rooms of sessions: heartbeats for open connections, video
// delivery spans and quality samples of receiving classrooms.
func (c *collector) sample(ctx context.Context, now time.Time) {
	c.retryConnWrites(ctx)
	idx := c.s.Index()
	tick := &store.Tick{At: now, Samples: map[string][]coverage.Sample{}}
	c.mu.Lock()
	counters := map[[2]string]subCounters{}
	for _, name := range c.s.rooms.RoomNames() {
		sess := idx.SessionByRoom(name)
		if sess == nil || c.finalized[sess.ID] {
			continue
		}
		stats, err := c.s.rooms.Stats(name)
		if err != nil {
			continue // the room just closed
		}
		prev := c.lastTick[sess.ID]
		c.lastTick[sess.ID] = now
		classroomOf := map[string]string{}
		for _, p := range stats {
			cl, _ := identify(idx, sess, p.Info)
			classroomOf[p.Info.GetIdentity()] = cl
		}
		videos := map[string]*classroomVideo{}
		for _, p := range stats {
			tick.Alive = append(tick.Alive, [2]string{sess.ID, p.Info.GetSid()})
			cl := classroomOf[p.Info.GetIdentity()]
			if !sess.HasReceiver(cl) {
				continue
			}
			for i := range p.Subscriptions {
				sub := &p.Subscriptions[i]
				if sub.Kind != livekit.TrackType_VIDEO || classroomOf[sub.Publisher] != sess.Master {
					continue
				}
				key := [2]string{p.Info.GetSid(), sub.TrackSID}
				cur := subCounters{packets: sub.Packets, bytes: sub.Bytes, nacks: sub.NACKs, plis: sub.PLIs, realAt: time.Now()}
				counters[key] = cur
				last, seen := c.counters[key]
				if !seen || cur.packets < last.packets {
					last = subCounters{}
				}
				v := videos[cl]
				if v == nil {
					v = &classroomVideo{}
					videos[cl] = v
				}
				dPackets, dBytes := cur.packets-last.packets, cur.bytes-last.bytes
				v.bytes += dBytes
				v.nacks += cur.nacks - min(last.nacks, cur.nacks)
				v.plis += cur.plis - min(last.plis, cur.plis)
				if dPackets > 0 {
					v.flowing = true
					if j, ok := c.joined[p.Info.GetSid()]; ok && (v.joinedAt.IsZero() || j.at.Before(v.joinedAt)) {
						v.joinedAt = j.at
					}
				}
				better := v.main == nil || (sub.Source == livekit.TrackSource_CAMERA && v.main.Source != livekit.TrackSource_CAMERA) ||
					(sub.Source == v.main.Source && dBytes > v.mainBytes)
				if better {
					v.main, v.mainBytes = sub, dBytes
					v.mainDT = 0
					if seen {
						v.mainDT = cur.realAt.Sub(last.realAt)
					}
				}
			}
		}
		for cl, v := range videos {
			key := [2]string{sess.ID, cl}
			if v.flowing {
				start := prev
				if start.IsZero() || v.joinedAt.After(start) {
					start = v.joinedAt
				}
				if start.IsZero() {
					start = now
				}
				// Extend the current run when video was already flowing at the previous pass
				// to a participant present then; otherwise a new run starts.
				if run := c.runs[key]; run != nil && !prev.IsZero() && run.End.Equal(prev) && !start.After(prev) {
					run.End = now
					tick.Runs = append(tick.Runs, run)
				} else {
					run := &store.VideoRun{Session: sess.ID, Classroom: cl, Start: start, End: now}
					c.runs[key] = run
					tick.Runs = append(tick.Runs, run)
				}
			}
			if v.main == nil {
				continue
			}
			sm := coverage.Sample{At: now, Classroom: cl, Layer: v.main.CurrentLayer, Width: v.main.Width, Height: v.main.Height,
				FractionLost: v.main.FractionLost, JitterMs: ms(v.main.Jitter), RTTMs: ms(v.main.RTT), NACKs: v.nacks, PLIs: v.plis}
			if v.mainDT > 0 {
				sm.BitrateKbps = float64(v.mainBytes) * 8 / 1000 / v.mainDT.Seconds()
			}
			tick.Samples[sess.ID] = append(tick.Samples[sess.ID], sm)
		}
	}
	c.counters = counters
	c.mu.Unlock()
	if len(tick.Alive) == 0 && len(tick.Runs) == 0 {
		return
	}
	if err := c.s.store.WriteTick(ctx, tick); err != nil {
		c.s.logger.Error("storing statistics", "err", err)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// finalizeDue makes the records of sessions whose scheduled end is FinalizeDelay past.
func (c *collector) finalizeDue(ctx context.Context, now time.Time) {
	idx := c.s.Index()
	for i := range idx.Data.Sessions {
		sess := &idx.Data.Sessions[i]
		if now.Before(sess.End.Add(c.s.cfg.FinalizeDelay)) {
			continue
		}
		c.mu.Lock()
		skip := c.finalized[sess.ID] || sess.End.Before(c.since)
		c.mu.Unlock()
		if skip || c.pendingFor(sess.ID) {
			continue
		}
		if err := c.finalize(ctx, idx, sess, now); err != nil {
			c.s.logger.Error("finalizing a session", "session", sess.ID, "err", err)
		}
	}
}

// Record computes a session's record from what is stored (also before it ends: a preview).
func (s *Service) Record(ctx context.Context, idx *model.Index, sess *model.Session, now time.Time) (*coverage.SessionRecord, error) {
	conns, err := s.store.Connections(ctx, sess.ID)
	if err != nil {
		return nil, err
	}
	video, err := s.store.Video(ctx, sess.ID)
	if err != nil {
		return nil, err
	}
	samples, err := s.store.Samples(ctx, sess.ID)
	if err != nil {
		return nil, err
	}
	calledOn, err := s.store.CalledOn(ctx, sess.ID)
	if err != nil {
		return nil, err
	}
	in := coverage.Input{Session: sess, Index: idx, Video: video, Samples: samples, CalledOn: calledOn, Now: now, ValidShare: s.cfg.ValidShare}
	for _, cn := range conns {
		if _, member := RoleFor(sess, cn.Classroom); member {
			in.Connections = append(in.Connections, coverage.Connection{Classroom: cn.Classroom, Identity: cn.Identity,
				ParticipantSID: cn.ParticipantSID, JoinedAt: cn.JoinedAt, LeftAt: cn.LeftAt})
		}
	}
	return coverage.Compute(in), nil
}

// finalize stores a session's record and queues it for the platform, in one transaction.
func (c *collector) finalize(ctx context.Context, idx *model.Index, sess *model.Session, now time.Time) error {
	rec, err := c.s.Record(ctx, idx, sess, now)
	if err != nil {
		return err
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	ob := c.s.outbox
	err = c.s.store.Finalize(ctx, rec, func(tx *sql.Tx) error {
		if !ob.Enabled() {
			return nil
		}
		_, err := ob.Enqueue(ctx, tx, outbox.Message{Key: "session-record:" + sess.ID, Event: EventSessionRecord, Body: body})
		return err
	})
	if err != nil && !store.IsFinalized(err) {
		return err
	}
	c.mu.Lock()
	c.finalized[sess.ID] = true
	delete(c.lastTick, sess.ID)
	for k := range c.runs {
		if k[0] == sess.ID {
			delete(c.runs, k)
		}
	}
	c.mu.Unlock()
	if err == nil {
		ob.Notify()
		c.s.logger.Info("session finalized", "session", sess.ID, "valid_receivers", rec.ValidReceivers, "receivers", len(rec.Receivers))
	}
	return nil
}

// Daily reports.

const metaDailyReportLast = "daily_report_last"

// DailyReport is the body of a report.daily message.
type DailyReport struct {
	Schema      string           `json:"schema"`
	Date        string           `json:"date"`
	GeneratedAt time.Time        `json:"generated_at"`
	ValidShare  float64          `json:"valid_threshold"`
	Report      *coverage.Report `json:"report"`
}

// queueDailyReports queues the reports of the days that ended since the last one.
func (s *Service) queueDailyReports(ctx context.Context, now time.Time) {
	if !s.outbox.Enabled() || s.cfg.DailyReportHour < 0 {
		return
	}
	local := now.In(s.loc)
	last := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, s.loc).AddDate(0, 0, -1) // yesterday
	if local.Hour() < s.cfg.DailyReportHour {
		last = last.AddDate(0, 0, -1)
	}
	prev, err := s.store.Meta(ctx, metaDailyReportLast)
	if err != nil {
		s.logger.Error("daily report", "err", err)
		return
	}
	var day time.Time
	if p, err := model.ParseDate(prev, s.loc); prev != "" && err == nil {
		day = p.AddDate(0, 0, 1)
	} else {
		c := s.col
		c.mu.Lock()
		since := c.since.In(s.loc)
		c.mu.Unlock()
		day = time.Date(since.Year(), since.Month(), since.Day(), 0, 0, 0, 0, s.loc)
	}
	if day.Before(last.AddDate(0, 0, -31)) {
		day = last.AddDate(0, 0, -31)
	}
	for ; !day.After(last); day = day.AddDate(0, 0, 1) {
		if err := s.queueDailyReport(ctx, day, now); err != nil {
			s.logger.Error("daily report", "date", day.Format(model.DateLayout), "err", err)
			return
		}
	}
}

func (s *Service) queueDailyReport(ctx context.Context, day, now time.Time) error {
	date := day.Format(model.DateLayout)
	rep, err := s.Coverage(ctx, coverage.Query{From: day, To: day.AddDate(0, 0, 1), GroupBy: []coverage.Dimension{coverage.ByCounty}})
	if err != nil {
		return err
	}
	body, err := json.Marshal(DailyReport{Schema: "sanke.daily_report.v1", Date: date, GeneratedAt: now.In(s.loc), ValidShare: s.cfg.ValidShare, Report: rep})
	if err != nil {
		return err
	}
	err = s.store.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.outbox.Enqueue(ctx, tx, outbox.Message{Key: "daily-report:" + date, Event: EventDailyReport, Body: body}); err != nil {
			return err
		}
		return store.SetMeta(ctx, tx, metaDailyReportLast, date)
	})
	if err != nil {
		return fmt.Errorf("queueing: %w", err)
	}
	s.outbox.Notify()
	s.logger.Info("daily report queued", "date", date)
	return nil
}

// Coverage computes aggregates (routine-use parameters default to the configuration).
func (s *Service) Coverage(ctx context.Context, q coverage.Query) (*coverage.Report, error) {
	rows, err := s.store.Attendance(ctx, q.From, q.To)
	if err != nil {
		return nil, err
	}
	if q.RoutineMinPerWeek <= 0 {
		q.RoutineMinPerWeek = s.cfg.RoutineMinPerWeek
	}
	if q.RoutineWeeks <= 0 {
		q.RoutineWeeks = s.cfg.RoutineWeeks
	}
	return coverage.Aggregate(s.Index(), rows, q), nil
}
