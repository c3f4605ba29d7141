package testclient

import (
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/livekit/protocol/auth"
	lksdk "github.com/livekit/server-sdk-go/v2"
)

// Environment variables that point end-to-end tests at an already running LiveKit-compatible
// server (for example the LiveKit reference server) instead of a Sanke built for the test.
const (
	// RefURLEnv is the server's URL, such as ws://127.0.0.1:7880.
	RefURLEnv = "SANKE_REF_URL"
	// RefKeyEnv and RefSecretEnv are its API key and secret (default: the dev pair).
	RefKeyEnv    = "SANKE_REF_KEY"
	RefSecretEnv = "SANKE_REF_SECRET"
)

// Target is a server that test clients connect to.
type Target struct {
	// Name says what the server is: "sanke", "sanke-inprocess" or "reference".
	Name string
	// URL is what the Go SDK dials: ws://host:port.
	URL string
	// HTTPURL is the same server over HTTP, for the Room API and /healthz: http://host:port.
	HTTPURL string
	// APIKey and APISecret sign tokens.
	APIKey    string
	APISecret string
}

// Token mints a token for identity on this target; see NewToken.
func (t Target) Token(tb testing.TB, identity string, grant *auth.VideoGrant, opts ...TokenOption) string {
	tb.Helper()
	return MustToken(tb, t.APIKey, t.APISecret, identity, grant, opts...)
}

// RoomClient returns a Room API (Twirp) client for this target.
func (t Target) RoomClient() *lksdk.RoomServiceClient {
	return lksdk.NewRoomServiceClient(t.HTTPURL, t.APIKey, t.APISecret)
}

// ReferenceTarget returns the target named by SANKE_REF_URL, and false when it is not set.
func ReferenceTarget() (Target, bool) {
	raw := os.Getenv(RefURLEnv)
	if raw == "" {
		return Target{}, false
	}
	t := Target{Name: "reference", APIKey: DevAPIKey, APISecret: DevAPISecret}
	if k := os.Getenv(RefKeyEnv); k != "" {
		t.APIKey = k
	}
	if s := os.Getenv(RefSecretEnv); s != "" {
		t.APISecret = s
	}
	t.URL, t.HTTPURL = wsAndHTTP(raw)
	return t, true
}

// StartTarget returns the server an end-to-end test should use: the reference server when
// SANKE_REF_URL is set, otherwise a Sanke server started for this test (StartSanke).
func StartTarget(tb testing.TB, opts ...ServerOption) Target {
	tb.Helper()
	if t, ok := ReferenceTarget(); ok {
		tb.Logf("testclient: using reference server %s (%s)", t.URL, RefURLEnv)
		return t
	}
	return StartSanke(tb, opts...).Target()
}

// wsAndHTTP derives the websocket and HTTP forms of a server URL given in either form.
func wsAndHTTP(raw string) (wsURL, httpURL string) {
	raw = strings.TrimRight(raw, "/")
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw, raw
	}
	w, h := *u, *u
	switch u.Scheme {
	case "https", "wss":
		w.Scheme, h.Scheme = "wss", "https"
	default:
		w.Scheme, h.Scheme = "ws", "http"
	}
	return w.String(), h.String()
}
