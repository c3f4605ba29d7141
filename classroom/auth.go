package classroom

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/livekit/protocol/auth"
	"golang.org/x/crypto/bcrypt"

	"github.com/sanke-edu/sanke/classroom/model"
)

// caller is the verified sender of an API request.
type caller struct {
	// actor names the caller in the audit log.
	actor string
	// admin may change the dataset; reader may read statistics (admin implies reader).
	admin, reader bool
	// grants are the verified token's grants (nil for the admin key and sign-in tokens).
	grants *auth.ClaimGrants
	// account is set for sign-in tokens (Sanke's own or the platform's).
	account *model.Account
	// signIn is the sign-in a Sanke sign-in token belongs to (see logout.go).
	signIn string
}

var (
	errUnauthenticated = errors.New("missing or invalid bearer token")
	errForbidden       = errors.New("not allowed")
)

// signInIssuer is the issuer ("iss", the API key field of a LiveKit token) of the sign-in
// tokens Sanke mints. They are signed with signInSecret, a key derived from the token key's
// secret that no other part of the server knows: the room layer (which re-signs refresh
// tokens with the key a participant joined with, copying its attributes), signaling and the
// Room API verify only with the configured API keys, so a sign-in token is never a room
// token and nothing the room layer signs is ever a Sanke sign-in token.
const signInIssuer = "sanke-sign-in"

// signInSecret derives the sign-in key from the token key's secret (HMAC-SHA256 with a label),
// so that it needs no configuration and changes when that secret is rotated.
func signInSecret(apiKey, apiSecret string) string {
	m := hmac.New(sha256.New, []byte(apiSecret))
	m.Write([]byte("sanke classroom sign-in token v1\x00" + apiKey))
	return hex.EncodeToString(m.Sum(nil))
}

// authenticate verifies "Authorization: Bearer ...": the admin key, a Sanke sign-in token, or
// a JWT signed with one of the server's API keys (LiveKit access token format).
//
//   - a sign-in token from POST /api/v1/login (issuer signInIssuer): that account;
//   - a token the platform signs with an API key it was given, with the attribute
//     sanke.account and no video grant at all: that account (see grantsAnything);
//   - video.roomCreate: administrator (read and write);
//   - video.roomList: reader (statistics, records, audit log);
//   - video.roomJoin + video.room: a room token, for that room's control endpoints. Its
//     attributes never make it an account or decide its role (see inRoom): the room layer
//     copies a participant's current attributes into the tokens it refreshes.
func (s *Service) authenticate(r *http.Request) (*caller, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return nil, errUnauthenticated
	}
	if s.checkAdminKey(tok) {
		return &caller{actor: "admin_key", admin: true, reader: true}, nil
	}
	v, err := auth.ParseAPIToken(tok)
	if err != nil {
		return nil, errUnauthenticated
	}
	if v.APIKey() == signInIssuer {
		return s.signInCaller(r.Context(), v)
	}
	secret := s.cfg.Keys.GetSecret(v.APIKey())
	if secret == "" {
		return nil, errUnauthenticated
	}
	_, grants, err := v.Verify(secret)
	if err != nil {
		return nil, errUnauthenticated
	}
	if err := s.checkIssuedTo(grants.Attributes); err != nil {
		roomName := ""
		if grants.Video != nil {
			roomName = grants.Video.Room
		}
		s.auditRefusal(r.Context(), grants.Identity, "auth.token_revoked", "", roomName, "account="+quoteTrunc(grants.Attributes[attrIssuedTo]))
		return nil, errUnauthenticated
	}
	c := &caller{grants: grants, actor: grants.Identity}
	if c.actor == "" {
		c.actor = "api_key:" + v.APIKey()
	}
	if id, claimed := grants.Attributes[AttrAccount]; claimed {
		if grantsAnything(grants.Video) {
			// A room (or administrator) token that also names an account: as the room layer
			// refreshes it after a participant's attributes were changed. The attribute is
			// ignored, and the attempt audited under the token's own identity.
			roomName := ""
			if grants.Video != nil {
				roomName = grants.Video.Room
			}
			s.auditRefusal(r.Context(), c.actor, "auth.account_refused", "", roomName, "sanke.account="+quoteTrunc(id)+" in a token with a video grant")
		} else {
			return s.accountCaller(id)
		}
	}
	if grants.Video != nil {
		c.admin = grants.Video.RoomCreate
		c.reader = grants.Video.RoomCreate || grants.Video.RoomList
	}
	return c, nil
}

// signInCaller verifies one of Sanke's own sign-in tokens: signed with the sign-in key, no
// video grant, subject "account:<id>" matching its sanke.account attribute, issued for the
// account's current password (attrCredential), and a sign-in the database still holds (not
// signed out, see logout.go).
func (s *Service) signInCaller(ctx context.Context, v *auth.APIKeyTokenVerifier) (*caller, error) {
	_, grants, err := v.Verify(s.signInKey)
	if err != nil || grants.Video != nil {
		return nil, errUnauthenticated
	}
	id := grants.Attributes[AttrAccount]
	if id == "" || grants.Identity != "account:"+id {
		return nil, errUnauthenticated
	}
	c, err := s.accountCaller(id)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal([]byte(grants.Attributes[attrCredential]), []byte(s.credentialOf(c.account, ""))) {
		return nil, errUnauthenticated // the password changed (or the account was disabled) since
	}
	c.signIn = grants.Attributes[attrSignIn]
	live, err := s.store.SignInLive(ctx, c.signIn, s.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("checking the sign-in: %w", err)
	}
	if !live {
		return nil, errUnauthenticated // signed out, expired, or pushed out by newer sign-ins
	}
	return c, nil
}

// attrCredential binds a Sanke sign-in token to the account's password hash and revocation
// epoch when it was issued, so that changing the password or disabling the account ends
// every sign-in token issued before (see revoke.go).
const attrCredential = "sanke.credential"

// credentialOf is the credential stamp of an account now: an HMAC under the sign-in key of
// its password hash and revocation epoch (it reveals nothing of the hash), for one use
// ("" for sign-in tokens, roomStampUse for room tokens).
func (s *Service) credentialOf(acc *model.Account, use string) string {
	m := hmac.New(sha256.New, []byte(s.signInKey))
	m.Write([]byte(acc.ID + "\x00" + acc.PasswordHash))
	if e := s.epochOf(acc.ID); e != 0 { // 0: stamps issued before epochs existed stay valid
		m.Write([]byte("\x00" + strconv.FormatInt(e, 10)))
	}
	if use != "" {
		m.Write([]byte("\x00" + use))
	}
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// accountCaller is the caller signed in as account id (refused when unknown or disabled).
func (s *Service) accountCaller(id string) (*caller, error) {
	acc := s.Index().Account(id)
	if acc == nil || acc.Disabled {
		return nil, errForbidden
	}
	return &caller{account: acc, actor: "account:" + id}, nil
}

// grantsAnything reports whether a video grant gives anything: a room (join, admin, a room
// name, recorder, hidden...) or a server-wide right (create, list, record, ingress). A
// platform's sign-in token must grant nothing, so that no room token, whatever attributes
// it carries, is ever taken for an account.
func grantsAnything(v *auth.VideoGrant) bool {
	return v != nil && (v.RoomJoin || v.Room != "" || v.RoomAdmin || v.RoomCreate || v.RoomList || v.RoomRecord ||
		v.Recorder || v.Hidden || v.Agent || v.IngressAdmin || v.DestinationRoom != "")
}

// inRoom returns the identity and role of a caller holding a room token for a session's room.
// The role comes from what the room layer never changes in a token it refreshes, the
// identity and the video grant, read against the dataset: a hidden participant is a
// supervisor, a classroom identity has its classroom's role in the session, anyone else has
// no role (""). Attributes (sanke.role, sanke.classroom) are not read: they are the
// participant's current attributes when the token was refreshed.
func (c *caller) inRoom(sess *model.Session) (string, Role, bool) {
	if c.grants == nil || c.grants.Video == nil || !c.grants.Video.RoomJoin || c.grants.Video.Room != sess.Room {
		return "", "", false
	}
	if c.grants.Video.Hidden {
		return c.grants.Identity, RoleSupervisor, true
	}
	role, _ := RoleFor(sess, c.grants.Identity)
	return c.grants.Identity, role, true
}

// moderates reports whether the caller may call on and switch modes in a session's room: an
// administrator, a roomAdmin token for the room, or the master classroom's room token.
func (c *caller) moderates(sess *model.Session) bool {
	if c.admin {
		return true
	}
	if c.grants == nil || c.grants.Video == nil || c.grants.Video.Room != sess.Room {
		return false
	}
	if c.grants.Video.RoomAdmin {
		return true
	}
	_, role, ok := c.inRoom(sess)
	return ok && role == RoleTeacher
}

// checkPassword verifies an account's password in constant time whether it exists or not:
// dummyHash (a hash of the configured cost, see Service.dummyHash) is checked when it does not.
func checkPassword(acc *model.Account, password, dummyHash string) bool {
	hash := dummyHash
	if acc != nil && acc.PasswordHash != "" {
		hash = acc.PasswordHash
	}
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
	return err == nil && acc != nil && !acc.Disabled && acc.PasswordHash != ""
}

// signInToken mints the token an account uses with the API: a JWT signed with the sign-in
// key (issuer signInIssuer) that carries no video grant, the subject "account:<id>" and the
// attribute sanke.account. No other part of the server accepts it.
func (s *Service) signInToken(ctx context.Context, acc *model.Account) (string, time.Time, error) {
	id := randomID()
	at := auth.NewAccessToken(signInIssuer, s.signInKey).
		SetIdentity("account:" + acc.ID).SetName(acc.Name).
		SetAttributes(map[string]string{AttrAccount: acc.ID, attrCredential: s.credentialOf(acc, ""), attrSignIn: id}).
		SetValidFor(s.cfg.LoginTTL)
	tok, err := at.ToJWT()
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.clock.Now()
	if err := s.store.AddSignIn(ctx, id, acc.ID, now.Add(s.cfg.LoginTTL), now, maxSignInsPerAccount); err != nil {
		return "", time.Time{}, fmt.Errorf("recording the sign-in: %w", err)
	}
	return tok, time.Now().Add(s.cfg.LoginTTL), nil
}

// sessionAccess decides whether an account may get a room token for a session and as what.
// Classroom accounts get their classroom's role in sessions it belongs to (a classroom of
// another school is refused); supervisors get the hidden supervisor role in sessions with a
// classroom inside their region.
func (s *Service) sessionAccess(acc *model.Account, sess *model.Session) (Role, string, error) {
	idx := s.Index()
	switch acc.Kind {
	case model.ClassroomAccount:
		role, ok := RoleFor(sess, acc.Classroom)
		if !ok {
			return "", "", errors.New("classroom " + acc.Classroom + " does not take part in session " + sess.ID)
		}
		return role, acc.Classroom, nil
	case model.SupervisorAccount:
		for _, cl := range append([]string{sess.Master}, sess.Receivers...) {
			if model.RegionContains(acc.Region, idx.CountyOf(cl)) {
				return RoleSupervisor, "", nil
			}
		}
		return "", "", errors.New("session " + sess.ID + " has no classroom in region " + acc.Region)
	}
	return "", "", errors.New("unknown account kind")
}

// coverageRegion decides which area a caller may read coverage of, given the region it asked
// for ("" for all). Readers (the admin key, roomList or roomCreate tokens) read any region.
// A supervisor account (巡课) reads its own region and the regions inside it: no region means
// its own, and a region outside it (another city, or a wider one such as its province) is
// refused. Everyone else is refused.
func coverageRegion(c *caller, requested string) (string, error) {
	if c.reader {
		return requested, nil
	}
	if c.account == nil || c.account.Kind != model.SupervisorAccount || c.account.Region == "" {
		return "", errForbidden
	}
	if requested == "" {
		return c.account.Region, nil
	}
	if !model.RegionContains(c.account.Region, requested) {
		return "", errForbidden
	}
	return requested, nil
}
