package classroom_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"

	"github.com/sanke-edu/sanke/internal/config"
)

// joins reports whether a raw websocket join with token gets a join response (the
// connection is closed again at once); the error says why not.
func (ts *testServer) joins(token string) (bool, string) {
	ts.t.Helper()
	ws, resp, err := ts.dialSignal(token)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return false, "HTTP " + http.StatusText(status)
	}
	defer func() { _ = ws.Close() }()
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		return false, err.Error()
	}
	var msg livekit.SignalResponse
	if err := proto.Unmarshal(data, &msg); err != nil {
		return false, err.Error()
	}
	if msg.GetJoin() != nil {
		return true, ""
	}
	return false, msg.String()
}

// gone waits until identity is no longer in roomName (the server removed it).
func (ts *testServer) gone(roomName, identity string) bool {
	_, ok := eventually(15*time.Second, func() bool {
		_, err := ts.srv.Rooms().GetParticipant(context.Background(), roomName, identity)
		return err != nil
	})
	return ok
}

// TestAccountChangeEndsRoomAccess is the regression test of issue 12 finding F7: changing an
// account's password or disabling it ends its room access. Its live participant is
// disconnected; the room tokens issued before, and the refresh tokens the room layer signed
// from them, neither join nor reach the class API; tokens issued after the change (and
// their refreshes) work; re-enabling the account does not bring the old ones back.
func TestAccountChangeEndsRoomAccess(t *testing.T) {
	ts := startClass(t, "R1")
	signIn := ts.login("T2", "shangpuxi-tp2")
	old, _ := ts.roomToken(signIn, "R1")
	var oldView struct{ Token string }
	if code := ts.call("POST", "/api/v1/sessions/R1/view-token", signIn, nil, &oldView); code != 200 {
		t.Fatalf("view token: %d", code)
	}
	live := ts.watch(old.Token)
	live.waitFor(t, "a refresh token", isRefresh)
	oldRefresh := live.lastRefresh()

	refuses := func(when string, tokens map[string]string) {
		t.Helper()
		for name, tok := range tokens {
			if ok, _ := ts.joins(tok); ok {
				t.Errorf("%s: the %s still joins", when, name)
			}
			if code := ts.call("GET", "/api/v1/rooms/class-R1/class", tok, nil, nil); code != http.StatusUnauthorized {
				t.Errorf("%s: class state with the %s: HTTP %d, want 401", when, name, code)
			}
			if code := ts.call("POST", "/api/v1/rooms/class-R1/hand", tok, map[string]bool{"raised": true}, nil); code != http.StatusUnauthorized {
				t.Errorf("%s: raising a hand with the %s: HTTP %d, want 401", when, name, code)
			}
		}
	}
	account := func(body string) {
		t.Helper()
		if code := ts.call("PUT", "/api/v1/accounts/T2", adminKey, body, nil); code != 200 {
			t.Fatalf("PUT %s: HTTP %d", body, code)
		}
	}

	// A new password: the live participant is disconnected, every older token refused.
	account(`{"kind": "classroom", "classroom": "T2", "password": "a-new-password"}`)
	if !ts.gone("class-R1", "T2") {
		t.Error("T2 is still in the room after its password changed")
	}
	if _, ok := eventually(15*time.Second, live.isClosed); !ok {
		t.Error("T2's connection is still open after its password changed")
	}
	refuses("after the password change", map[string]string{"room token": old.Token, "refresh token": oldRefresh, "view token": oldView.Token})

	// Tokens issued after the change, and what the room layer refreshes from them, work.
	fresh, code := ts.roomToken(ts.login("T2", "a-new-password"), "R1")
	if code != 200 {
		t.Fatalf("room token after the change: %d", code)
	}
	live = ts.watch(fresh.Token)
	live.waitFor(t, "a refresh token", isRefresh)
	freshRefresh := live.lastRefresh()
	for name, tok := range map[string]string{"new room token": fresh.Token, "its refresh token": freshRefresh} {
		if code := ts.call("GET", "/api/v1/rooms/class-R1/class", tok, nil, nil); code != 200 {
			t.Errorf("class state with the %s: HTTP %d, want 200", name, code)
		}
	}

	// Disabling the account ends them too, and enabling it again brings none back.
	account(`{"kind": "classroom", "classroom": "T2", "disabled": true}`)
	if !ts.gone("class-R1", "T2") {
		t.Error("T2 is still in the room after its account was disabled")
	}
	if _, ok := eventually(15*time.Second, live.isClosed); !ok {
		t.Error("T2's connection is still open after its account was disabled")
	}
	refuses("while disabled", map[string]string{"room token": fresh.Token, "refresh token": freshRefresh})
	account(`{"kind": "classroom", "classroom": "T2"}`)
	refuses("after enabling the account again", map[string]string{"room token": fresh.Token, "refresh token": freshRefresh, "first room token": old.Token})
	again, code := ts.roomToken(ts.login("T2", "a-new-password"), "R1")
	if code != 200 {
		t.Fatalf("room token after enabling the account: %d", code)
	}
	if ok, why := ts.joins(again.Token); !ok {
		t.Errorf("a room token issued after the account was enabled again does not join: %s", why)
	}
	// Importing the account with the password it has changes nothing.
	account(`{"kind": "classroom", "classroom": "T2", "password": "a-new-password"}`)
	if ok, why := ts.joins(again.Token); !ok {
		t.Errorf("a room token no longer joins after the account was imported with its own password: %s", why)
	}
}

// TestRevokedTeacherBeyondRoomAPIAndRecordings: the teacher's room token moderates through
// the Room API and lists the class's recordings until its account's password changes; then
// both refuse it, as joins and the classroom API do.
func TestRevokedTeacherBeyondRoomAPIAndRecordings(t *testing.T) {
	ts := startClass(t, "R2", func(c *config.Config) { c.Recording.Enabled = true })
	teacher, code := ts.roomToken(ts.login("M1", "music-master-1"), "R2")
	if code != 200 {
		t.Fatalf("teacher's room token: %d", code)
	}
	ts.connect(teacher.Token) // the class's room exists while the teacher is in it
	access := func() (twirpCode, recordingsCode int) {
		t.Helper()
		req, err := http.NewRequest("POST", ts.http+"/twirp/livekit.RoomService/ListParticipants", strings.NewReader(`{"room": "class-R2"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+teacher.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		twirpCode = resp.StatusCode
		recordingsCode = ts.call("GET", "/api/v1/rooms/class-R2/recordings", teacher.Token, nil, nil)
		return twirpCode, recordingsCode
	}
	if tw, rec := access(); tw != 200 || rec != 200 {
		t.Fatalf("before the change: Room API HTTP %d, recordings HTTP %d; want 200 and 200", tw, rec)
	}
	if code := ts.call("PUT", "/api/v1/accounts/M1", adminKey, `{"kind": "classroom", "classroom": "M1", "password": "another-password"}`, nil); code != 200 {
		t.Fatalf("password change: %d", code)
	}
	if tw, rec := access(); tw != http.StatusUnauthorized || rec != http.StatusUnauthorized {
		t.Fatalf("after the password change: Room API HTTP %d, recordings HTTP %d; want 401 and 401", tw, rec)
	}
}
