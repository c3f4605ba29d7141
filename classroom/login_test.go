package classroom_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/classroom/store"
	"github.com/sanke-edu/sanke/internal/config"
)

// loginAnswer is what POST /api/v1/login answers.
type loginAnswer struct {
	code       int
	retryAfter string
	Token      string
	Device     string
	Error      string
}

// loginFrom signs in as a client at addr would through the trusted reverse proxy (which
// appends the peer it saw to X-Forwarded-For).
func (ts *testServer) loginFrom(addr, account, password string) loginAnswer {
	ts.t.Helper()
	return ts.loginWith(addr, account, password, "")
}

// loginWith is loginFrom with a device token (what a browser that signed in before sends).
func (ts *testServer) loginWith(addr, account, password, device string) loginAnswer {
	ts.t.Helper()
	fields := map[string]string{"account": account, "password": password}
	if device != "" {
		fields["device"] = device
	}
	body, _ := json.Marshal(fields)
	req, _ := http.NewRequest("POST", ts.http+"/api/v1/login", bytes.NewReader(body))
	req.Header.Set("X-Forwarded-For", addr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	a := loginAnswer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &a); err != nil {
		ts.t.Fatalf("login answer is not JSON: %d %q", resp.StatusCode, data)
	}
	return a
}

// auditOf returns the audit entries of an action.
func (ts *testServer) auditOf(action string) []store.AuditEntry {
	ts.t.Helper()
	var out []store.AuditEntry
	if code := ts.call("GET", "/api/v1/audit?action="+action, adminKey, nil, &out); code != 200 {
		ts.t.Fatalf("audit: %d", code)
	}
	return out
}

// TestSignInLimits is the regression test of issue 12 #4: the sign-in body is bounded (413),
// one address can try only so many sign-ins (429 with Retry-After, and a forged
// X-Forwarded-For entry does not escape it), wrong passwords from one address or from many
// do not lock the account for other addresses, and failed sign-ins are audited with the
// address, within a bounded budget.
func TestSignInLimits(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	ts := startServer(t, clock, func(c *config.Config) {
		c.Classroom.Dataset = []string{"sample/sample.yaml"}
		c.Classroom.LoginPerMinute = 5
		c.Signal.TrustProxyHeaders = true
	})

	// A huge password is refused before it is read, with or without Content-Length.
	huge := `{"account":"M1","password":"` + strings.Repeat("x", 5<<20) + `"}`
	var ans struct{ Error string }
	if code := ts.call("POST", "/api/v1/login", "", huge, &ans); code != http.StatusRequestEntityTooLarge || !strings.Contains(ans.Error, "bytes") {
		t.Errorf("5 MB sign-in body: HTTP %d %q, want 413 with the limit", code, ans.Error)
	}
	req, _ := http.NewRequest("POST", ts.http+"/api/v1/login", io.MultiReader(strings.NewReader(huge)))
	req.ContentLength = -1 // chunked
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&ans)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("5 MB chunked sign-in body: HTTP %d %q, want 413", resp.StatusCode, ans.Error)
	}

	// M1 signs in from its school; that address becomes known for the account.
	const school = "203.0.113.10"
	if a := ts.loginFrom(school, "M1", "music-master-1"); a.code != 200 {
		t.Fatalf("M1 from its school: %+v", a)
	}

	// An outsider's wrong passwords lock the account for the outsider only.
	const outsider = "198.51.100.1"
	for i := range 5 {
		if a := ts.loginFrom(outsider, "M1", "guess-"+strconv.Itoa(i)); a.code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %+v", i, a)
		}
	}
	if a := ts.loginFrom(outsider, "M1", "music-master-1"); a.code != http.StatusTooManyRequests || a.retryAfter == "" {
		t.Errorf("6th attempt from the outsider's address: %+v, want 429 with Retry-After", a)
	}
	if a := ts.loginFrom("203.0.113.20", "M1", "music-master-1"); a.code != 200 {
		t.Errorf("M1 from another address after an outsider's failures: %+v, want 200", a)
	}

	// One address gets LoginPerMinute attempts, whatever account it tries; a client-sent
	// X-Forwarded-For entry in front of the proxy's does not make it another address.
	const scanner = "198.51.100.2"
	for i := range 5 {
		if a := ts.loginFrom(scanner, "nobody-"+strconv.Itoa(i), "x"); a.code != http.StatusUnauthorized {
			t.Fatalf("attempt %d from the scanner: %+v", i, a)
		}
	}
	for _, xff := range []string{scanner, "192.0.2.77, " + scanner} {
		if a := ts.loginFrom(xff, "nobody", "x"); a.code != http.StatusTooManyRequests || a.retryAfter == "" {
			t.Errorf("attempt beyond the address's budget (X-Forwarded-For %q): %+v, want 429 with Retry-After", xff, a)
		}
	}
	clock.Set(clock.Now().Add(time.Minute))
	if a := ts.loginFrom(scanner, "nobody", "x"); a.code != http.StatusUnauthorized {
		t.Errorf("a minute later: %+v, want 401", a)
	}

	// Guessing T1's password from many addresses locks each of them out, never T1: its
	// school and any new address sign in at once.
	if a := ts.loginFrom("203.0.113.30", "T1", "houtang-tp-1"); a.code != 200 {
		t.Fatalf("T1 from its school: %+v", a)
	}
	for i := range 40 {
		if a := ts.loginFrom("198.51.100."+strconv.Itoa(100+i/5), "T1", "guess"); a.code != http.StatusUnauthorized {
			t.Fatalf("distributed guess %d: %+v", i, a)
		}
	}
	if a := ts.loginFrom("198.51.100.100", "T1", "guess"); a.code != http.StatusTooManyRequests {
		t.Errorf("a sixth guess from one of the guessing addresses: %+v, want 429", a)
	}
	for _, addr := range []string{"203.0.113.30", "203.0.113.31"} {
		if a := ts.loginFrom(addr, "T1", "houtang-tp-1"); a.code != 200 {
			t.Errorf("T1 from %s while guessed at: %+v, want 200", addr, a)
		}
	}

	// Failed sign-ins are audited with the address and the account as given (cut short).
	long := strings.Repeat("长", 200)
	ts.loginFrom("198.51.100.3", long, "x")
	failed := ts.auditOf("account.login.failed")
	var sawOutsider, sawLong bool
	for _, e := range failed {
		if e.Actor == "address:"+outsider && strings.Contains(e.Detail, `account="M1"`) {
			sawOutsider = true
		}
		if e.Actor == "address:198.51.100.3" {
			sawLong = true
			if len(e.Detail) > 200 || strings.Contains(e.Detail, long) {
				t.Errorf("an over-long account name is written whole: %d bytes", len(e.Detail))
			}
		}
	}
	if !sawOutsider || !sawLong {
		t.Errorf("failed sign-ins not audited with address and account: %+v", failed)
	}
	if len(ts.auditOf("account.login.throttled")) == 0 {
		t.Error("refused (throttled) sign-ins are not audited")
	}

	// The audit log does not grow with a flood of failures: past the budget they are counted.
	before := len(ts.auditOf("account.login.failed"))
	for i := range 120 {
		if a := ts.loginFrom("192.0.2."+strconv.Itoa(i), "flood-"+strconv.Itoa(i), "x"); a.code != http.StatusUnauthorized {
			t.Fatalf("flood attempt %d: %+v", i, a)
		}
	}
	after := ts.auditOf("account.login.failed")
	if n := len(after) - before; n >= 120 {
		t.Errorf("120 failed sign-ins wrote %d audit entries; want them bounded", n)
	}
	clock.Set(clock.Now().Add(time.Minute))
	ts.loginFrom("192.0.2.250", "flood-last", "x")
	after = ts.auditOf("account.login.failed")
	if last := after[len(after)-1]; !strings.Contains(last.Detail, "left out") {
		t.Errorf("the entry after a flood does not count what was left out: %+v", last)
	}
}
