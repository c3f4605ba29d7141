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

// TestRetryUntilDelivered: the platform fails twice, then accepts; a restart in between
// (a new Outbox on the same database) keeps the message.
func TestRetryUntilDelivered(t *testing.T) {
	var mu sync.Mutex
	var calls int
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if err := Verify("k", r.Header.Get(HeaderSignature), body, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
		if calls <= 2 {
			http.Error(w, "busy", http.StatusInternalServerError)
			return
		}
		got = append(got, r.Header.Get(HeaderIdempotencyKey)+" "+r.Header.Get(HeaderEvent)+" "+string(body))
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "o.db")
	db := openDB(t, path)
	cfg := Config{URL: srv.URL, Secret: "k", RetryMin: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond}
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { o.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := calls
		mu.Unlock()
		if n >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	_ = db.Close()

	// "Restart".
	db = openDB(t, path)
	defer func() {
		if err := db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	o, err = New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go o.Run(ctx)
	enqueue(t, db, o, Message{Key: "k2", Event: "e", Body: []byte(`{"n":2}`)})
	deadline = time.Now().Add(10 * time.Second)
	for {
		st, err := o.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending == 0 && st.Delivered == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != `k1 e {"n":1}` && got[1] != `k1 e {"n":1}` {
		t.Errorf("received %q after %d calls", got, calls)
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
