package room_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/sfu/room"
	tc "github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// subscribers returns the identities subscribed to the track with sid, sorted.
func subscribers(t *testing.T, rooms *room.Manager, roomName, sid string) []string {
	t.Helper()
	stats, err := rooms.Stats(roomName)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ps := range stats {
		for _, s := range ps.Subscriptions {
			if s.TrackSID == sid {
				out = append(out, s.Subscriber)
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestSubscriptionPermissionSparesSupervisorsAndRecorder: a publisher's subscription
// permission chooses which participants see its tracks, but hidden participants (the
// supervisors' 巡课) and the recorder are beyond its reach (red team t20: a teacher's
// allow-list shut both out of its media, and the recording lost it). They keep their
// subscriptions when the permission changes, and ones joining afterwards get subscribed.
func TestSubscriptionPermissionSparesSupervisorsAndRecorder(t *testing.T) {
	files := testmedia.Get(t)
	srv, rooms := startServer(t, nil)
	const roomName = "perm"
	hidden := tc.SubscribeOnlyGrant(roomName)
	hidden.Hidden = true
	recorder := tc.SubscribeOnlyGrant(roomName)
	recorder.Hidden, recorder.Recorder = true, true

	teacher := tc.Join(t, srv.Target, roomName, "teacher", nil)
	pub, err := tc.PublishOpus(teacher.Room, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc.Join(t, srv.Target, roomName, "supervisor", &tc.JoinOptions{Grant: hidden})
	tc.Join(t, srv.Target, roomName, "recorder", &tc.JoinOptions{Grant: recorder})
	tc.Join(t, srv.Target, roomName, "allowed", nil)
	tc.Join(t, srv.Target, roomName, "other", nil)
	all := []string{"allowed", "other", "recorder", "supervisor"}
	tc.Eventually(t, wait, "everyone subscribed to the teacher's microphone", func() (bool, string) {
		got := subscribers(t, rooms, roomName, pub.SID())
		return slices.Equal(got, all), fmt.Sprintf("subscribers %v", got)
	})

	teacher.Room.LocalParticipant.SetSubscriptionPermission(&livekit.SubscriptionPermission{
		TrackPermissions: []*livekit.TrackPermission{{ParticipantIdentity: "allowed", AllTracks: true}},
	})
	spared := []string{"allowed", "recorder", "supervisor"}
	tc.Eventually(t, wait, "only other loses the teacher's microphone", func() (bool, string) {
		got := subscribers(t, rooms, roomName, pub.SID())
		return slices.Equal(got, spared), fmt.Sprintf("subscribers %v, want %v", got, spared)
	})

	tc.Join(t, srv.Target, roomName, "supervisor2", &tc.JoinOptions{Grant: hidden})
	spared = []string{"allowed", "recorder", "supervisor", "supervisor2"}
	tc.Eventually(t, wait, "a supervisor joining later is subscribed", func() (bool, string) {
		got := subscribers(t, rooms, roomName, pub.SID())
		return slices.Equal(got, spared), fmt.Sprintf("subscribers %v, want %v", got, spared)
	})
}
