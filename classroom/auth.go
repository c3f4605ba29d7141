package classroom

import (
	"errors"
	"net/http"
	"strings"
	"sync"
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
	// grants are the verified token's grants (nil for the admin key).
	grants *auth.ClaimGrants
	// account is set for sign-in tokens (Sanke's own or the platform's).
	account *model.Account
}

var (
	errUnauthenticated = errors.New("missing or invalid bearer token")
	errForbidden       = errors.New("not allowed")
)

// authenticate verifies "Authorization: Bearer ...": the admin key, or a JWT signed with one
// of the server's API keys (LiveKit access token format).
//
//   - video.roomCreate: administrator (read and write);
//   - video.roomList: reader (statistics, records, audit log);
//   - attribute sanke.account: a classroom or supervisor account (sign-in token from
//     POST /api/v1/login, or a token the platform signs with an API key it was given);
//   - video.roomJoin + video.room: a room token, for that room's control endpoints.
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
	secret := s.cfg.Keys.GetSecret(v.APIKey())
	if secret == "" {
		return nil, errUnauthenticated
	}
	_, grants, err := v.Verify(secret)
	if err != nil {
		return nil, errUnauthenticated
	}
	c := &caller{grants: grants, actor: grants.Identity}
	if c.actor == "" {
		c.actor = "api_key:" + v.APIKey()
	}
	if grants.Video != nil {
		c.admin = grants.Video.RoomCreate
		c.reader = grants.Video.RoomCreate || grants.Video.RoomList
	}
	if id := grants.Attributes[AttrAccount]; id != "" {
		acc := s.Index().Account(id)
		if acc == nil || acc.Disabled {
			return nil, errForbidden
		}
		c.account = acc
		c.actor = "account:" + id
	}
	return c, nil
}

// inRoom returns the identity and role of a caller holding a room token for roomName.
func (c *caller) inRoom(roomName string) (string, Role, bool) {
	if c.grants == nil || c.grants.Video == nil || !c.grants.Video.RoomJoin || c.grants.Video.Room != roomName {
		return "", "", false
	}
	role, _ := ParseRole(c.grants.Attributes[AttrRole])
	return c.grants.Identity, role, true
}

// moderates reports whether the caller may call on and switch modes in roomName: the
// teacher's room token, a roomAdmin token for the room, or an administrator.
func (c *caller) moderates(roomName string) bool {
	if c.admin {
		return true
	}
	if c.grants == nil || c.grants.Video == nil || c.grants.Video.Room != roomName {
		return false
	}
	if c.grants.Video.RoomAdmin {
		return true
	}
	_, role, ok := c.inRoom(roomName)
	return ok && role == RoleTeacher
}

// dummyHash is compared against when an account does not exist, so that sign-in takes the
// same time either way.
const dummyHash = "$2a$10$/7kYp2rApFOJnW1/qsoQCuLp1XabXC6mxheGh3Gm8uGVFzUTykl8m"

// loginLimiter refuses sign-ins to an account after repeated failures.
type loginLimiter struct {
	mu       sync.Mutex
	failures map[string][]time.Time
}

const (
	loginMaxFailures = 5
	loginWindow      = 5 * time.Minute
	loginMaxTracked  = 10000
)

func (l *loginLimiter) blocked(id string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	recent := l.failures[id][:0]
	for _, t := range l.failures[id] {
		if now.Sub(t) < loginWindow {
			recent = append(recent, t)
		}
	}
	l.failures[id] = recent
	return len(recent) >= loginMaxFailures
}

func (l *loginLimiter) record(id string, ok bool, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ok {
		delete(l.failures, id)
		return
	}
	if len(l.failures) >= loginMaxTracked {
		clear(l.failures) // a flood of made-up account names must not exhaust memory
	}
	l.failures[id] = append(l.failures[id], now)
}

// checkPassword verifies an account's password in constant time whether it exists or not.
func checkPassword(acc *model.Account, password string) bool {
	hash := dummyHash
	if acc != nil && acc.PasswordHash != "" {
		hash = acc.PasswordHash
	}
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
	return err == nil && acc != nil && !acc.Disabled && acc.PasswordHash != ""
}

// signInToken mints the token an account uses with the API: a JWT signed with the server's
// key that carries no room grant (it cannot join rooms) and the attribute sanke.account.
func (s *Service) signInToken(acc *model.Account) (string, time.Time, error) {
	at := auth.NewAccessToken(s.cfg.APIKey, s.cfg.APISecret).
		SetIdentity("account:" + acc.ID).SetName(acc.Name).
		SetAttributes(map[string]string{AttrAccount: acc.ID}).SetValidFor(s.cfg.LoginTTL)
	tok, err := at.ToJWT()
	return tok, time.Now().Add(s.cfg.LoginTTL), err
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
