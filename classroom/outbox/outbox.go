// Package outbox delivers messages to the education platform at least once. A message is
// written to a table of the SQLite database in the same transaction as the data it reports
// (a finalized session record, a daily report), so it exists exactly when that data does;
// a dispatcher then POSTs it until the platform answers 2xx, retrying with exponential
// backoff for as long as it takes (hours of platform downtime, restarts of Sanke).
//
// Every POST carries:
//
//	Content-Type: application/json
//	Idempotency-Key: <key>            the same for every attempt; deduplicate on it
//	X-Sanke-Event: <event>            e.g. session.record, report.daily
//	X-Sanke-Delivery: <id>.<attempt>
//	X-Sanke-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
//
// The platform verifies the signature with [Verify] (or its own implementation of the same
// two lines) and must answer 2xx once it has stored the message; 409 Conflict is taken to
// mean "already stored" and also ends the retries.
package outbox

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// Header names.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderEvent          = "X-Sanke-Event"
	HeaderDelivery       = "X-Sanke-Delivery"
	HeaderSignature      = "X-Sanke-Signature"
)

const schema = `
CREATE TABLE IF NOT EXISTS outbox (
	id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, event TEXT NOT NULL, body BLOB NOT NULL,
	created_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL,
	last_error TEXT NOT NULL DEFAULT '', delivered_at INTEGER);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_at) WHERE delivered_at IS NULL;
`

// Config configures delivery.
type Config struct {
	// URL receives the POSTs. Empty: messages are kept but not sent.
	URL string
	// Secret signs the messages (HMAC-SHA256).
	Secret string
	// RetryMin is the first retry delay; it doubles up to RetryMax.
	RetryMin, RetryMax time.Duration
	// Timeout bounds one POST (default 15s).
	Timeout time.Duration
	// Client sends the requests (default: a client with Timeout).
	Client *http.Client
	Logger *slog.Logger
	// Clock tells the time and schedules the retries (default: the system clock; tests
	// drive a fake one through hours of retries at once).
	Clock clockwork.Clock
}

// Outbox is the durable queue and its dispatcher.
type Outbox struct {
	db     *sql.DB
	cfg    Config
	client *http.Client
	logger *slog.Logger
	clock  clockwork.Clock
	wake   chan struct{}

	mu        sync.Mutex
	delivered uint64 // since start
	failures  uint64 // since start
}

// Message is something to deliver.
type Message struct {
	// Key identifies the message for the platform's deduplication; a second message with
	// the same key is ignored by Enqueue.
	Key   string
	Event string
	Body  []byte
}

// New creates the outbox table in db if needed.
func New(db *sql.DB, cfg Config) (*Outbox, error) {
	if _, err := db.Exec(schema); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = cfg.RetryMin
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: cfg.Timeout}
	}
	return &Outbox{db: db, cfg: cfg, client: client, logger: cfg.Logger, clock: cfg.Clock, wake: make(chan struct{}, 1)}, nil
}

// Enabled reports whether messages are sent (a URL is configured).
func (o *Outbox) Enabled() bool { return o.cfg.URL != "" }

// Enqueue adds a message inside tx (the transaction that stores what it reports) and
// reports whether it was new. Call Notify after the commit to send it at once.
func (o *Outbox) Enqueue(ctx context.Context, tx *sql.Tx, m Message) (bool, error) {
	now := o.clock.Now().UnixMilli()
	res, err := tx.ExecContext(ctx, `INSERT INTO outbox (key, event, body, created_at, next_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (key) DO NOTHING`, m.Key, m.Event, m.Body, now, now)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// Notify wakes the dispatcher.
func (o *Outbox) Notify() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Sign returns the X-Sanke-Signature value for body at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret, ts string, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte("."))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// Verify checks an X-Sanke-Signature header against body. tolerance bounds the age of the
// signature (replay protection); 0 skips that check.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	if ts == "" || sig == "" {
		return errors.New("signature header lacks t= or v1=")
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, ts, body))) {
		return errors.New("signature mismatch")
	}
	if tolerance > 0 {
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return errors.New("bad timestamp")
		}
		if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
			return fmt.Errorf("signature timestamp is %s away", d)
		}
	}
	return nil
}

// item is a pending message.
type item struct {
	id       int64
	key      string
	event    string
	body     []byte
	attempts int
}

// Run sends due messages until ctx ends.
func (o *Outbox) Run(ctx context.Context) {
	if !o.Enabled() {
		return
	}
	for {
		items, next, err := o.due(ctx, 16)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			o.logger.Error("outbox: reading pending messages", "err", err)
			next = o.clock.Now().Add(5 * time.Second)
		}
		for _, it := range items {
			if ctx.Err() != nil {
				return
			}
			o.deliver(ctx, it)
		}
		if len(items) > 0 {
			continue
		}
		wait := o.clock.Until(next)
		if next.IsZero() || wait > 30*time.Second {
			wait = 30 * time.Second
		}
		if wait < 0 {
			wait = 0
		}
		t := o.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-o.wake:
		case <-t.Chan():
		}
		t.Stop()
	}
}

// due returns messages whose time has come and the time of the next one.
func (o *Outbox) due(ctx context.Context, limit int) ([]item, time.Time, error) {
	now := o.clock.Now().UnixMilli()
	rows, err := o.db.QueryContext(ctx, `SELECT id, key, event, body, attempts FROM outbox
		WHERE delivered_at IS NULL AND next_at <= ? ORDER BY next_at, id LIMIT ?`, now, limit)
	if err != nil {
		return nil, time.Time{}, err
	}
	var items []item
	for rows.Next() {
		var it item
		if err := rows.Scan(&it.id, &it.key, &it.event, &it.body, &it.attempts); err != nil {
			rows.Close()
			return nil, time.Time{}, err
		}
		items = append(items, it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, err
	}
	var next sql.NullInt64
	if err := o.db.QueryRowContext(ctx, `SELECT MIN(next_at) FROM outbox WHERE delivered_at IS NULL`).Scan(&next); err != nil {
		return nil, time.Time{}, err
	}
	if !next.Valid {
		return items, time.Time{}, nil
	}
	return items, time.UnixMilli(next.Int64), nil
}

// deliver makes one attempt and records its outcome.
func (o *Outbox) deliver(ctx context.Context, it item) {
	attempt := it.attempts + 1
	err := o.post(ctx, it, attempt)
	if ctx.Err() != nil {
		return // shutting down: the attempt does not count
	}
	now := o.clock.Now()
	if err == nil {
		if _, dbErr := o.db.ExecContext(context.WithoutCancel(ctx), `UPDATE outbox SET delivered_at = ?, attempts = ?, last_error = '' WHERE id = ?`,
			now.UnixMilli(), attempt, it.id); dbErr != nil {
			o.logger.Error("outbox: marking delivered", "key", it.key, "err", dbErr)
		}
		o.mu.Lock()
		o.delivered++
		o.mu.Unlock()
		o.logger.Info("outbox: delivered", "key", it.key, "event", it.event, "attempts", attempt)
		return
	}
	delay := o.backoff(attempt)
	if _, dbErr := o.db.ExecContext(context.WithoutCancel(ctx), `UPDATE outbox SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?`,
		attempt, now.Add(delay).UnixMilli(), truncate(err.Error(), 500), it.id); dbErr != nil {
		o.logger.Error("outbox: recording failure", "key", it.key, "err", dbErr)
	}
	o.mu.Lock()
	o.failures++
	o.mu.Unlock()
	o.logger.Warn("outbox: delivery failed, will retry", "key", it.key, "attempt", attempt, "retry_in", delay.Round(time.Millisecond), "err", err)
}

func (o *Outbox) post(ctx context.Context, it item, attempt int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.cfg.URL, bytes.NewReader(it.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Sanke")
	req.Header.Set(HeaderIdempotencyKey, it.key)
	req.Header.Set(HeaderEvent, it.event)
	req.Header.Set(HeaderDelivery, fmt.Sprintf("%d.%d", it.id, attempt))
	req.Header.Set(HeaderSignature, Sign(o.cfg.Secret, o.clock.Now(), it.body))
	resp, err := o.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusConflict {
		return nil
	}
	return fmt.Errorf("platform answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
}

// backoff returns the delay before the next attempt: RetryMin doubled per failed attempt up
// to RetryMax, with ±20% jitter so that many messages do not retry in lockstep.
func (o *Outbox) backoff(attempt int) time.Duration {
	d := o.cfg.RetryMin
	for i := 1; i < attempt && d < o.cfg.RetryMax; i++ {
		d *= 2
	}
	if d > o.cfg.RetryMax {
		d = o.cfg.RetryMax
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Stats describes the backlog.
type Stats struct {
	Pending       int        `json:"pending"`
	Delivered     int        `json:"delivered"`
	OldestPending *time.Time `json:"oldest_pending,omitempty"`
	// DeliveredSinceStart and FailuresSinceStart count attempts of this process.
	DeliveredSinceStart uint64 `json:"delivered_since_start"`
	FailuresSinceStart  uint64 `json:"failures_since_start"`
	LastError           string `json:"last_error,omitempty"`
}

// Stats returns the backlog.
func (o *Outbox) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	var oldest sql.NullInt64
	if err := o.db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM outbox WHERE delivered_at IS NULL`).Scan(&st.Pending, &oldest); err != nil {
		return st, err
	}
	if oldest.Valid {
		t := time.UnixMilli(oldest.Int64)
		st.OldestPending = &t
	}
	if err := o.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE delivered_at IS NOT NULL`).Scan(&st.Delivered); err != nil {
		return st, err
	}
	var lastErr sql.NullString
	err := o.db.QueryRowContext(ctx, `SELECT last_error FROM outbox WHERE delivered_at IS NULL AND last_error != '' ORDER BY id DESC LIMIT 1`).Scan(&lastErr)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return st, err
	}
	st.LastError = lastErr.String
	o.mu.Lock()
	st.DeliveredSinceStart, st.FailuresSinceStart = o.delivered, o.failures
	o.mu.Unlock()
	return st, nil
}
