package metrics_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/internal/metrics"
	"github.com/sanke-edu/sanke/sfu/room"
)

// TestRoleLabelsBounded checks that participants are labelled by known classroom roles only
// (issue 12 #1): whatever a sanke.role attribute says, /metrics has at most one series per
// known role plus "participant" (no role) and "other" (any other value), so that no chosen
// value can add series.
func TestRoleLabelsBounded(t *testing.T) {
	var ps []room.ParticipantStats
	for i := range 50 {
		ps = append(ps, room.ParticipantStats{Info: &livekit.ParticipantInfo{Identity: fmt.Sprintf("p%d", i),
			Attributes: map[string]string{"sanke.role": fmt.Sprintf("made-up-%d", i)}}})
	}
	ps = append(ps,
		room.ParticipantStats{Info: &livekit.ParticipantInfo{Identity: "M1", Attributes: map[string]string{"sanke.role": "teacher"}}},
		room.ParticipantStats{Info: &livekit.ParticipantInfo{Identity: "S1", Attributes: map[string]string{"sanke.role": "supervisor"}}},
		room.ParticipantStats{Info: &livekit.ParticipantInfo{Identity: "anon"}},
	)
	body := scrape(t, metrics.Handler(metrics.New(&fakeSource{stats: map[string][]room.ParticipantStats{"r": ps}})))
	expect(t, body, `sanke_participants{role="other"} 50`, `sanke_participants{role="teacher"} 1`,
		`sanke_participants{role="supervisor"} 1`, `sanke_participants{role="participant"} 1`)
	if n := strings.Count(body, "\nsanke_participants{"); n != 4 {
		t.Errorf("%d sanke_participants series, want 4:\n%s", n, body)
	}
}
