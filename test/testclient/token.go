package testclient

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
)

// Dev credentials: the API key and secret servers use in --dev mode (Sanke and LiveKit alike).
const (
	DevAPIKey    = "devkey"
	DevAPISecret = "secret"
)

// TokenOption adjusts a token minted by NewToken.
type TokenOption func(*auth.AccessToken)

// WithName sets the participant's display name.
func WithName(name string) TokenOption {
	return func(at *auth.AccessToken) { at.SetName(name) }
}

// WithMetadata sets the participant's initial metadata.
func WithMetadata(md string) TokenOption {
	return func(at *auth.AccessToken) { at.SetMetadata(md) }
}

// WithAttributes sets the participant's initial attributes.
func WithAttributes(attrs map[string]string) TokenOption {
	return func(at *auth.AccessToken) { at.SetAttributes(attrs) }
}

// WithTTL sets how long the token is valid (default 1 hour). It must be positive; see
// TokenValidBetween for expired or not-yet-valid tokens.
func WithTTL(d time.Duration) TokenOption {
	return func(at *auth.AccessToken) { at.SetValidFor(d) }
}

// WithKind sets the participant kind (standard, ingress, egress, sip, agent).
func WithKind(kind livekit.ParticipantInfo_Kind) TokenOption {
	return func(at *auth.AccessToken) { at.SetKind(kind) }
}

// NewToken mints a LiveKit access token (HS256 JWT) for identity with the given video grant.
func NewToken(apiKey, apiSecret, identity string, grant *auth.VideoGrant, opts ...TokenOption) (string, error) {
	at := auth.NewAccessToken(apiKey, apiSecret).SetIdentity(identity).SetValidFor(time.Hour)
	if grant != nil {
		at.SetVideoGrant(grant)
	}
	for _, o := range opts {
		o(at)
	}
	return at.ToJWT()
}

// MustToken is NewToken that fails the test on error.
func MustToken(tb testing.TB, apiKey, apiSecret, identity string, grant *auth.VideoGrant, opts ...TokenOption) string {
	tb.Helper()
	tok, err := NewToken(apiKey, apiSecret, identity, grant, opts...)
	if err != nil {
		tb.Fatalf("mint token for %s: %v", identity, err)
	}
	return tok
}

// JoinGrant allows joining room with every in-room permission (publish, subscribe, data).
func JoinGrant(room string) *auth.VideoGrant {
	return &auth.VideoGrant{RoomJoin: true, Room: room}
}

// SubscribeOnlyGrant allows joining room to subscribe only: no publishing, no data.
func SubscribeOnlyGrant(room string) *auth.VideoGrant {
	g := &auth.VideoGrant{RoomJoin: true, Room: room}
	g.SetCanPublish(false)
	g.SetCanPublishData(false)
	g.SetCanSubscribe(true)
	return g
}

// PublishOnlyGrant allows joining room to publish (media and data) without subscribing.
func PublishOnlyGrant(room string) *auth.VideoGrant {
	g := &auth.VideoGrant{RoomJoin: true, Room: room}
	g.SetCanPublish(true)
	g.SetCanPublishData(true)
	g.SetCanSubscribe(false)
	return g
}

// AdminGrant is for Room API calls on room (RoomAdmin) plus creating and listing rooms.
func AdminGrant(room string) *auth.VideoGrant {
	return &auth.VideoGrant{RoomAdmin: true, Room: room, RoomCreate: true, RoomList: true}
}

// TokenValidBetween mints a token valid only from notBefore to expires, for tests of expired
// and not-yet-valid tokens (the SDK's AccessToken cannot make those). Claims are laid out as
// LiveKit's: registered claims (iss = key, sub = identity) plus the ClaimGrants fields.
func TokenValidBetween(apiKey, apiSecret, identity string, grant *auth.VideoGrant, notBefore, expires time.Time) (string, error) {
	claims := struct {
		jwt.RegisteredClaims
		auth.ClaimGrants
	}{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    apiKey,
			Subject:   identity,
			NotBefore: jwt.NewNumericDate(notBefore),
			ExpiresAt: jwt.NewNumericDate(expires),
		},
		ClaimGrants: auth.ClaimGrants{Video: grant},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(apiSecret))
}
