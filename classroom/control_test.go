package classroom_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"
)

// watcher is a participant joined over a raw websocket that keeps every message the server
// sends it, to count what a class sends each participant.
type watcher struct {
	ws *websocket.Conn

	mu     sync.Mutex
	msgs   []*livekit.SignalResponse
	closed bool
}

// watch joins with token over a raw websocket (no media) and records what the server sends;
// it returns once the participant is in the room (the join response arrived).
func (ts *testServer) watch(token string) *watcher {
	ts.t.Helper()
	ws, resp, err := ts.dialSignal(token)
	if err != nil {
		ts.t.Fatalf("websocket join: %v (%v)", err, resp)
	}
	w := &watcher{ws: ws}
	ts.t.Cleanup(func() { _ = ws.Close() })
	go func() {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				w.mu.Lock()
				w.closed = true
				w.mu.Unlock()
				return
			}
			var msg livekit.SignalResponse
			if proto.Unmarshal(data, &msg) == nil {
				w.mu.Lock()
				w.msgs = append(w.msgs, &msg)
				w.mu.Unlock()
			}
		}
	}()
	// In the room once the join response came: who joins later is announced by an update.
	if _, ok := eventually(15*time.Second, func() bool { return w.count(isJoin) > 0 || w.isClosed() }); !ok || w.isClosed() {
		ts.t.Fatal("no join response")
	}
	return w
}

func isJoin(m *livekit.SignalResponse) bool { return m.GetJoin() != nil }

// count returns how many messages match.
func (w *watcher) count(match func(*livekit.SignalResponse) bool) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, m := range w.msgs {
		if match(m) {
			n++
		}
	}
	return n
}

// lastRefresh returns the last refresh token received ("" when none).
func (w *watcher) lastRefresh() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	tok := ""
	for _, m := range w.msgs {
		if r := m.GetRefreshToken(); r != "" {
			tok = r
		}
	}
	return tok
}

// isClosed reports whether the server closed the connection.
func (w *watcher) isClosed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

// waitFor waits until a message matches (the positive signal that what came before it has
// arrived too: a websocket keeps order) and fails the test after 15 s.
func (w *watcher) waitFor(t *testing.T, what string, match func(*livekit.SignalResponse) bool) {
	t.Helper()
	if _, ok := eventually(15*time.Second, func() bool { return w.count(match) > 0 }); !ok {
		t.Fatalf("never received %s", what)
	}
}

// updateOf matches a participant update about identity; with attr set, one in which the
// attribute has value want.
func updateOf(identity, attr, want string) func(*livekit.SignalResponse) bool {
	return func(m *livekit.SignalResponse) bool {
		for _, p := range m.GetUpdate().GetParticipants() {
			if p.GetIdentity() == identity && (attr == "" || p.GetAttributes()[attr] == want) {
				return true
			}
		}
		return false
	}
}

func isRefresh(m *livekit.SignalResponse) bool { return m.GetRefreshToken() != "" }

// TestHiddenParticipantsLookAbsent is the regression test of issue 12 finding F10: a
// teacher's call-on and end-of-call answers about a hidden supervisor are the same whether
// the supervisor is in the room or not, and the same as for an identity nobody has.
func TestHiddenParticipantsLookAbsent(t *testing.T) {
	ts := startClass(t, "R1")
	teacher, _ := ts.roomToken(ts.login("M1", "music-master-1"), "R1")
	sup, code := ts.roomToken(ts.login("HH-SUP", "huaihua-supervisor"), "R1")
	if code != 200 {
		t.Fatalf("supervisor token: %d", code)
	}
	ts.watch(teacher.Token)
	probe := func(identity string) []string {
		var out []string
		for _, q := range []struct{ method, path string }{
			{"POST", "/api/v1/rooms/class-R1/call-on"},
			{"DELETE", "/api/v1/rooms/class-R1/call-on/" + url.PathEscape(identity)},
		} {
			var raw []byte
			code := ts.call(q.method, q.path, teacher.Token, map[string]string{"identity": identity}, &raw)
			out = append(out, fmt.Sprintf("%s %d %s", q.method, code, strings.ReplaceAll(string(raw), identity, "<identity>")))
		}
		return out
	}
	unknown := probe("supervisor-NOBODY")
	absent := probe(sup.Identity)
	ts.watch(sup.Token)
	if _, ok := eventually(15*time.Second, func() bool {
		_, err := ts.srv.Rooms().GetParticipant(context.Background(), "class-R1", sup.Identity)
		return err == nil
	}); !ok {
		t.Fatal("the supervisor did not join")
	}
	present := probe(sup.Identity)
	for i := range unknown {
		if absent[i] != unknown[i] || present[i] != unknown[i] {
			t.Errorf("answers differ:\n unknown identity: %s\n supervisor absent: %s\n supervisor present: %s", unknown[i], absent[i], present[i])
		}
	}
	if !strings.Contains(unknown[0], " 404 ") {
		t.Errorf("call-on of an unknown identity: %s, want 404", unknown[0])
	}
}
