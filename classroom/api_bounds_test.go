package classroom_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/internal/config"
)

// zeros is an endless body of zeros.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestRequestBodyLimits checks the per-route body limits beyond sign-in: an import larger
// than 32 MiB and an entity larger than 64 KiB are refused with 413 and a JSON error, with
// or without a declared length.
func TestRequestBodyLimits(t *testing.T) {
	ts := startServer(t, nil, nil)
	tests := []struct {
		method, path string
		size         int64
		declaredOnly bool // the route answers before reading a body (here: unknown room)
	}{
		{"POST", "/api/v1/import?table=regions", 33 << 20, false},
		{"PUT", "/api/v1/regions/430000", 65 << 10, false},
		{"POST", "/api/v1/rooms/class-X/hand", 5 << 10, true},
	}
	for _, tc := range tests {
		for _, chunked := range []bool{false, true} {
			if chunked && tc.declaredOnly {
				continue
			}
			body := io.LimitReader(zeros{}, tc.size)
			req, _ := http.NewRequest(tc.method, ts.http+tc.path, body)
			req.ContentLength = tc.size
			if chunked {
				req.ContentLength = -1
			}
			req.Header.Set("Authorization", "Bearer "+adminKey)
			req.Header.Set("Content-Type", "text/csv")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("%s %s (chunked %v): %v", tc.method, tc.path, chunked, err)
				continue
			}
			data, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(data), "larger than") {
				t.Errorf("%s %s with %d bytes (chunked %v): HTTP %d %.200q, want 413", tc.method, tc.path, tc.size, chunked, resp.StatusCode, data)
			}
		}
	}
}

// TestSignInTokenEndsWithPassword checks that a sign-in token stops working when its
// account's password is changed or the account is disabled.
func TestSignInTokenEndsWithPassword(t *testing.T) {
	ts := startServer(t, nil, func(c *config.Config) { c.Classroom.Dataset = []string{"sample/sample.yaml"} })
	tok := ts.login("T1", "houtang-tp-1")
	if code := ts.call("GET", "/api/v1/me", tok, nil, nil); code != 200 {
		t.Fatalf("/me: %d", code)
	}
	if code := ts.call("PUT", "/api/v1/accounts/T1", adminKey, `{"kind": "classroom", "classroom": "T1", "password": "a-new-password"}`, nil); code != 200 {
		t.Fatalf("changing T1's password: %d", code)
	}
	if code := ts.call("GET", "/api/v1/me", tok, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("/me with a sign-in token from before the password change: HTTP %d, want 401", code)
	}
	tok = ts.login("T1", "a-new-password")
	if code := ts.call("GET", "/api/v1/me", tok, nil, nil); code != 200 {
		t.Errorf("/me with a new sign-in token: %d", code)
	}
	if code := ts.call("PUT", "/api/v1/accounts/T1", adminKey, `{"kind": "classroom", "classroom": "T1", "disabled": true}`, nil); code != 200 {
		t.Fatalf("disabling T1: %d", code)
	}
	if code := ts.call("GET", "/api/v1/me", tok, nil, nil); code != http.StatusForbidden {
		t.Errorf("/me with a disabled account's token: HTTP %d, want 403", code)
	}
}

// TestEndCallOnOnlyForTeachingPoints checks that "ending the call" of a participant that is
// not a teaching point cannot change its permission: the teacher cannot turn a supervisor
// (hidden, subscribe only) into a camera publisher, nor itself into a teaching point. The
// hidden supervisor is answered as absent (404, see TestHiddenParticipantsLookAbsent).
func TestEndCallOnOnlyForTeachingPoints(t *testing.T) {
	ts := startClass(t, "R1")
	teacherTok, _ := ts.roomToken(ts.login("M1", "music-master-1"), "R1")
	supTok, _ := ts.roomToken(ts.login("HH-SUP", "huaihua-supervisor"), "R1")
	ts.connect(teacherTok.Token)
	ts.connect(supTok.Token)
	for _, id := range []string{supTok.Identity, "M1"} {
		want := http.StatusConflict
		if id == supTok.Identity {
			want = http.StatusNotFound
		}
		if code := ts.call("DELETE", "/api/v1/rooms/class-R1/call-on/"+id, teacherTok.Token, nil, nil); code != want {
			t.Errorf("ending the call of %s: HTTP %d, want %d", id, code, want)
		}
		p, err := ts.srv.Rooms().GetParticipant(context.Background(), "class-R1", id)
		if err != nil {
			t.Fatal(err)
		}
		perm := p.GetPermission()
		if id == "M1" && !hasSource(perm, livekit.TrackSource_MICROPHONE) {
			t.Errorf("the teacher lost its microphone: %v", perm)
		}
		if id != "M1" && (perm.GetCanPublish() || !perm.GetHidden()) {
			t.Errorf("the supervisor's permission changed: %v", perm)
		}
	}
}
