package room_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/internal/server"
	"github.com/sanke-edu/sanke/sfu/room"
	tc "github.com/sanke-edu/sanke/test/testclient"
)

// TestDuplicateJoinsLeaveOne joins one identity many times at once (red team t14: 8 loops
// with one token left thousands of orphaned participants whose PeerConnections, ICE agents
// and TURN credentials lived on after their room closed). However the joins interleave,
// each one replaces the previous participant: in the end the room holds exactly one, the
// node holds exactly its PeerConnection, and every replaced participant's
// participant_left event fired (which ends its TURN credentials).
func TestDuplicateJoinsLeaveOne(t *testing.T) {
	const loops, joinsPerLoop = 8, 5
	var joined, left atomic.Int32
	srv, rooms := startServer(t, func(s *server.Server) {
		s.Rooms().AddObserver(room.ObserverFunc(func(e room.Event) {
			switch e.Type {
			case room.EventParticipantJoined:
				joined.Add(1)
			case room.EventParticipantLeft:
				left.Add(1)
			}
		}))
	})
	const roomName = "dup"
	token := srv.Target.Token(t, "twin", tc.JoinGrant(roomName))

	var wg sync.WaitGroup
	var accepted atomic.Int32
	errs := make(chan error, loops*joinsPerLoop)
	for range loops {
		wg.Go(func() {
			for range joinsPerLoop {
				c, err := dialSignal(t, srv.Target, token, nil)
				if err != nil {
					errs <- err
					continue
				}
				// The join response, or the connection's end: a later join may replace
				// this one before it is read.
				if c.await("join response", func(m *livekit.SignalResponse) bool { return m.GetJoin() != nil }) != nil {
					accepted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("join refused: %v", err)
	}

	tc.Eventually(t, wait, "one participant and one PeerConnection left", func() (bool, string) {
		ps, err := rooms.ListParticipants(context.Background(), roomName)
		if err != nil {
			return false, err.Error()
		}
		n, pcs := len(ps), rooms.PeerConnections()
		j, l := joined.Load(), left.Load()
		return n == 1 && pcs == 1 && j == l+1,
			fmt.Sprintf("%d participants, %d PeerConnections open, %d joined and %d left events (%d join responses read)",
				n, pcs, j, l, accepted.Load())
	})
	if j := joined.Load(); j != loops*joinsPerLoop {
		t.Errorf("%d participant_joined events for %d joins", j, loops*joinsPerLoop)
	}
}
