package classroom_test

import (
	"context"
	"testing"
	"time"
)

// TestRefusedLeaveIsWrittenAtItsTime: when the database refuses a leave (a full disk), the
// teaching point is not counted as present until its room closes: the leave is written again,
// at the moment it happened, as soon as the database takes writes.
func TestRefusedLeaveIsWrittenAtItsTime(t *testing.T) {
	ts := startClass(t, "S-LEAVE")
	ctx := context.Background()
	room := "class-S-LEAVE"
	ts.connect(mintToken(t, "M1", grantFor(room), nil)) // the teacher keeps the class going
	point := ts.connect(mintToken(t, "T1", grantFor(room), nil))
	ts.waitConn("S-LEAVE", "T1", true)

	db := ts.svc.Store().DB()
	openLeft := func() (joined int, left int) {
		t.Helper()
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(left_at) FROM connection WHERE session_id = 'S-LEAVE' AND identity = 'T1'`).
			Scan(&joined, &left); err != nil {
			t.Fatal(err)
		}
		return joined, left
	}
	if j, _ := openLeft(); j != 1 {
		t.Fatalf("T1's join recorded %d times, want 1", j)
	}

	// The database refuses every leave from now on, as a full disk would.
	if _, err := db.ExecContext(ctx, `CREATE TRIGGER refuse_leave BEFORE UPDATE OF left_at ON connection
		WHEN NEW.left_at IS NOT NULL BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`); err != nil {
		t.Fatal(err)
	}
	left := time.Now()
	ts.disconnect(point, room)
	// The leave reaches the service after the room let the participant go: wait until it was
	// refused and kept, not merely until the queue was empty once.
	for deadline := time.Now().Add(15 * time.Second); !ts.svc.PendingFor("S-LEAVE"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("T1's refused leave was never kept to be written again")
		}
		ts.svc.Flush()
	}
	if _, l := openLeft(); l != 0 {
		t.Fatalf("the leave was written although the database refused it")
	}

	// The disk has room again; the next pass writes the leave, with its own time, while the
	// class goes on (the teacher is still in the room).
	if _, err := db.ExecContext(ctx, `DROP TRIGGER refuse_leave`); err != nil {
		t.Fatal(err)
	}
	ts.svc.Tick(ctx)
	var leftAt int64
	if err := db.QueryRowContext(ctx, `SELECT left_at FROM connection WHERE session_id = 'S-LEAVE' AND identity = 'T1'`).Scan(&leftAt); err != nil {
		t.Fatalf("T1's leave is still not written after the database recovered: %v", err)
	}
	got := time.UnixMilli(leftAt)
	if got.Before(left.Add(-time.Second)) || got.After(time.Now()) {
		t.Fatalf("T1 left at %s, written as %s", left.Format(time.RFC3339Nano), got.Format(time.RFC3339Nano))
	}
}
