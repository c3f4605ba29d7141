package roomapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/twitchtv/twirp"
)

// Caller is the verified identity behind a Room API request.
type Caller struct {
	// APIKey is the key the token was signed with (its "iss" claim).
	APIKey string
	// Grants are the token's verified grants. Never nil.
	Grants *auth.ClaimGrants
}

// CallerFromContext returns the verified caller of the Room API request ctx belongs to. It
// reports false when the request carried no valid token (such requests never reach
// rooms.Admin).
func CallerFromContext(ctx context.Context) (Caller, bool) {
	st, ok := ctx.Value(requestStateKey{}).(*requestState)
	if !ok || st.authErr != nil || st.caller.Grants == nil {
		return Caller{}, false
	}
	return st.caller, true
}

// requestStateKey is the context key of a *requestState.
type requestStateKey struct{}

// requestState is what the HTTP middleware learns about a request before Twirp sees it.
type requestState struct {
	start   time.Time
	caller  Caller
	authErr error // a twirp.Error with code Unauthenticated, or nil
	// failure is the error sent to the client, if any (set by the Twirp Error hook; the
	// request's handling is sequential, so it needs no lock).
	failure twirp.Error
}

// withAuth is the HTTP middleware in front of the Twirp server: it caps the request body and
// verifies the bearer token, recording the outcome in the request context. It never rejects
// a request itself; the RequestRouted hook (and each method) does, so that rejections go
// through Twirp's error path and hooks.
func (s *Service) withAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.maxRequestBytes > 0 {
			r.Body = http.MaxBytesReader(w, r.Body, s.maxRequestBytes)
		}
		st := &requestState{start: time.Now()}
		st.caller, st.authErr = s.verify(r.Header.Get("Authorization"))
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestStateKey{}, st)))
	})
}

// verify checks an Authorization header value against the server's API keys.
func (s *Service) verify(header string) (Caller, error) {
	if header == "" {
		return Caller{}, twirp.NewError(twirp.Unauthenticated, "missing authorization header")
	}
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Caller{}, twirp.NewError(twirp.Unauthenticated, "authorization header is not a bearer token")
	}
	v, err := auth.ParseAPIToken(token)
	if err != nil {
		return Caller{}, twirp.NewError(twirp.Unauthenticated, "invalid token: "+err.Error())
	}
	secret := s.keys.GetSecret(v.APIKey())
	if secret == "" {
		return Caller{}, twirp.NewError(twirp.Unauthenticated, "invalid token: unknown API key")
	}
	_, grants, err := v.Verify(secret)
	if err != nil {
		return Caller{}, twirp.NewError(twirp.Unauthenticated, "invalid token: "+err.Error())
	}
	if s.check != nil {
		if err := s.check(grants); err != nil {
			return Caller{}, twirp.NewError(twirp.Unauthenticated, "token no longer valid: "+err.Error())
		}
	}
	return Caller{APIKey: v.APIKey(), Grants: grants}, nil
}

// authenticate returns the verified caller of ctx's request, or a twirp.Unauthenticated
// error. Requests that did not pass through [Service.Handler] are unauthenticated.
func authenticate(ctx context.Context) (Caller, error) {
	st, ok := ctx.Value(requestStateKey{}).(*requestState)
	if !ok {
		return Caller{}, twirp.NewError(twirp.Unauthenticated, "missing authorization")
	}
	if st.authErr != nil {
		return Caller{}, st.authErr
	}
	return st.caller, nil
}

// requireRoomCreate checks the roomCreate grant (CreateRoom, DeleteRoom).
func requireRoomCreate(c Caller) error {
	if c.Grants.Video == nil || !c.Grants.Video.RoomCreate {
		return twirp.NewError(twirp.PermissionDenied, "roomCreate grant required")
	}
	return nil
}

// requireRoomList checks the roomList grant (ListRooms).
func requireRoomList(c Caller) error {
	if c.Grants.Video == nil || !c.Grants.Video.RoomList {
		return twirp.NewError(twirp.PermissionDenied, "roomList grant required")
	}
	return nil
}

// requireRoomAdmin checks the roomAdmin grant for room (participant, track, data and
// metadata operations). room must be non-empty (validated before).
func requireRoomAdmin(c Caller, room string) error {
	if c.Grants.Video == nil || !c.Grants.Video.RoomAdmin {
		return twirp.NewError(twirp.PermissionDenied, "roomAdmin grant required")
	}
	if c.Grants.Video.Room != room {
		return twirp.NewError(twirp.PermissionDenied, "token's roomAdmin grant is not for room "+room)
	}
	return nil
}
