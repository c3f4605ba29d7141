package classroom

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyedLimiter gives each key (a client address, a caller) a token bucket: burst requests at
// once, then perSecond. It keeps at most loginMaxTracked keys; a bucket that has been full
// again for a while is forgotten first (it is the same as a new one).
type keyedLimiter struct {
	perSecond rate.Limit
	burst     int
	refill    time.Duration // time for an empty bucket to be full again

	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

func newKeyedLimiter(perMinute, burst int) *keyedLimiter {
	perSecond := rate.Limit(float64(perMinute) / 60)
	return &keyedLimiter{perSecond: perSecond, burst: burst, m: map[string]*bucket{},
		refill: time.Duration(float64(burst) / float64(perSecond) * float64(time.Second))}
}

// allow takes one request from key's bucket at now, or says how long to wait for one.
func (k *keyedLimiter) allow(key string, now time.Time) (time.Duration, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	b := k.m[key]
	if b == nil {
		makeRoom(k.m, loginMaxTracked, func(b *bucket) bool { return now.Sub(b.last) > k.refill })
		b = &bucket{lim: rate.NewLimiter(k.perSecond, k.burst)}
		k.m[key] = b
	}
	b.last = now
	return reserve(b.lim, now)
}

// reserve takes a token from lim at now, or returns how long until one is available.
func reserve(lim *rate.Limiter, now time.Time) (time.Duration, bool) {
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// makeRoom keeps m under max entries before an insertion: when it is full, expired entries
// go, and if that is not enough an eighth of it (arbitrary entries, map order), so that a
// flood of new keys can neither grow it nor make every insertion sweep it.
func makeRoom[K comparable, V any](m map[K]V, max int, expired func(V) bool) {
	if len(m) < max {
		return
	}
	for k, v := range m {
		if expired(v) {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) < max-max/8 {
			return
		}
		delete(m, k)
	}
}

// tooMany answers 429 (or 503 when the server is busy) with Retry-After.
func tooMany(w http.ResponseWriter, status int, wait time.Duration, msg string) {
	secs := int((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	writeError(w, status, msg)
}

// Class control and tokens are bounded per caller, so that one participant cannot flood its
// class (every change is a participant update to everyone in the room and a refresh token
// signed for the participant) and one account cannot make the server sign, open rooms and
// write audit entries without end:
//
//   - a room participant (room token) makes controlBurst class control requests (hand,
//     call-on, end of a call, mode) at once, then ControlPerMinute a minute;
//   - an account makes TokenPerMinute requests for room tokens, view tokens and /me at once
//     and a minute (a supervisor's wall asks one token per live class as it opens).
//
// Administrators (the admin key, roomCreate) are not limited: the platform asks tokens on
// behalf of whole provinces. Requests that change nothing are answered without telling
// anyone (see controller).
const controlBurst = 10

// callerLimits holds the per-caller budgets.
type callerLimits struct {
	control *keyedLimiter
	tokens  *keyedLimiter
}

func newCallerLimits(controlPerMinute, tokenPerMinute int) *callerLimits {
	if controlPerMinute <= 0 {
		controlPerMinute = 30
	}
	if tokenPerMinute <= 0 {
		tokenPerMinute = 60
	}
	return &callerLimits{control: newKeyedLimiter(controlPerMinute, controlBurst), tokens: newKeyedLimiter(tokenPerMinute, tokenPerMinute)}
}

// limitControl takes a class control request of c (in roomName) from its budget, or answers
// 429 and returns false.
func (s *Service) limitControl(w http.ResponseWriter, c *caller, roomName string) bool {
	if c.admin {
		return true
	}
	if wait, ok := s.limits.control.allow(roomName+"\x00"+c.actor, s.clock.Now()); !ok {
		tooMany(w, http.StatusTooManyRequests, wait, "too many class control requests; retry later")
		return false
	}
	return true
}

// limitTokens takes a token or /me request of an account from its budget, or answers 429 and
// returns false.
func (s *Service) limitTokens(w http.ResponseWriter, c *caller) bool {
	if c.admin || c.account == nil {
		return true
	}
	if wait, ok := s.limits.tokens.allow(c.account.ID, s.clock.Now()); !ok {
		tooMany(w, http.StatusTooManyRequests, wait, "too many token requests from this account; retry later")
		return false
	}
	return true
}
