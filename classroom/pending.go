package classroom

import (
	"context"
	"time"

	"github.com/sanke-edu/sanke/classroom/store"
)

// maxPendingWrites bounds the joins and leaves kept while the database refuses them (a full
// disk, a locked file). Beyond it the oldest is dropped and logged: a dropped leave is closed
// at its last heartbeat when its session's room finishes or the server restarts.
const maxPendingWrites = 10000

// connWrite is a join (open set) or a leave the store refused, kept to be written again.
type connWrite struct {
	open *store.Connection
	// A leave: session, participant, when and why.
	session, sid string
	at           time.Time
	by           string
}

func (w connWrite) apply(ctx context.Context, st *store.Store) error {
	if w.open != nil {
		return st.OpenConnection(ctx, *w.open)
	}
	return st.CloseConnection(ctx, w.session, w.sid, w.at, w.by)
}

// writeConn stores a join or a leave, after any that are still pending, so that they land in
// the order they happened: a failed leave no longer keeps a classroom counted as present until
// its room closes, and a failed join is not lost.
func (c *collector) writeConn(ctx context.Context, w connWrite) {
	c.mu.Lock()
	if len(c.pending) >= maxPendingWrites {
		dropped := c.pending[0]
		c.pending = c.pending[1:]
		c.s.logger.Error("dropping a join or leave the database refused too long", "session", dropped.session, "participant", dropped.sid)
	}
	c.pending = append(c.pending, w)
	c.mu.Unlock()
	c.retryConnWrites(ctx)
}

// retryConnWrites writes the pending joins and leaves in order, stopping at the first the
// store still refuses. It runs at every event and every sample.
func (c *collector) retryConnWrites(ctx context.Context) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	for {
		c.mu.Lock()
		if len(c.pending) == 0 {
			c.mu.Unlock()
			return
		}
		w := c.pending[0]
		c.mu.Unlock()
		if err := w.apply(ctx, c.s.store); err != nil {
			what := "recording a leave"
			if w.open != nil {
				what = "recording a join"
			}
			c.s.logger.Error(what+" (kept, written again later)", "session", w.session, "participant", w.sid, "err", err)
			return
		}
		c.mu.Lock()
		c.pending = c.pending[1:]
		c.mu.Unlock()
	}
}

// pendingFor reports whether joins or leaves of a session still wait for the database: its
// record must not be computed without them.
func (c *collector) pendingFor(session string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.pending {
		if w.session == session {
			return true
		}
	}
	return false
}
