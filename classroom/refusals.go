package classroom

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"
)

// Refusals that anyone reaching the port can cause (a wrong password, a room token claiming
// an account, a token asked for a session the account is not in) are audited, but they must not grow the audit log without bound: up to
// refusalAuditBurst entries are written at once, then one every refusalAuditEvery (8,640 a
// day at most); the others are counted and the count is written with the next entry of the
// same action.
const (
	refusalAuditEvery = 10 * time.Second
	refusalAuditBurst = 100
)

// refusalAudit is the budget of refusal entries in the audit log.
type refusalAudit struct {
	mu         sync.Mutex
	lim        *rate.Limiter
	suppressed map[string]int // action -> entries left out since the last one written
}

func newRefusalAudit() *refusalAudit {
	return &refusalAudit{lim: rate.NewLimiter(rate.Every(refusalAuditEvery), refusalAuditBurst), suppressed: map[string]int{}}
}

// take reports whether an entry of action may be written at now, and how many were left out
// before it. The map holds one counter per action name, a fixed set in the code.
func (a *refusalAudit) take(action string, now time.Time) (bool, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.lim.AllowN(now, 1) {
		a.suppressed[action]++
		return false, 0
	}
	n := a.suppressed[action]
	delete(a.suppressed, action)
	return true, n
}

// auditRefusal writes a refusal to the audit log within the refusal budget.
func (s *Service) auditRefusal(ctx context.Context, actor, action, session, roomName, detail string) {
	ok, left := s.refusals.take(action, s.clock.Now())
	if !ok {
		return
	}
	if left > 0 {
		detail += fmt.Sprintf(" (%d more since the previous entry, left out)", left)
	}
	s.audit(ctx, actor, action, session, roomName, detail)
}

// maxQuoted bounds the bytes of a client-supplied value written to the audit log.
const maxQuoted = 64

// quoteTrunc quotes a client-supplied value for the audit log: cut to maxQuoted bytes (on a
// character boundary) and escaped, so that it can neither bloat nor forge log lines.
func quoteTrunc(v string) string {
	if len(v) <= maxQuoted {
		return strconv.Quote(v)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return strconv.Quote(v[:cut]) + "..."
}
