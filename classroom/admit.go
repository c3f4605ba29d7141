package classroom

import (
	"context"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/sfu/room"
)

// AdmitParticipant implements room.JoinPolicy: a teaching point joining its class room
// starts with what the class allows now, not with what its token said when it was signed.
// Its microphone is granted only while it is called on or in free discussion, and the
// server's class attributes (sanke.called_on, sanke.hand) say how things stand; a token
// kept from a call, refreshed tokens included, brings neither back. Other participants,
// and rooms of no session, keep their token's grants. A token issued to an account before
// its password changed or it was disabled, refreshed ones included, joins no room (see
// revoke.go).
func (s *Service) AdmitParticipant(ctx context.Context, roomName, identity string, grants *auth.ClaimGrants) (*room.Admission, error) {
	if err := s.checkIssuedTo(grants.Attributes); err != nil {
		s.auditRefusal(ctx, identity, "auth.token_revoked", "", roomName, "account="+quoteTrunc(grants.Attributes[attrIssuedTo])+" join refused")
		return nil, err
	}
	idx := s.Index()
	sess := idx.SessionByRoom(roomName)
	if sess == nil {
		return nil, nil
	}
	joining := &livekit.ParticipantInfo{Identity: identity, Attributes: grants.Attributes}
	if grants.Video != nil {
		joining.Permission = grants.Video.ToPermission()
	}
	if _, role := identify(idx, sess, joining); role != RoleTeachingPoint {
		return nil, nil
	}
	return s.ctl.admission(roomName, identity), nil
}

// admission is what a teaching point joining roomName starts with in the room's current
// state (lecture, nobody called on, when the room has none yet).
func (c *controller) admission(roomName, identity string) *room.Admission {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.rooms[roomName]
	calledOn := st != nil && st.calledOn[identity]
	free := st != nil && st.mode == ModeFree
	attrs := map[string]string{AttrCalledOn: "", AttrHand: ""}
	if calledOn {
		attrs[AttrCalledOn] = "true"
	}
	if st != nil && st.hands[identity] {
		attrs[AttrHand] = "raised"
	}
	return &room.Admission{Permission: Permission(RoleTeachingPoint, calledOn || free), Attributes: attrs}
}
