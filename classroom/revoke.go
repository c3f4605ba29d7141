package classroom

import (
	"context"
	"crypto/hmac"
	"database/sql"
	"errors"
	"fmt"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/classroom/model"
	"github.com/sanke-edu/sanke/classroom/store"
	"github.com/sanke-edu/sanke/internal/rooms"
)

// Ending an account's access when its password changes or it is disabled.
//
// Every token Sanke issues to an account names it and carries a credential stamp: an HMAC,
// under the sign-in key, of the account's password hash and its revocation epoch (see
// credentialOf). Sign-in tokens carry it as attrCredential; room and view tokens as the
// attributes attrIssuedTo and attrRoomCredential. A token is honoured only while the stamp
// it carries is the account's current one and the account is enabled. Changing the password
// (a new bcrypt hash, new salt), disabling or deleting the account, or changing what it is
// (kind, classroom, region) sets a new epoch in the database (table account_epoch, in the
// transaction that saves the dataset): every stamp issued before no longer matches, also
// after the account is enabled again, while the tokens issued afterwards carry the new
// stamp and work.
//
// Why a stamp and not the tokens' issue times: the room layer re-signs a participant's
// refresh token (every 5 minutes and on every permission change) with a new "iat" but the
// participant's attributes, which no client and no Room API caller can change (sanke.*).
// A refresh token signed after the change for a session that began before it would pass a
// check on "iat"; its stamp is still the old one. And a join policy sees only the token's
// grants, not its times. The stamp is the same in the original token and in every refresh
// of it, so the old ones are refused and the new ones are not, whatever the clocks.
//
// Where it is checked: every API call with a room token (authenticate), every new
// participant (AdmitParticipant), every participant that has joined (a join admitted just
// before the change is removed when its event is handled), and the participants in the
// rooms when the change is saved (removed with room.Manager.RemoveParticipant).
const (
	// attrIssuedTo names the account a room or view token was issued to.
	attrIssuedTo = rooms.ReservedAttributePrefix + "issued_to"
	// attrRoomCredential is the credential stamp of a room or view token.
	attrRoomCredential = rooms.ReservedAttributePrefix + "credential"
	// roomStampUse keeps room token stamps apart from sign-in token stamps (participants see
	// each other's attributes; they never see a sign-in token's).
	roomStampUse = "room"
)

// errRevoked refuses a room token issued before its account's password changed or the
// account was disabled.
var errRevoked = fmt.Errorf("%w: the token was issued before its account's password changed or the account was disabled", rooms.ErrPermissionDenied)

// issuedTo returns the attributes that bind a room or view token to acc.
func (s *Service) issuedTo(acc *model.Account) map[string]string {
	return map[string]string{attrIssuedTo: acc.ID, attrRoomCredential: s.credentialOf(acc, roomStampUse)}
}

// checkIssuedTo refuses (errRevoked) the attributes of a room token, or of a participant
// that joined with one, issued to an account before its current stamp. Tokens issued to no
// account (an API key holder's, an administrator's request) have no binding.
func (s *Service) checkIssuedTo(attrs map[string]string) error {
	id, bound := attrs[attrIssuedTo]
	if !bound {
		return nil
	}
	acc := s.Index().Account(id)
	if acc == nil || acc.Disabled || !hmac.Equal([]byte(attrs[attrRoomCredential]), []byte(s.credentialOf(acc, roomStampUse))) {
		return errRevoked
	}
	return nil
}

// epochOf returns an account's revocation epoch (0: never revoked).
func (s *Service) epochOf(account string) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.epochs[account]
}

// revokedBy returns the accounts of old whose tokens a change to next revokes: deleted,
// disabled, given a new password, or made something else (kind, classroom, region).
func revokedBy(old, next *model.Dataset) []string {
	now := make(map[string]*model.Account, len(next.Accounts))
	for i := range next.Accounts {
		now[next.Accounts[i].ID] = &next.Accounts[i]
	}
	var out []string
	for i := range old.Accounts {
		o := &old.Accounts[i]
		n := now[o.ID]
		if n == nil || (n.Disabled && !o.Disabled) || n.PasswordHash != o.PasswordHash ||
			n.Kind != o.Kind || n.Classroom != o.Classroom || n.Region != o.Region {
			out = append(out, o.ID)
		}
	}
	return out
}

// newEpochs returns the epochs after revoking accounts at nowMS (each strictly later than
// the account's previous one), and a function saving them in the dataset's transaction.
func (s *Service) newEpochs(ctx context.Context, accounts []string, nowMS int64) (map[string]int64, func(*sql.Tx) error) {
	s.mu.RLock()
	epochs := make(map[string]int64, len(s.epochs)+len(accounts))
	for k, v := range s.epochs {
		epochs[k] = v
	}
	s.mu.RUnlock()
	for _, id := range accounts {
		epochs[id] = max(nowMS, epochs[id]+1)
	}
	return epochs, func(tx *sql.Tx) error {
		for _, id := range accounts {
			if err := store.SetAccountEpoch(ctx, tx, id, epochs[id]); err != nil {
				return err
			}
		}
		return nil
	}
}

// endRevoked disconnects the participants, in every room, that joined with a token revoked
// since (see checkIssuedTo).
func (s *Service) endRevoked(ctx context.Context) {
	if s.rooms == nil {
		return
	}
	for _, name := range s.rooms.RoomNames() {
		ps, err := s.rooms.ListParticipants(ctx, name)
		if err != nil {
			continue
		}
		for _, p := range ps {
			s.removeRevoked(ctx, name, p)
		}
	}
}

// removeRevoked disconnects p from roomName if its token was revoked. It removes by
// identity: the participant is looked up again so that one who has since joined with a
// current token under the same identity stays.
func (s *Service) removeRevoked(ctx context.Context, roomName string, p *livekit.ParticipantInfo) {
	if s.checkIssuedTo(p.GetAttributes()) == nil {
		return
	}
	cur, err := s.rooms.GetParticipant(ctx, roomName, p.GetIdentity())
	if err != nil || s.checkIssuedTo(cur.GetAttributes()) == nil {
		return
	}
	if err := s.rooms.RemoveParticipant(ctx, roomName, p.GetIdentity()); err != nil && !errors.Is(err, rooms.ErrParticipantNotFound) {
		s.logger.Warn("disconnecting a participant whose token was revoked", "room", roomName, "identity", p.GetIdentity(), "err", err)
		return
	}
	s.audit(ctx, p.GetIdentity(), "account.access_ended", "", roomName, "account="+quoteTrunc(p.GetAttributes()[attrIssuedTo]))
}

// CheckGrants refuses (with an error wrapping rooms.ErrPermissionDenied) the verified grants
// of a room or view token issued to an account before its password changed or it was
// disabled. The classroom API and joins check it themselves; other routes that accept room
// tokens (the recorder's listings) should call it after verifying a token.
func (s *Service) CheckGrants(grants *auth.ClaimGrants) error {
	if grants == nil {
		return nil
	}
	return s.checkIssuedTo(grants.Attributes)
}
