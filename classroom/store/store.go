// Package store keeps the three-classrooms state in an embedded SQLite database (pure Go,
// modernc.org/sqlite) in WAL mode with full synchronous commits: the dataset, connection
// intervals, video delivery spans, quality samples, call-on events, finalized session records
// with their attendance rows, and the audit log. Every change is one transaction, so a crash
// (kill -9) loses at most what was not yet committed and never leaves a half-applied import
// or a record without its attendance rows.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/sanke-edu/sanke/classroom/model"
)

// Store is the database. Safe for concurrent use.
type Store struct {
	db *sql.DB
}

const schema = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entity (
	kind TEXT NOT NULL, id TEXT NOT NULL, pos INTEGER NOT NULL, data TEXT NOT NULL,
	PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS connection (
	session_id TEXT NOT NULL, participant_sid TEXT NOT NULL, classroom TEXT NOT NULL,
	identity TEXT NOT NULL, role TEXT NOT NULL, joined_at INTEGER NOT NULL,
	left_at INTEGER, last_seen INTEGER, closed_by TEXT,
	PRIMARY KEY (session_id, participant_sid));
CREATE INDEX IF NOT EXISTS connection_open ON connection (left_at) WHERE left_at IS NULL;
CREATE TABLE IF NOT EXISTS video_run (
	id INTEGER PRIMARY KEY, session_id TEXT NOT NULL, classroom TEXT NOT NULL,
	start_at INTEGER NOT NULL, end_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS video_run_session ON video_run (session_id);
CREATE TABLE IF NOT EXISTS sample (
	session_id TEXT NOT NULL, classroom TEXT NOT NULL, at INTEGER NOT NULL,
	layer INTEGER NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
	bitrate_kbps REAL NOT NULL, fraction_lost REAL NOT NULL, jitter_ms REAL NOT NULL,
	rtt_ms REAL NOT NULL, nacks INTEGER NOT NULL, plis INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sample_session ON sample (session_id);
CREATE TABLE IF NOT EXISTS called_on (
	session_id TEXT NOT NULL, classroom TEXT NOT NULL, at INTEGER NOT NULL, by_identity TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS called_on_session ON called_on (session_id);
CREATE TABLE IF NOT EXISTS record (
	session_id TEXT PRIMARY KEY, start_at INTEGER NOT NULL, finalized_at INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS record_start ON record (start_at);
CREATE TABLE IF NOT EXISTS attendance (
	session_id TEXT NOT NULL, classroom TEXT NOT NULL, data TEXT NOT NULL, start_at INTEGER NOT NULL,
	PRIMARY KEY (session_id, classroom));
CREATE INDEX IF NOT EXISTS attendance_start ON attendance (start_at);
CREATE TABLE IF NOT EXISTS audit (
	id INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
	session_id TEXT NOT NULL, room TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
CREATE TABLE IF NOT EXISTS account_epoch (account TEXT PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS signin_session (
	id TEXT PRIMARY KEY, account TEXT NOT NULL, expires INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS signin_session_account ON signin_session (account, expires);
CREATE INDEX IF NOT EXISTS signin_session_expires ON signin_session (expires);
`

// Open opens (creating it if needed) the database file at path.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// One connection: SQLite serializes writers anyway, and this avoids SQLITE_BUSY between
	// our own goroutines. Callers never nest a query inside a transaction.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: creating schema in %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		_ = db.Close()
		return nil, fmt.Errorf("store: %s: WAL mode unavailable (%q, %v)", path, mode, err)
	}
	return &Store{db: db}, nil
}

// DB returns the database, for packages that keep their own tables in it (the outbox).
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Tx runs fn in a transaction, committed when fn returns nil.
func (s *Store) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v) }

// --- dataset ---

// LoadDataset reads the stored dataset (empty when none was saved).
func (s *Store) LoadDataset(ctx context.Context) (*model.Dataset, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, data FROM entity ORDER BY kind, pos`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	d := &model.Dataset{}
	for rows.Next() {
		var kind, data string
		if err := rows.Scan(&kind, &data); err != nil {
			return nil, err
		}
		var target any
		switch model.Kind(kind) {
		case model.KindRegions:
			target = grow(&d.Regions)
		case model.KindSchools:
			target = grow(&d.Schools)
		case model.KindClassrooms:
			target = grow(&d.Classrooms)
		case model.KindPairings:
			target = grow(&d.Pairings)
		case model.KindTerms:
			target = grow(&d.Terms)
		case model.KindSessions:
			target = grow(&d.Sessions)
		case model.KindAccounts:
			target = grow(&d.Accounts)
		default:
			return nil, fmt.Errorf("store: unknown entity kind %q", kind)
		}
		if err := json.Unmarshal([]byte(data), target); err != nil {
			return nil, fmt.Errorf("store: %s entity: %w", kind, err)
		}
	}
	return d, rows.Err()
}

// grow appends a zero element to *s and returns a pointer to it, to decode into.
func grow[T any](s *[]T) *T {
	*s = append(*s, *new(T))
	return &(*s)[len(*s)-1]
}

// entityRows flattens a dataset to (kind, id) -> JSON, keeping positions.
func entityRows(d *model.Dataset) (map[[2]string]string, map[[2]string]int, error) {
	data := map[[2]string]string{}
	pos := map[[2]string]int{}
	add := func(kind model.Kind, id string, i int, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		k := [2]string{string(kind), id}
		data[k], pos[k] = string(b), i
		return nil
	}
	var err error
	for i, e := range d.Regions {
		err = errors.Join(err, add(model.KindRegions, e.Code, i, e))
	}
	for i, e := range d.Schools {
		err = errors.Join(err, add(model.KindSchools, e.ID, i, e))
	}
	for i, e := range d.Classrooms {
		err = errors.Join(err, add(model.KindClassrooms, e.ID, i, e))
	}
	for i, e := range d.Pairings {
		err = errors.Join(err, add(model.KindPairings, e.ID, i, e))
	}
	for i, e := range d.Terms {
		err = errors.Join(err, add(model.KindTerms, e.ID, i, e))
	}
	for i, e := range d.Sessions {
		err = errors.Join(err, add(model.KindSessions, e.ID, i, e))
	}
	for i, e := range d.Accounts {
		e.Password = "" // never stored
		err = errors.Join(err, add(model.KindAccounts, e.ID, i, e))
	}
	return data, pos, err
}

// SaveDataset replaces the stored dataset with d in one transaction, writing only what
// changed, and runs also (when not nil) in the same transaction. d must be validated and its
// passwords hashed.
func (s *Store) SaveDataset(ctx context.Context, d *model.Dataset, also func(tx *sql.Tx) error) error {
	want, pos, err := entityRows(d)
	if err != nil {
		return err
	}
	return s.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT kind, id, pos, data FROM entity`)
		if err != nil {
			return err
		}
		have := map[[2]string]string{}
		havePos := map[[2]string]int{}
		for rows.Next() {
			var k [2]string
			var p int
			var data string
			if err := rows.Scan(&k[0], &k[1], &p, &data); err != nil {
				rows.Close()
				return err
			}
			have[k], havePos[k] = data, p
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for k := range have {
			if _, ok := want[k]; !ok {
				if _, err := tx.ExecContext(ctx, `DELETE FROM entity WHERE kind = ? AND id = ?`, k[0], k[1]); err != nil {
					return err
				}
			}
		}
		for k, data := range want {
			if old, ok := have[k]; ok && old == data && havePos[k] == pos[k] {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO entity (kind, id, pos, data) VALUES (?, ?, ?, ?)
				ON CONFLICT (kind, id) DO UPDATE SET pos = excluded.pos, data = excluded.data`,
				k[0], k[1], pos[k], data); err != nil {
				return err
			}
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
}

// --- account epochs ---

// AccountEpochs returns, per account, when the tokens issued to it were last revoked (its
// password changed, it was disabled or deleted), in Unix milliseconds. One row per account
// ever revoked: bounded by the dataset's changes.
func (s *Store) AccountEpochs(ctx context.Context) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT account, at FROM account_epoch`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			return nil, err
		}
		out[id] = at
	}
	return out, rows.Err()
}

// SetAccountEpoch records inside tx that the tokens issued to account before at are revoked.
func SetAccountEpoch(ctx context.Context, tx *sql.Tx, account string, at int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO account_epoch (account, at) VALUES (?, ?)
		ON CONFLICT (account) DO UPDATE SET at = excluded.at`, account, at)
	return err
}

// --- meta ---

// Meta returns a stored setting ("" when unset).
func (s *Store) Meta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// SetMeta stores a setting inside tx.
func SetMeta(ctx context.Context, tx *sql.Tx, key, value string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}

// --- audit ---

// AuditEntry is one line of the audit log (supervisor visits, token issuance, changes to the
// dataset, call-ons).
type AuditEntry struct {
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Session string    `json:"session,omitempty"`
	Room    string    `json:"room,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}

// Audit appends an entry to the audit log.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit (at, actor, action, session_id, room, detail) VALUES (?, ?, ?, ?, ?, ?)`,
		ms(e.At), e.Actor, e.Action, e.Session, e.Room, e.Detail)
	return err
}

// AuditLog returns the entries with from <= at < to (zero bounds: unbounded), oldest first,
// at most limit.
func (s *Store) AuditLog(ctx context.Context, from, to time.Time, action string, limit int) ([]AuditEntry, error) {
	lo, hi := int64(0), int64(1<<62)
	if !from.IsZero() {
		lo = ms(from)
	}
	if !to.IsZero() {
		hi = ms(to)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT at, actor, action, session_id, room, detail FROM audit
		WHERE at >= ? AND at < ? AND (? = '' OR action = ?) ORDER BY id LIMIT ?`, lo, hi, action, action, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&at, &e.Actor, &e.Action, &e.Session, &e.Room, &e.Detail); err != nil {
			return nil, err
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// --- sign-ins ---

// AddSignIn records a sign-in (id, the account, when it expires) and forgets, in the same
// transaction, the sign-ins that expired by now and the account's oldest beyond
// maxPerAccount: the table never holds more than maxPerAccount sign-ins of one account.
func (s *Store) AddSignIn(ctx context.Context, id, account string, expires, now time.Time, maxPerAccount int) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM signin_session WHERE expires <= ?`, ms(now)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO signin_session (id, account, expires) VALUES (?, ?, ?)`, id, account, ms(expires)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM signin_session WHERE account = ? AND id NOT IN
			(SELECT id FROM signin_session WHERE account = ? ORDER BY expires DESC, rowid DESC LIMIT ?)`, account, account, maxPerAccount)
		return err
	})
}

// SignInLive reports whether a sign-in is recorded and not expired at now.
func (s *Store) SignInLive(ctx context.Context, id string, now time.Time) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM signin_session WHERE id = ? AND expires > ?`, id, ms(now)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// EndSignIn forgets a sign-in (logout); it reports whether there was one.
func (s *Store) EndSignIn(ctx context.Context, id string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM signin_session WHERE id = ?`, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// PruneSignIns forgets the sign-ins expired at now.
func (s *Store) PruneSignIns(ctx context.Context, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM signin_session WHERE expires <= ?`, ms(now))
	return err
}
