package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/twitchtv/twirp"

	tc "github.com/sanke-edu/sanke/test/testclient"
)

// Helpers of the issue 12 tests (reserved attributes, limits, track kinds, classroom
// permissions): they drive the server with raw websocket clients and Room API calls made
// with a chosen token.

// roomAPIAs returns a Room API client whose calls carry token as is (the SDK's
// RoomServiceClient mints a server-side admin token per call instead), and the context to
// call it with.
func roomAPIAs(t *testing.T, target tc.Target, token string) (livekit.RoomService, context.Context) {
	t.Helper()
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+token)
	ctx, err := twirp.WithHTTPRequestHeaders(ctxTimeout(t), hdr)
	if err != nil {
		t.Fatal(err)
	}
	return livekit.NewRoomServiceProtobufClient(target.HTTPURL, http.DefaultClient), ctx
}

// waitMessage waits until c received a message matching match and returns the first one.
func (c *rawClient) waitMessage(what string, match func(*livekit.SignalResponse) bool) *livekit.SignalResponse {
	c.t.Helper()
	var found *livekit.SignalResponse
	tc.Eventually(c.t, eventWait, what, func() (bool, string) {
		for _, m := range c.messages() {
			if match(m) {
				found = m
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d messages, open=%v, read error %v", len(c.messages()), c.isOpen(), c.err())
	})
	return found
}

// request sends req on c and fails the test if it cannot.
func (c *rawClient) request(req *livekit.SignalRequest) {
	c.t.Helper()
	if err := c.send(req); err != nil {
		c.t.Fatalf("send %T: %v", req.Message, err)
	}
}

// answerTo waits for the request_response to the request with id and returns it.
func (c *rawClient) answerTo(id uint32) *livekit.RequestResponse {
	c.t.Helper()
	return c.waitMessage(fmt.Sprintf("request_response to request %d", id), func(m *livekit.SignalResponse) bool {
		return m.GetRequestResponse() != nil && m.GetRequestResponse().GetRequestId() == id
	}).GetRequestResponse()
}

// refusal waits for a request_response with reason whose message contains text.
func (c *rawClient) refusal(reason livekit.RequestResponse_Reason, text string) *livekit.RequestResponse {
	c.t.Helper()
	return c.waitMessage(fmt.Sprintf("request_response %s about %q", reason, text), func(m *livekit.SignalResponse) bool {
		rr := m.GetRequestResponse()
		return rr != nil && rr.GetReason() == reason && containsFold(rr.GetMessage(), text)
	}).GetRequestResponse()
}

// refreshTokens returns the grants of every refresh token c received, oldest first, each
// verified with target's secret.
func (c *rawClient) refreshTokens(target tc.Target) []*auth.ClaimGrants {
	c.t.Helper()
	var out []*auth.ClaimGrants
	for _, m := range c.messages() {
		if jwt := m.GetRefreshToken(); jwt != "" {
			out = append(out, verifyToken(c.t, target, jwt))
		}
	}
	return out
}

// verifyToken checks jwt's signature with target's secret and returns its grants.
func verifyToken(t *testing.T, target tc.Target, jwt string) *auth.ClaimGrants {
	t.Helper()
	v, err := auth.ParseAPIToken(jwt)
	if err != nil {
		t.Fatalf("parse token: %v", err)
	}
	_, grants, err := v.Verify(target.APISecret)
	if err != nil {
		t.Fatalf("verify token: %v", err)
	}
	return grants
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
