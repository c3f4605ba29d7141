package turnserver

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST API's HMAC, which clients' credentials follow
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// credential returns the TURN REST API user name and password of participant sid, valid
// for new allocations until expires.
func (s *Server) credential(sid string, expires time.Time) (user, password string) {
	user = strconv.FormatInt(expires.Unix(), 10) + ":" + sid
	return user, s.password(user)
}

// password is the password of user name user: base64(HMAC-SHA1(secret, user)).
func (s *Server) password(user string) string {
	mac := hmac.New(sha1.New, s.secret)
	mac.Write([]byte(user))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// parseUser splits a user name into its expiry and participant sid.
func parseUser(user string) (sid string, expires time.Time, ok bool) {
	ts, sid, ok := strings.Cut(user, ":")
	if !ok || sid == "" {
		return "", time.Time{}, false
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return sid, time.Unix(unix, 0), true
}

// key returns the long-term key (RFC 8489 section 9.2.2) of user name user in realm, and
// the participant it belongs to, when that participant is still in its session. The
// request's MESSAGE-INTEGRITY must still be checked with the key: it proves the client
// knows the password.
func (s *Server) key(user, realm string) (sid string, expires time.Time, key []byte, ok bool) {
	sid, expires, ok = parseUser(user)
	if !ok || !s.ledger.live(sid) {
		return "", time.Time{}, nil, false
	}
	return sid, expires, turn.GenerateAuthKey(user, realm, s.password(user)), true
}

// authenticate is pion's AuthHandler. Every authenticated request needs a credential whose
// participant is still in its session; a new allocation also needs one that has not
// expired. The participant's sid is the allocations' user id (quotas, Left).
func (s *Server) authenticate(ra *turn.RequestAttributes) (userID string, key []byte, ok bool) {
	sid, expires, key, ok := s.key(ra.Username, ra.Realm)
	if !ok {
		s.logger.Debug("credential refused: malformed, or its participant is in no session",
			"client", ra.SrcAddr.String(), "method", ra.Method.String())
		return "", nil, false
	}
	if ra.Method == stun.MethodAllocate && time.Now().After(expires) {
		s.logger.Debug("expired credential refused for a new allocation", "client", ra.SrcAddr.String(), "sid", sid)
		return "", nil, false
	}
	return sid, key, true
}
