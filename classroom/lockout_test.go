package classroom_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/internal/config"
)

// TestStrangersCannotLockOut is the regression test of issue 12 finding F8: whatever
// strangers do, a classroom with its password signs in. Wrong passwords from many addresses
// (the red team's 20, then one more from a fresh address every second) leave a new address
// of the account's owner unaffected. Behind a school's NAT address, a stranger's five wrong
// passwords lock that address out of the account, but the classroom's browser, which signed
// in before and sends its device token, still signs in; a device token of another account
// or a forged one does not help, and a device that guesses is locked like an address.
func TestStrangersCannotLockOut(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	ts := startServer(t, clock, func(c *config.Config) {
		c.Classroom.Dataset = []string{"sample/sample.yaml"}
		c.Signal.TrustProxyHeaders = true
	})
	for i := range 20 {
		if a := ts.loginFrom("198.51.100."+strconv.Itoa(11+i/5), "T4", "wrong"); a.code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %+v", i, a)
		}
	}
	for i := range 10 {
		ts.loginFrom("198.51.100."+strconv.Itoa(40+i), "T4", "wrong")
		clock.Set(clock.Now().Add(time.Second))
		if a := ts.loginFrom("203.0.113."+strconv.Itoa(1+i), "T4", "longzhuang-4"); a.code != 200 {
			t.Errorf("T4 with its password from a new address after %d strangers' failures: %+v, want 200", 21+i, a)
		}
	}

	// A school NAT: T1's browser signs in, then a stranger behind the same address guesses.
	const nat = "203.0.113.200"
	browser := ts.loginFrom(nat, "T1", "houtang-tp-1")
	if browser.code != 200 || browser.Device == "" {
		t.Fatalf("T1 behind the NAT: %+v, want 200 with a device token", browser)
	}
	other := ts.loginFrom(nat, "T2", "shangpuxi-tp2")
	for i := range 5 {
		if a := ts.loginFrom(nat, "T1", "guess-"+strconv.Itoa(i)); a.code != http.StatusUnauthorized {
			t.Fatalf("stranger's guess %d: %+v", i, a)
		}
	}
	if a := ts.loginFrom(nat, "T1", "houtang-tp-1"); a.code != http.StatusTooManyRequests || a.retryAfter == "" {
		t.Errorf("T1 behind the NAT without its device token after a stranger's 5 failures: %+v, want 429", a)
	}
	for name, dev := range map[string]string{"another account's": other.Device, "a forged": browser.Device[:len(browser.Device)-2] + "xx"} {
		if a := ts.loginWith(nat, "T1", "houtang-tp-1", dev); a.code != http.StatusTooManyRequests {
			t.Errorf("T1 behind the NAT with %s device token: %+v, want 429", name, a)
		}
	}
	again := ts.loginWith(nat, "T1", "houtang-tp-1", browser.Device)
	if again.code != 200 || again.Device == "" {
		t.Fatalf("T1's browser (device token) behind the locked NAT address: %+v, want 200", again)
	}
	// A device that guesses is locked out of the account like an address.
	for i := range 5 {
		if a := ts.loginWith("192.0.2.1", "T1", "guess-"+strconv.Itoa(i), again.Device); a.code != http.StatusUnauthorized {
			t.Fatalf("guess %d with the device token: %+v", i, a)
		}
	}
	if a := ts.loginWith("192.0.2.2", "T1", "houtang-tp-1", again.Device); a.code != http.StatusTooManyRequests {
		t.Errorf("a device token after 5 wrong passwords with it: %+v, want 429", a)
	}
}

// TestSignInCapacityForKnown is the regression test of issue 12 finding F9: guessing from
// many addresses, each within its budget, fills the password checks anyone may use, but not
// those kept for known sign-ins: every sign-in of a classroom at the address it signed in
// from before succeeds.
func TestSignInCapacityForKnown(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: fills the password checks from many addresses")
	}
	ts := startServer(t, nil, func(c *config.Config) {
		c.Classroom.Dataset = []string{"sample/sample.yaml"}
		c.Classroom.PasswordCost = 8 // each check takes a few ms: strangers fill the slots
		c.Classroom.LoginPerMinute = 1000
		c.Signal.TrustProxyHeaders = true
	})
	const school = "203.0.113.10"
	if a := ts.loginFrom(school, "M1", "music-master-1"); a.code != 200 {
		t.Fatalf("M1 from its school: %+v", a)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var busy atomic.Int64
	for i := range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				body := `{"account": "nobody-` + strconv.Itoa(j%1000) + `", "password": "guess"}`
				req, _ := http.NewRequest("POST", ts.http+"/api/v1/login", strings.NewReader(body))
				req.Header.Set("X-Forwarded-For", "198.51.100."+strconv.Itoa(i))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					continue
				}
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusServiceUnavailable {
					busy.Add(1)
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	// Wait for the positive signal that strangers fill the checks: the server answers them 503.
	if _, ok := eventually(30*time.Second, func() bool { return busy.Load() >= 20 }); !ok {
		t.Fatalf("the strangers never filled the password checks (%d answered 503)", busy.Load())
	}
	codes := map[int]int{}
	for range 20 {
		codes[ts.loginFrom(school, "M1", "music-master-1").code]++
	}
	if codes[200] != 20 {
		t.Errorf("20 sign-ins of M1 from its school while strangers fill the checks: %v, want 20 answered 200", codes)
	}
}
