package room

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/internal/rooms"
)

// recordingSink keeps what the room sends one participant.
type recordingSink struct {
	mu   sync.Mutex
	msgs []*livekit.SignalResponse
}

func (s *recordingSink) Send(m *livekit.SignalResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	return nil
}

func (s *recordingSink) Close() {}

// reasons counts the request_response reasons received.
func (s *recordingSink) reasons() map[livekit.RequestResponse_Reason]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[livekit.RequestResponse_Reason]int{}
	for _, m := range s.msgs {
		if rr := m.GetRequestResponse(); rr != nil {
			out[rr.GetReason()]++
		}
	}
	return out
}

// testRoom is a room of its own manager, without media.
func testRoom(t *testing.T) *Room {
	t.Helper()
	m := NewManager(&Config{EmptyTimeout: time.Hour, DepartureTimeout: time.Hour}, nil, slog.New(slog.DiscardHandler))
	r, err := m.getOrCreate("r", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.close(livekit.DisconnectReason_ROOM_DELETED) })
	return r
}

// testParticipant puts a participant without PeerConnections in r.
func testParticipant(r *Room, identity string, grant *auth.VideoGrant) (*Participant, *recordingSink) {
	sink := &recordingSink{}
	grant.RoomJoin, grant.Room = true, r.Name()
	p := newParticipant(r, rooms.JoinRequest{RoomName: r.Name(), Identity: identity,
		Grants: &auth.ClaimGrants{Identity: identity, Video: grant}}, nil, sink)
	r.mu.Lock()
	r.participants[p.identity] = p
	r.mu.Unlock()
	return p, sink
}

// TestStateBounded checks the state a client's signal requests leave in its participant
// (issue 12 #3): a participant without grants keeps no pending track and no early settings
// however many requests it sends; one allowed to publish keeps at most MaxTracks pending
// tracks; early settings are kept only for tracks that exist and go with them.
func TestStateBounded(t *testing.T) {
	none := &auth.VideoGrant{}
	none.SetCanPublish(false)
	none.SetCanSubscribe(false)
	none.SetCanPublishData(false)
	r := testRoom(t)
	p, sink := testParticipant(r, "viewer", none)
	for i := range 100 {
		p.handleAddTrack(&livekit.AddTrackRequest{Cid: fmt.Sprintf("c%d", i), Type: livekit.TrackType_VIDEO, Source: livekit.TrackSource_CAMERA})
		sids := make([]string, maxListLength)
		for j := range sids {
			sids[j] = fmt.Sprintf("TR_%d_%d", i, j)
		}
		if err := p.updateTrackSettings(&livekit.UpdateTrackSettings{TrackSids: sids, Quality: livekit.VideoQuality_LOW}); err != nil {
			t.Fatal(err)
		}
	}
	p.mu.Lock()
	pending, early := len(p.pending), len(p.earlySettings)
	p.mu.Unlock()
	if pending != 0 || early != 0 {
		t.Errorf("a participant without grants keeps %d pending tracks and %d early settings, want none", pending, early)
	}
	if n := sink.reasons()[livekit.RequestResponse_NOT_ALLOWED]; n != 100 {
		t.Errorf("%d add_track refusals, want 100", n)
	}

	pub, sink := testParticipant(r, "publisher", &auth.VideoGrant{})
	for i := range 100 {
		pub.handleAddTrack(&livekit.AddTrackRequest{Cid: fmt.Sprintf("c%d", i), Type: livekit.TrackType_AUDIO, Source: livekit.TrackSource_MICROPHONE})
	}
	pub.mu.Lock()
	pending = len(pub.pending)
	pub.mu.Unlock()
	if pending != DefaultMaxTracks {
		t.Errorf("%d pending tracks, want %d", pending, DefaultMaxTracks)
	}
	if n := sink.reasons()[livekit.RequestResponse_LIMIT_EXCEEDED]; n != 100-DefaultMaxTracks {
		t.Errorf("%d LIMIT_EXCEEDED, want %d", n, 100-DefaultMaxTracks)
	}

	// A track that exists: its early settings are kept until it goes.
	track := &PublishedTrack{owner: pub, cid: "c0", info: &livekit.TrackInfo{Sid: "TR_real", Type: livekit.TrackType_VIDEO}}
	pub.mu.Lock()
	pub.published["TR_real"] = track
	pub.mu.Unlock()
	if err := p.updateTrackSettings(&livekit.UpdateTrackSettings{TrackSids: []string{"TR_real", "TR_fake"}, Disabled: true}); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	kept := p.earlySettings["TR_real"]
	early = len(p.earlySettings)
	p.mu.Unlock()
	if early != 1 || !kept.GetDisabled() || len(kept.GetTrackSids()) != 0 {
		t.Errorf("early settings %v (%d), want TR_real's alone, without the message's sids", kept, early)
	}
	pub.mu.Lock()
	delete(pub.published, "TR_real") // it has no receiver to close
	pub.mu.Unlock()
	p.room.unsubscribe(p, "TR_real") // what the room does when a track ends
	p.mu.Lock()
	early = len(p.earlySettings)
	p.mu.Unlock()
	if early != 0 {
		t.Errorf("%d early settings kept after the track went", early)
	}
	if err := p.updateTrackSettings(&livekit.UpdateTrackSettings{TrackSids: make([]string, maxListLength+1)}); err == nil {
		t.Error("track settings naming more than maxListLength tracks accepted")
	}
}

// TestPublishSourcesBounded checks that a permission's source list, which every
// ParticipantInfo carries, is kept without repeats and bounded, whether it comes from a
// token or from an update; and that an update cannot make a participant hidden or a
// recorder.
func TestPublishSourcesBounded(t *testing.T) {
	many := make([]livekit.TrackSource, 100000)
	for i := range many {
		many[i] = livekit.TrackSource(i % 7)
	}
	grant := &auth.VideoGrant{}
	grant.SetCanPublishSources(many)
	p, _ := testParticipant(testRoom(t), "p", grant)
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.permission.CanPublishSources); n > len(livekit.TrackSource_name) {
		t.Errorf("the token's %d sources kept as %d", len(many), n)
	}
	p.setPermissionLocked(&livekit.ParticipantPermission{CanPublish: true, CanPublishSources: many, Hidden: true, Recorder: true}) //nolint:staticcheck // LiveKit protocol: the recorder grant
	if n := len(p.permission.CanPublishSources); n > len(livekit.TrackSource_name) {
		t.Errorf("an update's %d sources kept as %d", len(many), n)
	}
	if !slices.Equal(p.permission.CanPublishSources[:2], []livekit.TrackSource{livekit.TrackSource_UNKNOWN, livekit.TrackSource_CAMERA}) {
		t.Errorf("sources %v, want them in their order", p.permission.CanPublishSources)
	}
	if p.permission.Hidden || p.permission.Recorder { //nolint:staticcheck // LiveKit protocol: the recorder grant
		t.Error("a permission update made the participant hidden or a recorder")
	}
}
