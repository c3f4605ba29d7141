package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/classroom/coverage"
)

func TestConnectionsAreIdempotentAndRecovered(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 9, 1, 8, 0, 0, 0, time.UTC)
	c := Connection{Session: "S", ParticipantSID: "PA_1", Classroom: "T1", Identity: "T1", Role: "teaching_point", JoinedAt: t0}
	for range 2 { // a repeated join event is stored once
		if err := s.OpenConnection(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	c2 := c
	c2.ParticipantSID, c2.JoinedAt = "PA_2", t0.Add(time.Minute)
	_ = s.OpenConnection(ctx, c2)
	if err := s.CloseConnection(ctx, "S", "PA_2", t0.Add(5*time.Minute), "CLIENT_INITIATED"); err != nil {
		t.Fatal(err)
	}
	// A second leave does not move the end.
	_ = s.CloseConnection(ctx, "S", "PA_2", t0.Add(9*time.Minute), "again")
	if err := s.WriteTick(ctx, &Tick{At: t0.Add(7 * time.Minute), Alive: [][2]string{{"S", "PA_1"}, {"S", "PA_2"}}}); err != nil {
		t.Fatal(err)
	}
	// kill -9 here: reopen and recover.
	_ = s.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	n, err := s.RecoverOpen(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RecoverOpen = %d, %v", n, err)
	}
	conns, err := s.Connections(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != 2 || !conns[0].LeftAt.Equal(t0.Add(7*time.Minute)) || !conns[1].LeftAt.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("connections %+v", conns)
	}
}

func TestFinalizeOnce(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	rec := &coverage.SessionRecord{SessionID: "S", ScheduledStart: time.Unix(1000, 0), FinalizedAt: time.Unix(5000, 0),
		Receivers: []coverage.ReceiverRecord{{Classroom: "T1", Valid: true}}}
	calls := 0
	also := func(*sql.Tx) error { calls++; return nil }
	if err := s.Finalize(ctx, rec, also); err != nil {
		t.Fatal(err)
	}
	if err := s.Finalize(ctx, rec, also); !IsFinalized(err) {
		t.Fatalf("second Finalize = %v", err)
	}
	if calls != 1 {
		t.Errorf("also ran %d times", calls)
	}
	rows, err := s.Attendance(ctx, time.Time{}, time.Time{})
	if err != nil || len(rows) != 1 || !rows[0].Valid {
		t.Errorf("attendance %+v %v", rows, err)
	}
}
