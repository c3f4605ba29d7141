package classroom

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sanke-edu/sanke/classroom/model"
	"github.com/sanke-edu/sanke/signaling"
)

// Sign-in defences. A password check costs tens of milliseconds of CPU (bcrypt) and anyone
// who reaches the port may ask for one. Nothing a stranger does can keep an account's owner
// out: there is no account-wide lock or slow-down, only budgets of the one who asks.
//
//   - Each client address (an IPv6 /64) gets LoginPerMinute attempts at once and
//     LoginPerMinute a minute after that, whatever accounts it tries.
//   - loginPairMaxFailures wrong passwords for one account from one address lock that pair
//     for loginWindow (429 + Retry-After). Guessing from many addresses gets each of them
//     that many tries; the owner at any other address signs in as usual.
//   - A known device is one that signed in to the account before: the answer to a
//     successful sign-in carries a device token (device.go) that the client sends with its
//     next sign-ins. Its attempts are counted against the device (LoginPerMinute, and
//     loginPairMaxFailures failures lock the device for loginWindow), not against the
//     address. A school's NAT address is shared with strangers: five wrong passwords from
//     anyone behind it lock (account, NAT address), which the address alone cannot tell
//     apart from the teacher's own classroom PC; the device token can. The teacher's
//     browser keeps signing in while strangers behind the same address are locked out; a
//     new or wiped browser waits out the 15 minutes, or signs in from another address.
//   - At most LoginConcurrency checks run at once, a few more wait up to loginMaxWait, the
//     rest are refused at once (503 + Retry-After). A share of that capacity
//     (loginReservedShare, at least one check) is kept for known sign-ins: a known device,
//     or an (account, address) pair that signed in within loginKnownFor. Guessing from any
//     number of addresses uses only the rest, so a classroom at its usual address, or with
//     its browser, is never refused for lack of capacity by strangers.
//   - Failed and refused attempts are audited with the address (refusals.go bounds them).
const (
	loginMaxBody         = 4 << 10
	loginWindow          = 15 * time.Minute
	loginPairMaxFailures = 5
	loginKnownFor        = 30 * 24 * time.Hour
	// loginMaxTracked bounds the tables of failures (per address, per pair, per device); when
	// one is full, expired entries go first, then arbitrary ones.
	loginMaxTracked = 10000
	// loginMaxKnown bounds the table of pairs that signed in (only a correct password adds
	// one, so strangers cannot push the classrooms out of it).
	loginMaxKnown      = 50000
	loginWaitersPer    = 4 // waiting checks per running one
	loginMaxWait       = 2 * time.Second
	loginReservedShare = 4 // a quarter of the checks are kept for known sign-ins
	// maxAccountID is the longest account ID the dataset accepts (model IDs: 64 characters).
	maxAccountID = 64
)

// loginGuard keeps the state of the sign-in defences. All of it is bounded.
type loginGuard struct {
	addrs   *keyedLimiter // attempts per client address
	devices *keyedLimiter // attempts per known device (account + device id)
	// One element per running password check: shared ones, and reserved ones that only
	// known sign-ins use; and one per check waiting for a slot.
	shared, reserved            chan struct{}
	sharedWaiters, knownWaiters chan struct{}

	mu       sync.Mutex
	failures map[pairKey][]time.Time // recent failures, oldest first, at most loginPairMaxFailures
	signedIn map[pairKey]time.Time   // (account, address) -> last successful sign-in
}

// pairKey names an account and who tries it: a client address, or a device ("device:" + id).
type pairKey struct{ account, from string }

func newLoginGuard(perMinute, concurrency int) *loginGuard {
	if perMinute <= 0 {
		perMinute = 30
	}
	if concurrency <= 0 {
		concurrency = runtime.GOMAXPROCS(0)
	}
	reserved := max(1, concurrency/loginReservedShare)
	shared := max(1, concurrency-reserved)
	return &loginGuard{
		addrs: newKeyedLimiter(perMinute, perMinute), devices: newKeyedLimiter(perMinute, perMinute),
		shared: make(chan struct{}, shared), reserved: make(chan struct{}, reserved),
		sharedWaiters: make(chan struct{}, shared*loginWaitersPer), knownWaiters: make(chan struct{}, reserved*loginWaitersPer),
		failures: map[pairKey][]time.Time{}, signedIn: map[pairKey]time.Time{},
	}
}

// locked says how long a pair (or a device) stays locked out of its account, if it is.
func (g *loginGuard) locked(k pairKey, now time.Time) (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fs := recent(g.failures[k], now)
	if len(fs) < loginPairMaxFailures {
		return 0, false
	}
	g.failures[k] = fs
	return fs[0].Add(loginWindow).Sub(now), true
}

// knownPair reports whether the account signed in from addr within loginKnownFor.
func (g *loginGuard) knownPair(account, addr string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.signedIn[pairKey{account, addr}]
	return ok && now.Sub(t) < loginKnownFor
}

// recent drops the failures older than loginWindow.
func recent(fs []time.Time, now time.Time) []time.Time {
	for len(fs) > 0 && now.Sub(fs[0]) >= loginWindow {
		fs = fs[1:]
	}
	return fs
}

// record counts a password check's outcome for who tried (a pair or a device) and, on
// success, remembers the (account, address) pair as known.
func (g *loginGuard) record(k pairKey, account, addr string, ok bool, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ok {
		delete(g.failures, k)
		delete(g.failures, pairKey{account, addr})
		p := pairKey{account, addr}
		if _, seen := g.signedIn[p]; !seen {
			makeRoom(g.signedIn, loginMaxKnown, func(t time.Time) bool { return now.Sub(t) >= loginKnownFor })
		}
		g.signedIn[p] = now
		return
	}
	fs, tracked := g.failures[k]
	if !tracked {
		makeRoom(g.failures, loginMaxTracked, func(fs []time.Time) bool { return len(recent(fs, now)) == 0 })
	}
	fs = append(recent(fs, now), now)
	if len(fs) > loginPairMaxFailures {
		fs = fs[len(fs)-loginPairMaxFailures:]
	}
	g.failures[k] = fs
}

// acquire takes a password-check slot: a shared one, or for a known sign-in also a reserved
// one. When none is free it waits at most loginMaxWait, behind a bounded number of others
// (unknown sign-ins and known ones are counted apart). It returns the function that gives
// the slot back, or false when the server is busy.
func (g *loginGuard) acquire(ctx context.Context, known bool) (func(), bool) {
	shared, reserved, waiters := g.shared, g.reserved, g.sharedWaiters
	if known {
		waiters = g.knownWaiters
	} else {
		reserved = nil // never ready
	}
	select {
	case shared <- struct{}{}:
		return func() { <-shared }, true
	case reserved <- struct{}{}:
		return func() { <-reserved }, true
	default:
	}
	select {
	case waiters <- struct{}{}:
		defer func() { <-waiters }()
	default:
		return nil, false
	}
	t := time.NewTimer(loginMaxWait)
	defer t.Stop()
	select {
	case shared <- struct{}{}:
		return func() { <-shared }, true
	case reserved <- struct{}{}:
		return func() { <-reserved }, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}

// clientAddr is the address a request comes from (see signaling.ClientAddress) and the key
// its sign-in budget is kept under: the address itself, or for IPv6 its /64 (one host
// usually has a whole /64 to choose addresses from).
func (s *Service) clientAddr(r *http.Request) (addr, key string) {
	addr = signaling.ClientAddress(r, s.cfg.TrustProxyHeaders)
	ip := net.ParseIP(addr)
	switch {
	case ip == nil:
		if len(addr) > 64 {
			addr = addr[:64]
		}
		return addr, addr
	case ip.To4() != nil:
		return ip.String(), ip.String()
	default:
		return ip.String(), ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
}

func (s *Service) handleLogin(w http.ResponseWriter, r *http.Request) {
	addr, key := s.clientAddr(r)
	now := s.clock.Now()
	var req struct {
		Account  string `json:"account"`
		Password string `json:"password"`
		Device   string `json:"device"`
	}
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	account := req.Account
	if utf8.RuneCountInString(account) > maxAccountID {
		account = "\x00too long" // cannot exist; one key for all of them
	}
	// Who is trying: a known device of this account, or an address.
	device, isDevice := s.deviceID(account, req.Device, now)
	who, budget, budgetKey := pairKey{account, key}, s.logins.addrs, key
	if isDevice {
		who, budget, budgetKey = pairKey{account, "device:" + device}, s.logins.devices, account+"\x00"+device
	}
	if wait, ok := budget.allow(budgetKey, now); !ok {
		s.auditRefusal(r.Context(), "address:"+addr, "account.login.throttled", "", "", "too many sign-in attempts from this address or device")
		tooMany(w, http.StatusTooManyRequests, wait, "too many sign-in attempts from here; retry later")
		return
	}
	if wait, locked := s.logins.locked(who, now); locked {
		s.auditRefusal(r.Context(), "address:"+addr, "account.login.throttled", "", "", "account="+quoteTrunc(req.Account))
		tooMany(w, http.StatusTooManyRequests, wait, "too many failed sign-ins to this account from here; retry later")
		return
	}
	var acc *model.Account
	ok := false
	if account == req.Account {
		release, got := s.logins.acquire(r.Context(), isDevice || s.logins.knownPair(account, key, now))
		if !got {
			tooMany(w, http.StatusServiceUnavailable, time.Second, "the server is busy checking passwords; retry in a second")
			return
		}
		acc = s.Index().Account(req.Account)
		ok = checkPassword(acc, req.Password, s.dummyHash)
		release()
	}
	s.logins.record(who, account, key, ok, now)
	if !ok {
		s.auditRefusal(r.Context(), "address:"+addr, "account.login.failed", "", "", "account="+quoteTrunc(req.Account))
		writeError(w, http.StatusUnauthorized, "wrong account or password")
		return
	}
	tok, exp, err := s.signInToken(r.Context(), acc)
	if err != nil {
		writeErr(w, err)
		return
	}
	if !isDevice {
		device = randomID()
	}
	s.audit(r.Context(), "account:"+acc.ID, "account.login", "", "", "address="+addr)
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "expires_at": exp.UTC().Format(time.RFC3339), "account": publicAccount(*acc),
		"device": s.deviceToken(acc.ID, device, now)})
}
