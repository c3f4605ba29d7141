package classroom_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/internal/config"
)

// TestLogoutEndsSignInToken checks POST /api/v1/logout (等保: a sign-in can be ended): the
// token presented stops working at once and another sign-in of the account does not; the
// server keeps a bounded number of sign-ins per account (the oldest ends first) and forgets
// them when they expire.
func TestLogoutEndsSignInToken(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	ts := startServer(t, clock, func(c *config.Config) {
		c.Classroom.Dataset = []string{"sample/sample.yaml"}
		c.Classroom.LoginPerMinute = 1000
	})
	me := func(tok string) int { return ts.call("GET", "/api/v1/me", tok, nil, nil) }
	pc, phone := ts.login("T1", "houtang-tp-1"), ts.login("T1", "houtang-tp-1")
	if code := ts.call("POST", "/api/v1/logout", pc, nil, nil); code != 200 {
		t.Fatalf("logout: HTTP %d", code)
	}
	if code := me(pc); code != http.StatusUnauthorized {
		t.Errorf("/me with a signed-out token: HTTP %d, want 401", code)
	}
	if code := ts.call("POST", "/api/v1/logout", pc, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("a second logout with the same token: HTTP %d, want 401", code)
	}
	if code := me(phone); code != 200 {
		t.Errorf("/me with the account's other sign-in: HTTP %d, want 200", code)
	}
	if code := ts.call("POST", "/api/v1/logout", adminKey, nil, nil); code != http.StatusForbidden {
		t.Errorf("logout with the admin key: HTTP %d, want 403", code)
	}

	// Bounded: many sign-ins of one account keep only the newest.
	var toks []string
	for range 40 {
		toks = append(toks, ts.login("T1", "houtang-tp-1"))
	}
	rows := func() int {
		var n int
		if err := ts.svc.Store().DB().QueryRowContext(context.Background(), `SELECT count(*) FROM signin_session`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := rows(); n != 32 {
		t.Errorf("%d sign-ins kept after 42 sign-ins of one account, want 32", n)
	}
	if code := me(toks[0]); code != http.StatusUnauthorized {
		t.Errorf("/me with the oldest of 40 sign-ins: HTTP %d, want 401", code)
	}
	if code := me(toks[39]); code != 200 {
		t.Errorf("/me with the newest sign-in: HTTP %d, want 200", code)
	}
	// Expired sign-ins are forgotten (at the next sign-in) and refused.
	clock.Set(clock.Now().Add(13 * time.Hour))
	last := ts.login("T2", "shangpuxi-tp2")
	if n := rows(); n != 1 {
		t.Errorf("%d sign-ins kept 13 h later, want 1 (the new one)", n)
	}
	if code := me(toks[39]); code != http.StatusUnauthorized {
		t.Errorf("/me with an expired sign-in: HTTP %d, want 401", code)
	}
	if code := me(last); code != 200 {
		t.Errorf("/me with the new sign-in: HTTP %d, want 200 (%s)", code, strconv.Itoa(code))
	}
}
