package classroom_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/internal/config"
)

// TestClassControlBounded is the regression test of issue 12 finding F4: a call that changes
// nothing (raising a raised hand, calling on who is called on, the mode the class is in)
// tells nobody anything and signs no token, and one caller's class control requests are
// rate-limited (429 with Retry-After) so that a teaching point cannot flood the class.
func TestClassControlBounded(t *testing.T) {
	clock := &fakeClock{t: time.Now()} // frozen: no budget refills during the test
	ts := startServer(t, clock, func(c *config.Config) {
		c.Classroom.Dataset = []string{"sample/sample.yaml"}
		c.Classroom.ControlPerMinute = 30
		c.Classroom.TokenPerMinute = 8
	})
	now := clock.Now()
	sessions := fmt.Sprintf("sessions:\n  - {id: R1, course_type: 1, pairing: P-MUSIC, start: %q, end: %q}\n",
		now.Add(-5*time.Minute).Format(time.RFC3339), now.Add(40*time.Minute).Format(time.RFC3339))
	if code := ts.call("POST", "/api/v1/import", adminKey, sessions, nil); code != 200 {
		t.Fatalf("import: %d", code)
	}
	m1 := ts.login("M1", "music-master-1")
	teacher, _ := ts.roomToken(m1, "R1")
	t2, _ := ts.roomToken(ts.login("T2", "shangpuxi-tp2"), "R1")
	class := ts.watch(teacher.Token)
	pupil := ts.watch(t2.Token)
	class.waitFor(t, "T2's arrival", updateOf("T2", "", ""))
	pupil.waitFor(t, "T2's first refresh token", isRefresh)
	updates0, refresh0 := class.count(updateOf("T2", "", "")), pupil.count(isRefresh)

	hand := func(raised bool) int {
		return ts.call("POST", "/api/v1/rooms/class-R1/hand", t2.Token, map[string]bool{"raised": raised}, nil)
	}
	// 3 no-ops, a raise, 3 no-ops, a lower: two changes.
	for _, raised := range []bool{false, false, false, true, true, true, true, false} {
		if code := hand(raised); code != 200 {
			t.Fatalf("hand raised=%v: HTTP %d", raised, code)
		}
	}
	// Call on T2 twice, the mode the class is in twice: one change. Then T2 raises its hand
	// (the call lowered it): the last change, whose arrival says everything before it came.
	for range 2 {
		if code := ts.call("POST", "/api/v1/rooms/class-R1/call-on", teacher.Token, map[string]string{"identity": "T2"}, nil); code != 200 {
			t.Fatalf("call-on: %d", code)
		}
		if code := ts.call("PUT", "/api/v1/rooms/class-R1/mode", teacher.Token, map[string]string{"mode": "lecture"}, nil); code != 200 {
			t.Fatalf("mode: %d", code)
		}
	}
	if code := hand(true); code != 200 {
		t.Fatalf("hand: HTTP %d", code)
	}
	raisedTwice := func(w *watcher) func() bool {
		return func() bool { return w.count(updateOf("T2", "sanke.hand", "raised")) >= 2 }
	}
	if _, ok := eventually(15*time.Second, raisedTwice(class)); !ok {
		t.Fatal("the teacher never saw T2's last raised hand")
	}
	if got := class.count(updateOf("T2", "", "")) - updates0; got != 4 {
		t.Errorf("8 hand calls (2 changes), 2 call-ons, 2 unchanged modes and a raise sent the teacher %d updates about T2, want 4", got)
	}
	if _, ok := eventually(15*time.Second, func() bool { return raisedTwice(pupil)() && pupil.count(isRefresh) >= refresh0+4 }); !ok {
		t.Fatalf("T2 got %d refresh tokens for 4 changes", pupil.count(isRefresh)-refresh0)
	}
	if got := pupil.count(isRefresh) - refresh0; got != 4 {
		t.Errorf("T2 was sent %d refresh tokens for 4 changes, want 4", got)
	}

	// A flood of hand raises: the caller's budget (it used 9 of 10), then 429.
	ok, limited, retry := 0, 0, ""
	for i := range 200 {
		var resp struct{ Error string }
		req, _ := http.NewRequest("POST", ts.http+"/api/v1/rooms/class-R1/hand", strings.NewReader(fmt.Sprintf(`{"raised": %v}`, i%2 == 0)))
		req.Header.Set("Authorization", "Bearer "+t2.Token)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = r.Body.Close()
		switch r.StatusCode {
		case 200:
			ok++
		case http.StatusTooManyRequests:
			limited++
			retry = r.Header.Get("Retry-After")
		default:
			t.Fatalf("flood call %d: HTTP %d %q", i, r.StatusCode, resp.Error)
		}
	}
	if ok != 1 || limited != 199 || retry == "" {
		t.Errorf("200 hand calls after 9: %d accepted, %d refused (Retry-After %q); want 1 and 199 with Retry-After", ok, limited, retry)
	}
	// The teacher's own budget is its own; the tokens of an account have theirs.
	if code := ts.call("PUT", "/api/v1/rooms/class-R1/mode", teacher.Token, map[string]string{"mode": "free"}, nil); code != 200 {
		t.Errorf("the teacher's mode change after T2's flood: HTTP %d, want 200", code)
	}
	codes := map[int]int{}
	for range 10 {
		_, code := ts.roomToken(m1, "R1")
		codes[code]++
	}
	if codes[200] != 7 || codes[http.StatusTooManyRequests] != 3 { // one was taken above
		t.Errorf("10 more room tokens for one account: %v, want 7 issued and 3 refused", codes)
	}
	if class.isClosed() {
		t.Error("the teacher's connection was closed")
	}
}
