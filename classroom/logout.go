package classroom

import (
	"net/http"

	"github.com/sanke-edu/sanke/internal/rooms"
)

// Sign-ins are kept in the database (table signin_session, shared by every node that uses
// it): a Sanke sign-in token names its sign-in (attrSignIn) and works only while the
// database holds it. POST /api/v1/logout forgets the sign-in of the token presented, which
// then stops working everywhere at once; the account's other sign-ins go on. The table is
// bounded: expired sign-ins are deleted (at every sign-in and every tick) and an account
// keeps its maxSignInsPerAccount newest sign-ins, a newer one ending the oldest.
const (
	attrSignIn           = rooms.ReservedAttributePrefix + "signin"
	maxSignInsPerAccount = 32
)

func (s *Service) handleLogout(w http.ResponseWriter, r *http.Request) {
	c := s.require(w, r, func(c *caller) bool { return c.signIn != "" }, "a sign-in token from POST /api/v1/login")
	if c == nil {
		return
	}
	ended, err := s.store.EndSignIn(r.Context(), c.signIn)
	if err != nil {
		writeErr(w, err)
		return
	}
	if !ended { // signed out meanwhile by another request
		writeErr(w, errUnauthenticated)
		return
	}
	s.audit(r.Context(), c.actor, "account.logout", "", "", "")
	writeJSON(w, http.StatusOK, map[string]bool{"signed_out": true})
}
