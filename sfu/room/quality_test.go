package room

import (
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
)

func TestScoreQuality(t *testing.T) {
	tests := []struct {
		name   string
		loss   float64
		rtt    time.Duration
		jitter time.Duration
		want   livekit.ConnectionQuality
	}{
		{"clean loopback", 0, time.Millisecond, time.Millisecond, livekit.ConnectionQuality_EXCELLENT},
		{"1% loss", 0.01, 50 * time.Millisecond, 10 * time.Millisecond, livekit.ConnectionQuality_EXCELLENT},
		{"5% loss", 0.05, 50 * time.Millisecond, 10 * time.Millisecond, livekit.ConnectionQuality_GOOD},
		{"slow satellite", 0, 600 * time.Millisecond, 10 * time.Millisecond, livekit.ConnectionQuality_GOOD},
		{"video bursts", 0, 50 * time.Millisecond, 50 * time.Millisecond, livekit.ConnectionQuality_EXCELLENT},
		{"jittery", 0, 50 * time.Millisecond, 120 * time.Millisecond, livekit.ConnectionQuality_GOOD},
		{"10% loss", 0.10, 50 * time.Millisecond, 10 * time.Millisecond, livekit.ConnectionQuality_POOR},
		{"1s rtt", 0, time.Second, 10 * time.Millisecond, livekit.ConnectionQuality_POOR},
		{"everything lost", 1, time.Second, time.Second, livekit.ConnectionQuality_POOR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, score := scoreQuality(tt.loss, tt.rtt, tt.jitter)
			if q != tt.want {
				t.Errorf("quality %v, want %v", q, tt.want)
			}
			if score < 1 || score > 5 {
				t.Errorf("score %v out of [1,5]", score)
			}
		})
	}
}

func TestIdleExpiredIgnoresHidden(t *testing.T) {
	now := time.Now()
	r := &Room{
		info:         &livekit.Room{CreationTimeMs: now.Add(-time.Hour).UnixMilli(), EmptyTimeout: 60, DepartureTimeout: 20},
		participants: map[string]*Participant{},
	}
	if !r.idleExpired(now) {
		t.Error("a room nobody joined for an hour should expire (empty timeout)")
	}
	r.participants["recorder"] = &Participant{hidden: true}
	if !r.idleExpired(now) {
		t.Error("a hidden recorder alone should not keep the room open")
	}
	r.participants["teacher"] = &Participant{}
	if r.idleExpired(now) {
		t.Error("a room with a visible participant must not expire")
	}
	delete(r.participants, "teacher")
	r.everJoined, r.lastLeft = true, now.Add(-10*time.Second)
	if r.idleExpired(now) {
		t.Error("departure timeout (20 s) not reached yet")
	}
	if !r.idleExpired(now.Add(15 * time.Second)) {
		t.Error("departure timeout passed: the room should close")
	}
}
