package signaling

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/sanke-edu/sanke/internal/rooms"
)

// inboundQueue is how many client requests may wait for the Session before the reader stops
// reading (backpressure on the client).
const inboundQueue = 64

// maxCloseReason is the longest close reason that fits a close frame (125 bytes minus the code).
const maxCloseReason = 123

// errMessageTooLarge means a client message exceeded Config.MaxMessageBytes.
var errMessageTooLarge = errors.New("message too large")

// closeCause says why a connection ends and how to close it.
type closeCause struct {
	code   int    // websocket close code sent to the client
	reason string // close frame text (truncated) and rooms.Session.Close reason
	flush  bool   // write the queued messages before closing
	byPeer bool   // the client closed or vanished: send nothing more
}

// conn is one signaling websocket. It is the Sink handed to the room. Three goroutines work
// on it: the reader (the HTTP handler's goroutine), the writer (the only one writing data
// frames, as gorilla requires) and the dispatcher (the only one calling the Session).
type conn struct {
	cfg     Config
	ws      *websocket.Conn
	log     *slog.Logger
	req     rooms.JoinRequest
	started time.Time

	queue   chan *livekit.SignalResponse // to the client, drained by writeLoop
	inbound chan *livekit.SignalRequest  // from the client, drained by dispatch

	// limiter and flood rate-limit incoming frames; read goroutine only.
	limiter *rate.Limiter
	flood   floodCounter

	useJSON    atomic.Bool            // the client last sent text: answer in protojson
	sid        atomic.Pointer[string] // participant sid seen in the join response, for logs
	closeSent  atomic.Bool            // our close frame (or the reply to the client's) went out
	peerClosed atomic.Bool            // the client's close frame arrived

	closeOnce sync.Once
	closeCtx  context.Context // done once a close is requested; cause is set before
	closeNow  context.CancelFunc
	closing   <-chan struct{} // closeCtx.Done()
	cause     closeCause

	readerDone   chan struct{}
	writerDone   chan struct{}
	dispatchDone chan struct{}
}

var _ rooms.Sink = (*conn)(nil)

func newConn(cfg Config, ws *websocket.Conn, log *slog.Logger, req rooms.JoinRequest) *conn {
	c := &conn{
		cfg:          cfg,
		ws:           ws,
		log:          log,
		req:          req,
		started:      time.Now(),
		queue:        make(chan *livekit.SignalResponse, cfg.WriteQueue),
		inbound:      make(chan *livekit.SignalRequest, inboundQueue),
		readerDone:   make(chan struct{}),
		writerDone:   make(chan struct{}),
		dispatchDone: make(chan struct{}),
	}
	c.closeCtx, c.closeNow = context.WithCancel(context.Background())
	c.closing = c.closeCtx.Done()
	if req.Reconnect && req.ParticipantSID != "" {
		c.sid.Store(&req.ParticipantSID)
	}
	return c
}

// Send queues msg for the client without blocking. A full queue disconnects the client.
func (c *conn) Send(msg *livekit.SignalResponse) error {
	if msg == nil {
		return errors.New("signaling: nil message")
	}
	if c.isClosing() {
		return ErrConnectionClosed
	}
	if sid := msg.GetJoin().GetParticipant().GetSid(); sid != "" {
		c.sid.Store(&sid)
	}
	select {
	case c.queue <- msg:
		return nil
	default:
		c.log.Warn("write queue full, dropping slow client", "sid", c.participantSID(), "queue", cap(c.queue))
		c.requestClose(closeCause{code: websocket.ClosePolicyViolation, reason: "write queue full: client too slow"})
		return ErrWriteQueueFull
	}
}

// Close closes the connection after flushing the queued messages.
func (c *conn) Close() {
	c.requestClose(closeCause{code: websocket.CloseNormalClosure, reason: "closed by server", flush: true})
}

// requestClose starts closing the connection; the first cause wins.
func (c *conn) requestClose(cause closeCause) {
	c.closeOnce.Do(func() {
		c.cause = cause
		c.closeNow()
	})
}

func (c *conn) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// serverClosing reports whether the server side decided to close (requests are then ignored).
func (c *conn) serverClosing() bool {
	return c.isClosing() && !c.cause.byPeer
}

func (c *conn) participantSID() string {
	if p := c.sid.Load(); p != nil {
		return *p
	}
	return ""
}

// serve runs the connection to its end: join, relay, then tell the session it is gone.
func (c *conn) serve(parent context.Context, joiner rooms.Joiner, draining func() bool) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	// A join still running when the connection is closed (e.g. by Shutdown) gives up.
	stop := context.AfterFunc(c.closeCtx, cancel)
	defer stop()
	c.ws.SetCloseHandler(c.onPeerClose)
	c.ws.SetPingHandler(c.onPing)
	c.ws.SetPongHandler(func(string) error { return c.extendReadDeadline() })
	go c.writeLoop()

	var session rooms.Session
	if draining() {
		c.reject(rooms.ErrServerShuttingDown)
	} else {
		jctx, jcancel := context.WithTimeout(ctx, c.cfg.JoinTimeout)
		s, err := joiner.Join(jctx, c.req, c)
		jcancel()
		if err == nil && s == nil {
			err = errors.New("room joiner returned no session")
		}
		if err != nil {
			c.reject(err)
		} else {
			session = s
			c.log.Info("participant joined", "sid", c.participantSID(), "reconnect", c.req.Reconnect,
				"sdk", c.req.ClientInfo.GetSdk().String(), "version", c.req.ClientInfo.GetVersion(),
				"protocol", c.req.ClientInfo.GetProtocol())
			go c.dispatch(s)
		}
	}

	c.readLoop()
	<-c.writerDone
	if session != nil {
		<-c.dispatchDone
		session.Close(c.cause.reason)
	}
	c.log.Info("participant left", "sid", c.participantSID(), "reason", c.cause.reason,
		"duration", time.Since(c.started).Round(time.Millisecond))
}

// reject tells the client its join failed (a leave) and closes the connection.
func (c *conn) reject(err error) {
	rej := RejectionFor(err)
	c.log.Info("join refused", "reason", rej.Reason.String(), "message", rej.Message, "error", err)
	_ = c.Send(LeaveResponse(rej.Reason, rej.Action))
	c.requestClose(closeCause{code: websocket.CloseNormalClosure, reason: rej.Message, flush: true})
}

// readLoop reads client messages until the connection fails or closes. Pings are answered
// here; other requests go to the dispatcher. Once a close is under way, messages are read
// and dropped until the client's close frame arrives.
func (c *conn) readLoop() {
	defer close(c.readerDone)
	defer close(c.inbound)
	limit := rate.Limit(c.cfg.RateLimit)
	if c.cfg.RateLimit < 0 {
		limit = rate.Inf
	}
	// Both are used only on this goroutine: onPing runs inside NextReader.
	c.limiter = rate.NewLimiter(limit, c.cfg.RateBurst)
	c.flood = floodCounter{window: c.cfg.FloodWindow}

	for {
		if err := c.extendReadDeadline(); err != nil {
			c.requestClose(c.readErrorCause(err))
			return
		}
		typ, r, err := c.ws.NextReader()
		if err != nil {
			c.requestClose(c.readErrorCause(err))
			return
		}
		payload, err := readAtMost(r, c.cfg.MaxMessageBytes)
		if errors.Is(err, errMessageTooLarge) {
			c.log.Warn("closing connection: message too large", "sid", c.participantSID(), "limit", c.cfg.MaxMessageBytes)
			c.requestClose(closeCause{code: websocket.CloseMessageTooBig,
				reason: fmt.Sprintf("message too large: limit is %d bytes", c.cfg.MaxMessageBytes)})
			continue // the next NextReader discards the rest of the message
		}
		if err != nil {
			c.requestClose(c.readErrorCause(err))
			return
		}
		if c.isClosing() {
			continue
		}
		if !c.allow() {
			continue
		}
		req, err := c.decode(typ, payload)
		if err != nil {
			c.log.Warn("closing connection: malformed signal request", "sid", c.participantSID(), "error", err)
			c.requestClose(closeCause{code: websocket.CloseInvalidFramePayloadData, reason: "malformed signal request: " + err.Error()})
			continue
		}
		switch m := req.GetMessage().(type) {
		case *livekit.SignalRequest_Ping:
			_ = c.Send(pongResponse(m.Ping))
		case *livekit.SignalRequest_PingReq:
			_ = c.Send(pongRespResponse(m.PingReq.GetTimestamp(), time.Now().UnixMilli()))
		case nil:
			// An empty request, or one of a type newer than our protocol version.
			c.log.Debug("ignoring unknown signal request", "sid", c.participantSID())
		default:
			select {
			case c.inbound <- req:
			case <-c.closing:
			}
		}
	}
}

// extendReadDeadline gives the client PingTimeout to send its next frame.
func (c *conn) extendReadDeadline() error {
	return c.ws.SetReadDeadline(time.Now().Add(c.cfg.PingTimeout))
}

// allow applies the per-connection rate limit to one incoming frame (data or ping): over the
// rate the frame is dropped, and a sustained flood closes the connection.
func (c *conn) allow() bool {
	if c.limiter.Allow() {
		return true
	}
	if n := c.flood.drop(time.Now()); n > c.cfg.FloodDrops {
		c.log.Warn("closing connection: message flood", "sid", c.participantSID(), "dropped", n,
			"window", c.cfg.FloodWindow, "rate", c.cfg.RateLimit, "burst", c.cfg.RateBurst)
		c.requestClose(closeCause{code: websocket.ClosePolicyViolation, reason: "rate limit exceeded: too many messages"})
	}
	return false
}

// onPing answers a websocket ping from the client (as gorilla's default handler does) and
// counts it as a sign of life. Ping frames count against the rate limit like messages.
func (c *conn) onPing(data string) error {
	_ = c.extendReadDeadline()
	if c.isClosing() || !c.allow() {
		return nil
	}
	err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.cfg.WriteTimeout))
	if err != nil && !errors.Is(err, websocket.ErrCloseSent) && !isTimeout(err) {
		return err
	}
	return nil
}

// onPeerClose handles the client's close frame: reply with one unless ours went out already.
func (c *conn) onPeerClose(code int, _ string) error {
	c.peerClosed.Store(true)
	if !c.closeSent.Swap(true) {
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""),
			time.Now().Add(c.cfg.WriteTimeout))
	}
	return nil
}

// readErrorCause says why a read failed.
func (c *conn) readErrorCause(err error) closeCause {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce) && ce.Code == websocket.CloseAbnormalClosure:
		// gorilla's name for the TCP connection ending without a close frame.
		return closeCause{code: websocket.CloseNormalClosure, reason: "connection lost: " + ce.Text, byPeer: true}
	case errors.As(err, &ce):
		reason := fmt.Sprintf("client closed the connection (%d)", ce.Code)
		if ce.Text != "" {
			reason += ": " + ce.Text
		}
		return closeCause{code: websocket.CloseNormalClosure, reason: reason, byPeer: true}
	case isTimeout(err):
		return closeCause{code: websocket.ClosePolicyViolation,
			reason: fmt.Sprintf("ping timeout: nothing received for %s", c.cfg.PingTimeout)}
	default:
		return closeCause{code: websocket.CloseNormalClosure, reason: "connection lost: " + err.Error(), byPeer: true}
	}
}

// decode parses a client message: protobuf in binary frames, protojson in text frames. The
// frame type also picks the encoding of the answers (as LiveKit does).
func (c *conn) decode(typ int, payload []byte) (*livekit.SignalRequest, error) {
	req := &livekit.SignalRequest{}
	switch typ {
	case websocket.TextMessage:
		c.useJSON.Store(true)
		return req, protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(payload, req)
	default:
		c.useJSON.Store(false)
		return req, proto.Unmarshal(payload, req)
	}
}

// dispatch hands requests to the session one at a time, in arrival order. After the server
// decided to close, the remaining requests are dropped; after the client left, they are still
// handled (e.g. its final leave).
func (c *conn) dispatch(s rooms.Session) {
	defer close(c.dispatchDone)
	for req := range c.inbound {
		if c.serverClosing() {
			continue
		}
		if err := s.HandleRequest(req); err != nil {
			c.log.Warn("signal request failed, closing connection", "sid", c.participantSID(),
				"request", fmt.Sprintf("%T", req.GetMessage()), "error", err)
			c.requestClose(closeCause{code: websocket.ClosePolicyViolation, reason: err.Error(), flush: true})
		}
	}
}

// writeLoop writes queued messages and keepalive pings until a close is requested, then
// closes the connection.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	keepalive := time.NewTicker(c.cfg.keepaliveInterval())
	defer keepalive.Stop()
	broken := false // a write failed: the connection is unusable
	for !broken {
		select {
		case msg := <-c.queue:
			if err := c.write(msg, time.Now().Add(c.cfg.WriteTimeout)); err != nil {
				broken = true
				c.log.Info("write failed, closing connection", "sid", c.participantSID(), "error", err)
				c.afterReader(closeCause{code: websocket.CloseInternalServerErr, reason: "write failed: " + err.Error()})
			}
		case <-keepalive.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.cfg.WriteTimeout)); err != nil {
				broken = true
				c.afterReader(closeCause{code: websocket.CloseInternalServerErr, reason: "keepalive failed: " + err.Error()})
			}
		case <-c.closing:
			c.finish(false)
			return
		}
	}
	<-c.closing
	c.finish(true)
}

// afterReader closes the connection for cause once the reader has had CloseGrace to take in
// what the client sent before its side went away: a client that leaves sends its leave and
// closes at once, and a write failing on that closed socket must not make the reader drop the
// leave still in the socket's buffer (the participant would then wait out the reconnect
// window as if its connection had been lost).
func (c *conn) afterReader(cause closeCause) {
	grace := time.NewTimer(c.cfg.CloseGrace)
	defer grace.Stop()
	select {
	case <-c.readerDone:
	case <-c.closing:
	case <-grace.C:
	}
	c.requestClose(cause)
}

// finish closes the connection: flush if asked, send the close frame, give the client
// CloseGrace to answer it (closing a socket with unread input resets it, losing our close
// frame), then close the TCP connection.
func (c *conn) finish(broken bool) {
	cause := c.cause
	if !broken && !cause.byPeer && !c.peerClosed.Load() {
		deadline := time.Now().Add(c.cfg.WriteTimeout)
		if cause.flush {
			broken = c.flush(deadline) != nil
		}
		if !broken && !c.closeSent.Swap(true) {
			msg := websocket.FormatCloseMessage(cause.code, truncateReason(cause.reason))
			broken = c.ws.WriteControl(websocket.CloseMessage, msg, deadline) != nil
		}
	}
	if !broken && !cause.byPeer {
		grace := time.NewTimer(c.cfg.CloseGrace)
		select {
		case <-c.readerDone:
		case <-grace.C:
		}
		grace.Stop()
	}
	_ = c.ws.Close()
}

// flush writes the messages still queued.
func (c *conn) flush(deadline time.Time) error {
	for {
		select {
		case msg := <-c.queue:
			if err := c.write(msg, deadline); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// write encodes msg as the client expects and writes it. A message that cannot be encoded
// (a server bug) is logged and skipped.
func (c *conn) write(msg *livekit.SignalResponse, deadline time.Time) error {
	typ, data := websocket.BinaryMessage, []byte(nil)
	var err error
	if c.useJSON.Load() {
		typ = websocket.TextMessage
		data, err = protojson.Marshal(msg)
	} else {
		data, err = proto.Marshal(msg)
	}
	if err != nil {
		c.log.Error("cannot encode signal response", "type", fmt.Sprintf("%T", msg.GetMessage()), "error", err)
		return nil
	}
	if err := c.ws.SetWriteDeadline(deadline); err != nil {
		return err
	}
	return c.ws.WriteMessage(typ, data)
}

// readAtMost reads a whole message of at most limit bytes; a longer one is
// errMessageTooLarge (only limit+1 bytes are read).
func readAtMost(r io.Reader, limit int) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > limit {
		return nil, errMessageTooLarge
	}
	return data, nil
}

// floodCounter counts dropped messages in fixed windows.
type floodCounter struct {
	window time.Duration
	start  time.Time
	n      int
}

// drop records a dropped message at now and returns the drops in the current window.
func (f *floodCounter) drop(now time.Time) int {
	if now.Sub(f.start) > f.window {
		f.start, f.n = now, 0
	}
	f.n++
	return f.n
}

// truncateReason shortens s to fit a close frame, on a UTF-8 boundary.
func truncateReason(s string) string {
	if len(s) <= maxCloseReason {
		return s
	}
	s = s[:maxCloseReason]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
