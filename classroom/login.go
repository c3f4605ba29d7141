package classroom

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/sanke-edu/sanke/classroom/model"
	"github.com/sanke-edu/sanke/signaling"
)

// Sign-in defences. A password check costs tens of milliseconds of CPU (bcrypt) and anyone
// who reaches the port may ask for one, so:
//
//   - each client address gets LoginPerMinute attempts at once and LoginPerMinute a minute
//     after that, whatever accounts it tries;
//   - at most LoginConcurrency checks run at once; a few more wait up to loginMaxWait, the
//     rest are refused at once (503 + Retry-After) rather than queued;
//   - an account is never locked for everyone. loginPairMaxFailures wrong passwords from one
//     address lock that address out of that account for loginWindow: a teacher at another
//     address signs in as usual. Guessing from many addresses (loginSlowAfter failures of
//     one account in loginWindow) slows the account down, to one attempt every
//     loginSlowEvery, for addresses it never signed in from; the addresses where it signed
//     in during the last loginKnownFor (its school) are never slowed down.
const (
	loginMaxBody         = 4 << 10
	loginWindow          = 15 * time.Minute
	loginPairMaxFailures = 5
	loginSlowAfter       = 20
	loginSlowEvery       = 10 * time.Second
	loginKnownAddrs      = 8
	loginKnownFor        = 30 * 24 * time.Hour
	// loginMaxTracked bounds each table of the guard (addresses, account+address pairs,
	// accounts); when one is full, expired entries go first, then arbitrary ones.
	loginMaxTracked = 10000
	loginWaitersPer = 4 // waiting checks per running one
	loginMaxWait    = 2 * time.Second
	// maxAccountID is the longest account ID the dataset accepts (model IDs: 64 characters).
	maxAccountID = 64
)

// loginGuard keeps the state of the sign-in defences. All of it is bounded.
type loginGuard struct {
	perMinute  int
	slots      chan struct{} // one per running password check
	waiting    atomic.Int32
	maxWaiting int32
	addrs      *keyedLimiter // attempts per client address

	mu       sync.Mutex
	pairs    map[pairKey][]time.Time // recent failures, oldest first, at most loginPairMaxFailures
	accounts map[string]*accountState
}

type pairKey struct{ account, addr string }

type accountState struct {
	failures []time.Time          // the last loginSlowAfter failures, oldest first
	slow     *rate.Limiter        // attempts from unknown addresses while guessed at
	known    map[string]time.Time // address -> last successful sign-in
	last     time.Time
}

func newLoginGuard(perMinute, concurrency int) *loginGuard {
	if perMinute <= 0 {
		perMinute = 30
	}
	if concurrency <= 0 {
		concurrency = runtime.GOMAXPROCS(0)
	}
	return &loginGuard{
		perMinute: perMinute, slots: make(chan struct{}, concurrency), maxWaiting: int32(concurrency * loginWaitersPer),
		addrs: newKeyedLimiter(perMinute, perMinute), pairs: map[pairKey][]time.Time{}, accounts: map[string]*accountState{},
	}
}

// allowAddress takes one attempt from an address's budget, or says how long to wait.
func (g *loginGuard) allowAddress(addr string, now time.Time) (time.Duration, bool) {
	return g.addrs.allow(addr, now)
}

// admit decides whether an address may try an account's password now.
func (g *loginGuard) admit(account, addr string, now time.Time) (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := pairKey{account, addr}
	if fs := recent(g.pairs[k], now); len(fs) >= loginPairMaxFailures {
		g.pairs[k] = fs
		return fs[0].Add(loginWindow).Sub(now), false
	}
	a := g.accounts[account]
	if a == nil || !a.guessedAt(now) || a.knows(addr, now) {
		return 0, true
	}
	if a.slow == nil {
		a.slow = rate.NewLimiter(rate.Every(loginSlowEvery), 1)
	}
	return reserve(a.slow, now)
}

// recent drops the failures older than loginWindow.
func recent(fs []time.Time, now time.Time) []time.Time {
	for len(fs) > 0 && now.Sub(fs[0]) >= loginWindow {
		fs = fs[1:]
	}
	return fs
}

// guessedAt reports whether the account failed loginSlowAfter times within loginWindow.
func (a *accountState) guessedAt(now time.Time) bool {
	return len(a.failures) >= loginSlowAfter && now.Sub(a.failures[0]) < loginWindow
}

// knows reports whether the account signed in from addr within loginKnownFor.
func (a *accountState) knows(addr string, now time.Time) bool {
	t, ok := a.known[addr]
	return ok && now.Sub(t) < loginKnownFor
}

// record counts a password check's outcome.
func (g *loginGuard) record(account, addr string, ok bool, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := pairKey{account, addr}
	a := g.accounts[account]
	if a == nil {
		makeRoom(g.accounts, loginMaxTracked, func(a *accountState) bool {
			return now.Sub(a.last) >= loginKnownFor || (len(a.known) == 0 && now.Sub(a.last) >= loginWindow)
		})
		a = &accountState{known: map[string]time.Time{}}
		g.accounts[account] = a
	}
	a.last = now
	if ok {
		delete(g.pairs, k)
		if _, seen := a.known[addr]; !seen {
			makeRoom(a.known, loginKnownAddrs, func(t time.Time) bool { return now.Sub(t) >= loginKnownFor })
		}
		a.known[addr] = now
		return
	}
	a.failures = append(a.failures, now)
	if len(a.failures) > loginSlowAfter {
		a.failures = a.failures[len(a.failures)-loginSlowAfter:]
	}
	fs, tracked := g.pairs[k]
	if !tracked {
		makeRoom(g.pairs, loginMaxTracked, func(fs []time.Time) bool { return len(recent(fs, now)) == 0 })
	}
	fs = append(recent(fs, now), now)
	if len(fs) > loginPairMaxFailures {
		fs = fs[len(fs)-loginPairMaxFailures:]
	}
	g.pairs[k] = fs
}

// acquire takes a password-check slot, waiting at most loginMaxWait behind a bounded number
// of others; false means the server is busy.
func (g *loginGuard) acquire(ctx context.Context) bool {
	select {
	case g.slots <- struct{}{}:
		return true
	default:
	}
	if g.waiting.Add(1) > g.maxWaiting {
		g.waiting.Add(-1)
		return false
	}
	defer g.waiting.Add(-1)
	t := time.NewTimer(loginMaxWait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func (g *loginGuard) release() { <-g.slots }

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
	if wait, ok := s.logins.allowAddress(key, now); !ok {
		s.auditRefusal(r.Context(), "address:"+addr, "account.login.throttled", "", "", "too many sign-in attempts from this address")
		tooMany(w, http.StatusTooManyRequests, wait, "too many sign-in attempts from this address; retry later")
		return
	}
	var req struct {
		Account  string `json:"account"`
		Password string `json:"password"`
	}
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	account := req.Account
	if utf8.RuneCountInString(account) > maxAccountID {
		account = "\x00too long" // cannot exist; one key for all of them
	}
	if wait, ok := s.logins.admit(account, key, now); !ok {
		s.auditRefusal(r.Context(), "address:"+addr, "account.login.throttled", "", "", "account="+quoteTrunc(req.Account))
		tooMany(w, http.StatusTooManyRequests, wait, "too many failed sign-ins to this account from here; retry later")
		return
	}
	var acc *model.Account
	ok := false
	if account == req.Account {
		if !s.logins.acquire(r.Context()) {
			tooMany(w, http.StatusServiceUnavailable, time.Second, "the server is busy checking passwords; retry in a second")
			return
		}
		acc = s.Index().Account(req.Account)
		ok = checkPassword(acc, req.Password, s.dummyHash)
		s.logins.release()
	}
	s.logins.record(account, key, ok, now)
	if !ok {
		s.auditRefusal(r.Context(), "address:"+addr, "account.login.failed", "", "", "account="+quoteTrunc(req.Account))
		writeError(w, http.StatusUnauthorized, "wrong account or password")
		return
	}
	tok, exp, err := s.signInToken(acc)
	if err != nil {
		writeErr(w, err)
		return
	}
	s.audit(r.Context(), "account:"+acc.ID, "account.login", "", "", "address="+addr)
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "expires_at": exp.UTC().Format(time.RFC3339), "account": publicAccount(*acc)})
}
