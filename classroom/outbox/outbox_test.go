package outbox

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	_ "modernc.org/sqlite"
)

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	return db
}

func enqueue(t *testing.T, db *sql.DB, o *Outbox, m Message) bool {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	added, err := o.Enqueue(context.Background(), tx, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	o.Notify()
	return added
}

func TestSignVerify(t *testing.T) {
	now := time.Unix(1756684800, 0)
	sig := Sign("s3cret", now, []byte(`{"a":1}`))
	if err := Verify("s3cret", sig, []byte(`{"a":1}`), now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if Verify("s3cret", sig, []byte(`{"a":2}`), now, 0) == nil || Verify("other", sig, []byte(`{"a":1}`), now, 0) == nil {
		t.Error("tampered body or wrong secret accepted")
	}
	if Verify("s3cret", sig, []byte(`{"a":1}`), now.Add(time.Hour), 5*time.Minute) == nil {
		t.Error("stale signature accepted")
	}
}

// TestRetryOnClock drives the dispatcher with a fake clock through half an hour of platform
// outage: every retry waits its backoff (RetryMin doubled per failure, capped at RetryMax,
// with jitter) and no attempt comes while the dispatcher waits; a restart (a new Outbox on
// the same database) keeps the message and its schedule; once the platform answers, the
// message is delivered, once.
func TestRetryOnClock(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC))
	const failures = 6 // backoffs of 1, 2, 4, 8, 10 and 10 minutes
	type request struct {
		key, event, body string
		at               time.Time
	}
	requests := make(chan request, failures+2)
	var mu sync.Mutex
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := Verify("k", r.Header.Get(HeaderSignature), body, clock.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		requests <- request{r.Header.Get(HeaderIdempotencyKey), r.Header.Get(HeaderEvent), string(body), clock.Now()}
		if n <= failures {
			http.Error(w, "busy", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	cfg := Config{URL: srv.URL, Secret: "k", RetryMin: time.Minute, RetryMax: 10 * time.Minute, Clock: clock}
	path := filepath.Join(t.TempDir(), "o.db")
	db := openDB(t, path)
	o, err := New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !enqueue(t, db, o, Message{Key: "k1", Event: "e", Body: []byte(`{"n":1}`)}) {
		t.Fatal("not added")
	}
	if enqueue(t, db, o, Message{Key: "k1", Event: "e", Body: []byte(`{"n":1}`)}) {
		t.Fatal("duplicate key added")
	}
	// The enqueues left a wake-up for the dispatcher: drop it, or the dispatcher would wait on
	// a first timer, wake, and compute its next timer concurrently with the test's Advance,
	// scheduling it past the time the test moves the clock to (and wait forever).
	select {
	case <-o.wake:
	default:
	}
	run := func(o *Outbox) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { o.Run(ctx); close(done) }()
		return func() { cancel(); <-done }
	}
	stop := run(o)
	defer func() { stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// waiting returns once the dispatcher waits on its timer, having recorded what it did.
	waiting := func() {
		t.Helper()
		if err := clock.BlockUntilContext(ctx, 1); err != nil {
			t.Fatalf("the dispatcher does not wait for its next attempt: %v", err)
		}
	}
	next := func() request {
		t.Helper()
		select {
		case r := <-requests:
			return r
		case <-ctx.Done():
			t.Fatal("no attempt")
			return request{}
		}
	}

	due := clock.Now() // the message is due at once
	for attempt := 1; attempt <= failures; attempt++ {
		if r := next(); r.key != "k1" || r.event != "e" || r.body != `{"n":1}` || !r.at.Equal(due) {
			t.Fatalf("attempt %d: %+v, want k1 at %s", attempt, r, due.Format(time.TimeOnly))
		}
		waiting()
		if attempt == 3 {
			// "Restart".
			stop()
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = openDB(t, path)
			if o, err = New(db, cfg); err != nil {
				t.Fatal(err)
			}
			stop = run(o)
			waiting()
		}
		select {
		case r := <-requests:
			t.Fatalf("an attempt while the dispatcher waits: %+v", r)
		default:
		}
		var attempts int
		var nextAt int64
		if err := db.QueryRow(`SELECT attempts, next_at FROM outbox WHERE key = 'k1'`).Scan(&attempts, &nextAt); err != nil {
			t.Fatal(err)
		}
		delay := time.UnixMilli(nextAt).Sub(clock.Now())
		want := min(cfg.RetryMin<<(attempt-1), cfg.RetryMax)
		if attempts != attempt || delay < want*8/10 || delay > want*12/10 {
			t.Fatalf("after attempt %d: %d attempts recorded, next in %s; want %d, %s ± 20%%", attempt, attempts, delay, attempt, want)
		}
		clock.Advance(delay)
		due = clock.Now()
	}
	if r := next(); r.key != "k1" || !r.at.Equal(due) {
		t.Fatalf("last attempt: %+v, want k1 at %s", r, due.Format(time.TimeOnly))
	}
	waiting() // idle again: the delivery is recorded
	st, err := o.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 0 || st.Delivered != 1 || st.DeliveredSinceStart != 1 || st.FailuresSinceStart != failures-3 {
		t.Errorf("stats after delivery: %+v; want 1 delivered, %d failures since the restart (after attempt 3)", st, failures-3)
	}
	select {
	case r := <-requests:
		t.Errorf("a request after the delivery: %+v", r)
	default:
	}
	stop()
	if err := db.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	o := &Outbox{cfg: Config{RetryMin: time.Second, RetryMax: 10 * time.Second}}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 9: 10 * time.Second} {
		d := o.backoff(attempt)
		if d < want*8/10 || d > want*12/10 {
			t.Errorf("attempt %d: %s, want about %s", attempt, d, want)
		}
	}
}
