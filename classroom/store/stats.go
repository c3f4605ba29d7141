package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/sanke-edu/sanke/classroom/coverage"
)

// Connection is one participant's presence in a session's room.
type Connection struct {
	Session        string
	ParticipantSID string
	Classroom      string
	Identity       string
	Role           string
	JoinedAt       time.Time
	LeftAt         time.Time // zero while connected
}

// OpenConnection records a join. Joins are idempotent: the same participant (session and
// participant SID) recorded twice is stored once.
func (s *Store) OpenConnection(ctx context.Context, c Connection) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO connection (session_id, participant_sid, classroom, identity, role, joined_at, last_seen)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session_id, participant_sid) DO NOTHING`,
		c.Session, c.ParticipantSID, c.Classroom, c.Identity, c.Role, ms(c.JoinedAt), ms(c.JoinedAt))
	return err
}

// CloseConnection records a leave; closing an already closed connection changes nothing.
func (s *Store) CloseConnection(ctx context.Context, session, participantSID string, at time.Time, by string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE connection SET left_at = MAX(?, joined_at), closed_by = ?
		WHERE session_id = ? AND participant_sid = ? AND left_at IS NULL`, ms(at), by, session, participantSID)
	return err
}

// CloseSession closes every open connection of a session (its room finished).
func (s *Store) CloseSession(ctx context.Context, session string, at time.Time, by string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE connection SET left_at = MAX(?, joined_at), closed_by = ?
		WHERE session_id = ? AND left_at IS NULL`, ms(at), by, session)
	return err
}

// RecoverOpen closes the connections left open by a crash at the last moment they were
// known to be alive (their last heartbeat), so that downtime is never counted as connected.
// It returns how many were closed.
func (s *Store) RecoverOpen(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE connection SET left_at = COALESCE(last_seen, joined_at), closed_by = 'restart'
		WHERE left_at IS NULL`)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Connections returns the connections of a session, by join time.
func (s *Store) Connections(ctx context.Context, session string) ([]Connection, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT participant_sid, classroom, identity, role, joined_at, left_at
		FROM connection WHERE session_id = ? ORDER BY joined_at`, session)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Connection
	for rows.Next() {
		c := Connection{Session: session}
		var joined int64
		var left sql.NullInt64
		if err := rows.Scan(&c.ParticipantSID, &c.Classroom, &c.Identity, &c.Role, &joined, &left); err != nil {
			return nil, err
		}
		c.JoinedAt = fromMS(joined)
		if left.Valid {
			c.LeftAt = fromMS(left.Int64)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// VideoRun is a span during which a receiving classroom got video from the master. ID 0
// means a new run.
type VideoRun struct {
	ID        int64
	Session   string
	Classroom string
	Start     time.Time
	End       time.Time
}

// Tick is what one sampling pass observed.
type Tick struct {
	At time.Time
	// Alive lists the connections seen alive (session, participant SID).
	Alive [][2]string
	// Runs are video runs to create (ID 0) or extend (to End).
	Runs []*VideoRun
	// Samples are quality samples, per session.
	Samples map[string][]coverage.Sample
}

// WriteTick stores a sampling pass in one transaction; new runs get their IDs.
func (s *Store) WriteTick(ctx context.Context, t *Tick) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		for _, a := range t.Alive {
			if _, err := tx.ExecContext(ctx, `UPDATE connection SET last_seen = ? WHERE session_id = ? AND participant_sid = ? AND left_at IS NULL`,
				ms(t.At), a[0], a[1]); err != nil {
				return err
			}
		}
		for _, r := range t.Runs {
			if r.ID != 0 {
				if _, err := tx.ExecContext(ctx, `UPDATE video_run SET end_at = ? WHERE id = ?`, ms(r.End), r.ID); err != nil {
					return err
				}
				continue
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO video_run (session_id, classroom, start_at, end_at) VALUES (?, ?, ?, ?)`,
				r.Session, r.Classroom, ms(r.Start), ms(r.End))
			if err != nil {
				return err
			}
			if r.ID, err = res.LastInsertId(); err != nil {
				return err
			}
		}
		for session, samples := range t.Samples {
			for _, sm := range samples {
				if _, err := tx.ExecContext(ctx, `INSERT INTO sample (session_id, classroom, at, layer, width, height, bitrate_kbps,
					fraction_lost, jitter_ms, rtt_ms, nacks, plis) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
					session, sm.Classroom, ms(sm.At), sm.Layer, sm.Width, sm.Height, sm.BitrateKbps, sm.FractionLost,
					sm.JitterMs, sm.RTTMs, int64(sm.NACKs), int64(sm.PLIs)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Video returns a session's video runs per receiving classroom.
func (s *Store) Video(ctx context.Context, session string) (map[string][]coverage.Interval, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT classroom, start_at, end_at FROM video_run WHERE session_id = ?`, session)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]coverage.Interval{}
	for rows.Next() {
		var c string
		var a, b int64
		if err := rows.Scan(&c, &a, &b); err != nil {
			return nil, err
		}
		out[c] = append(out[c], coverage.Interval{Start: fromMS(a), End: fromMS(b)})
	}
	return out, rows.Err()
}

// Samples returns a session's quality samples, by time.
func (s *Store) Samples(ctx context.Context, session string) ([]coverage.Sample, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT classroom, at, layer, width, height, bitrate_kbps, fraction_lost, jitter_ms,
		rtt_ms, nacks, plis FROM sample WHERE session_id = ? ORDER BY at`, session)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []coverage.Sample
	for rows.Next() {
		var sm coverage.Sample
		var at, nacks, plis int64
		if err := rows.Scan(&sm.Classroom, &at, &sm.Layer, &sm.Width, &sm.Height, &sm.BitrateKbps, &sm.FractionLost,
			&sm.JitterMs, &sm.RTTMs, &nacks, &plis); err != nil {
			return nil, err
		}
		sm.At, sm.NACKs, sm.PLIs = fromMS(at), uint64(nacks), uint64(plis)
		out = append(out, sm)
	}
	return out, rows.Err()
}

// AddCalledOn records that a classroom was called on.
func (s *Store) AddCalledOn(ctx context.Context, session, classroom, by string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO called_on (session_id, classroom, at, by_identity) VALUES (?, ?, ?, ?)`,
		session, classroom, ms(at), by)
	return err
}

// CalledOn counts the call-ons of each classroom in a session.
func (s *Store) CalledOn(ctx context.Context, session string) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT classroom, COUNT(*) FROM called_on WHERE session_id = ? GROUP BY classroom`, session)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var c string
		var n int
		if err := rows.Scan(&c, &n); err != nil {
			return nil, err
		}
		out[c] = n
	}
	return out, rows.Err()
}

// ErrFinalized is returned when a session already has a record.
var errFinalized = errors.New("store: session already finalized")

// IsFinalized reports whether err says the session already had a record.
func IsFinalized(err error) bool { return errors.Is(err, errFinalized) }

// Finalize stores a session record and its attendance rows, and runs also (e.g. enqueueing
// the record in the outbox) in the same transaction. A session is finalized once: a second
// call returns an error for which IsFinalized is true and changes nothing.
func (s *Store) Finalize(ctx context.Context, rec *coverage.SessionRecord, also func(tx *sql.Tx) error) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return s.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO record (session_id, start_at, finalized_at, data) VALUES (?, ?, ?, ?)
			ON CONFLICT (session_id) DO NOTHING`, rec.SessionID, ms(rec.ScheduledStart), ms(rec.FinalizedAt), string(data))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return errFinalized
		}
		for _, a := range rec.Attendances() {
			b, err := json.Marshal(a)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO attendance (session_id, classroom, data, start_at) VALUES (?, ?, ?, ?)`,
				a.SessionID, a.Classroom, string(b), ms(a.Start)); err != nil {
				return err
			}
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
}

// FinalizedSessions returns the IDs of sessions that have a record.
func (s *Store) FinalizedSessions(ctx context.Context) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT session_id FROM record`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}

// Record returns the stored record of a session, or nil.
func (s *Store) Record(ctx context.Context, session string) (json.RawMessage, error) {
	var data string
	err := s.db.QueryRowContext(ctx, `SELECT data FROM record WHERE session_id = ?`, session).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return json.RawMessage(data), err
}

// Records returns the records of sessions scheduled to start in [from, to), by start.
func (s *Store) Records(ctx context.Context, from, to time.Time, limit int) ([]json.RawMessage, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM record WHERE start_at >= ? AND start_at < ? ORDER BY start_at, session_id LIMIT ?`,
		bound(from, 0), bound(to, 1<<62), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []json.RawMessage{}
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		out = append(out, json.RawMessage(data))
	}
	return out, rows.Err()
}

func bound(t time.Time, def int64) int64 {
	if t.IsZero() {
		return def
	}
	return ms(t)
}

// Attendance returns the attendance rows of sessions starting in [from, to).
func (s *Store) Attendance(ctx context.Context, from, to time.Time) ([]coverage.Attendance, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM attendance WHERE start_at >= ? AND start_at < ?`,
		bound(from, 0), bound(to, 1<<62))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []coverage.Attendance
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		var a coverage.Attendance
		if err := json.Unmarshal([]byte(data), &a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
