package e2e

import (
	"testing"

	"github.com/livekit/protocol/livekit"

	tc "github.com/sanke-edu/sanke/test/testclient"
)

// TestLeaveReasonSeenByOthers checks the reason the others are given when a participant
// leaves: the SDKs read it from the DISCONNECTED ParticipantInfo's disconnect_reason (the Go
// SDK's RemoteParticipant.DisconnectReason()), as LiveKit servers fill it in.
//   - bob is removed with RemoveParticipant: alice and carol see PARTICIPANT_REMOVED;
//   - carol leaves by herself: alice sees CLIENT_INITIATED.
func TestLeaveReasonSeenByOthers(t *testing.T) {
	srv := startServer(t)
	target := srv.Target()
	room := roomName(t, "leave")
	alice := tc.Join(t, target, room, "alice", nil)
	bob := tc.Join(t, target, room, "bob", nil)
	carol := tc.Join(t, target, room, "carol", nil)
	alice.WaitForEvent(eventWait, tc.EventParticipantConnected, "carol")

	if _, err := target.RoomClient().RemoveParticipant(ctxTimeout(t), &livekit.RoomParticipantIdentity{Room: room, Identity: "bob"}); err != nil {
		t.Fatal(err)
	}
	waitDisconnected(t, bob, livekit.DisconnectReason_PARTICIPANT_REMOVED)
	for _, c := range []*tc.Client{alice, carol} {
		if ev := c.WaitForEvent(eventWait, tc.EventParticipantDisconnected, "bob"); ev.Detail != livekit.DisconnectReason_PARTICIPANT_REMOVED.String() {
			t.Errorf("%s saw bob (removed by the Room API) leave with reason %s, want PARTICIPANT_REMOVED", c.Identity, ev.Detail)
		}
	}
	carol.Disconnect()
	if ev := alice.WaitForEvent(eventWait, tc.EventParticipantDisconnected, "carol"); ev.Detail != livekit.DisconnectReason_CLIENT_INITIATED.String() {
		t.Errorf("alice saw carol (who left) leave with reason %s, want CLIENT_INITIATED", ev.Detail)
	}
}
