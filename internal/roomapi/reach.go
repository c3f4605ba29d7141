package roomapi

import (
	"context"

	"github.com/livekit/protocol/livekit"
	"github.com/twitchtv/twirp"
)

// participantNotFound is the message of the NotFound answered for a participant beyond the
// caller's reach: the room layer's own message for an identity nobody has, so that the
// answer does not tell that someone hidden is there.
const participantNotFound = "participant not found"

// participantCaller reports whether the request's token is a participant's: it grants
// roomJoin, as a teacher's token (roomAdmin and roomJoin for its own room) does. Such callers
// see and act on the participants the room shows its participants, no more. Server-side
// tokens (roomAdmin without roomJoin, as the API key holder mints) reach everyone, as in
// LiveKit.
func participantCaller(ctx context.Context) bool {
	c, ok := CallerFromContext(ctx)
	return ok && c.Grants.Video != nil && c.Grants.Video.RoomJoin
}

// beyondReach reports whether p is out of a participant caller's reach: hidden participants
// (supervisors) and the recorder.
func beyondReach(p *livekit.ParticipantInfo) bool {
	return p.GetPermission().GetHidden() || p.GetPermission().GetRecorder() //nolint:staticcheck // LiveKit protocol: the recorder grant
}

// checkReach fails with NotFound when a participant caller names a participant beyond its
// reach, and with the room layer's error when the participant cannot be looked up.
func (s *Service) checkReach(ctx context.Context, room, identity string) error {
	if !participantCaller(ctx) {
		return nil
	}
	p, err := s.rooms.GetParticipant(ctx, room, identity)
	if err != nil {
		return s.twirpError(ctx, err)
	}
	if p == nil {
		return s.nilResult(ctx)
	}
	if beyondReach(p) {
		return twirp.NewError(twirp.NotFound, participantNotFound)
	}
	return nil
}

// reachableDestinations removes from req's destinations the participants beyond a
// participant caller's reach. It reports false when req named destinations and none is
// left: the data goes to nobody.
func (s *Service) reachableDestinations(ctx context.Context, req *livekit.SendDataRequest) (bool, error) {
	if !participantCaller(ctx) || len(req.DestinationIdentities)+len(req.DestinationSids) == 0 { //nolint:staticcheck // LiveKit Room API: data addressed by sid
		return true, nil
	}
	ps, err := s.rooms.ListParticipants(ctx, req.GetRoom())
	if err != nil {
		return false, s.twirpError(ctx, err)
	}
	identities, sids := map[string]bool{}, map[string]bool{}
	for _, p := range ps {
		if beyondReach(p) {
			identities[p.GetIdentity()], sids[p.GetSid()] = true, true
		}
	}
	keep := func(ids []string, hidden map[string]bool) []string {
		var out []string
		for _, id := range ids {
			if !hidden[id] {
				out = append(out, id)
			}
		}
		return out
	}
	req.DestinationIdentities = keep(req.DestinationIdentities, identities)
	req.DestinationSids = keep(req.DestinationSids, sids)                   //nolint:staticcheck // LiveKit Room API: data addressed by sid
	return len(req.DestinationIdentities)+len(req.DestinationSids) > 0, nil //nolint:staticcheck // LiveKit Room API: data addressed by sid
}
