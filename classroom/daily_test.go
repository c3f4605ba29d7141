package classroom

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/classroom/outbox"
	"github.com/sanke-edu/sanke/internal/rooms"
	"github.com/sanke-edu/sanke/sfu/room"
)

// noRooms is a room layer without rooms.
type noRooms struct{}

func (noRooms) UpdateParticipant(context.Context, *livekit.UpdateParticipantRequest) (*livekit.ParticipantInfo, error) {
	return nil, rooms.ErrParticipantNotFound
}
func (noRooms) GetParticipant(context.Context, string, string) (*livekit.ParticipantInfo, error) {
	return nil, rooms.ErrParticipantNotFound
}
func (noRooms) ListParticipants(context.Context, string) ([]*livekit.ParticipantInfo, error) {
	return nil, rooms.ErrRoomNotFound
}
func (noRooms) UpdateRoomMetadata(context.Context, string, string) (*livekit.Room, error) {
	return nil, rooms.ErrRoomNotFound
}
func (noRooms) CreateRoom(context.Context, *livekit.CreateRoomRequest) (*livekit.Room, error) {
	return nil, rooms.ErrServerShuttingDown
}
func (noRooms) RemoveParticipant(context.Context, string, string) error {
	return rooms.ErrParticipantNotFound
}
func (noRooms) Stats(string) ([]room.ParticipantStats, error) { return nil, rooms.ErrRoomNotFound }
func (noRooms) RoomNames() []string                           { return nil }

type setClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *setClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *setClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// TestRecordsAndDailyReportPushed: sessions nobody attended still get a record (all
// receivers invalid), and after the configured hour the previous day's aggregate report is
// pushed once.
func TestRecordsAndDailyReportPushed(t *testing.T) {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	var mu sync.Mutex
	got := map[string][]byte{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := outbox.Verify("sec", r.Header.Get(outbox.HeaderSignature), body, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
		mu.Lock()
		got[r.Header.Get(outbox.HeaderIdempotencyKey)] = body
		mu.Unlock()
	}))
	defer srv.Close()
	clock := &setClock{t: time.Date(2025, 8, 31, 12, 0, 0, 0, loc)}
	s, err := New(Config{
		DBPath: filepath.Join(t.TempDir(), "c.db"), Datasets: []string{"sample/sample.yaml"}, Location: loc,
		APIKey: "k", APISecret: "secret", Keys: auth.NewSimpleKeyProvider("k", "secret"), ValidShare: 0.8,
		SampleInterval: time.Second, FinalizeDelay: 5 * time.Minute, RoutineMinPerWeek: 1, RoutineWeeks: 1,
		Platform:        outbox.Config{URL: srv.URL, Secret: "sec", RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond},
		DailyReportHour: 1, PasswordCost: 4,
	}, noRooms{})
	if err != nil {
		t.Fatal(err)
	}
	s.SetClock(clock)
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	clock.set(time.Date(2025, 9, 2, 0, 30, 0, 0, loc)) // S1 and S2 are over; before 01:00
	s.Tick(ctx)
	clock.set(time.Date(2025, 9, 2, 1, 30, 0, 0, loc))
	s.Tick(ctx)
	s.Tick(ctx)
	want := []string{"session-record:S1", "session-record:S2", "daily-report:2025-08-31", "daily-report:2025-09-01"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d messages", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, k := range want {
		if got[k] == nil {
			t.Errorf("missing %s (got %d messages)", k, len(got))
		}
	}
	var rep DailyReport
	if err := json.Unmarshal(got["daily-report:2025-09-01"], &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Date != "2025-09-01" || rep.Report.Total.Scheduled != 4 || rep.Report.Total.Valid != 0 || len(rep.Report.Groups) != 2 {
		t.Errorf("daily report %+v", rep.Report.Total)
	}
	var rec struct {
		SessionID string `json:"session_id"`
		Receivers []struct {
			Valid bool
		}
	}
	_ = json.Unmarshal(got["session-record:S1"], &rec)
	if rec.SessionID != "S1" || len(rec.Receivers) != 2 || rec.Receivers[0].Valid {
		t.Errorf("record %+v", rec)
	}
	if len(got) != 4 {
		t.Errorf("unexpected messages: %d", len(got))
	}
}
