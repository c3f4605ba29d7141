package signaling

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/auth"
	"golang.org/x/time/rate"

	"github.com/sanke-edu/sanke/internal/rooms"
)

// endpoint is a flavour of the signaling protocol.
type endpoint int

const (
	// dualPC is /rtc: join options in query parameters, publisher and subscriber
	// PeerConnections.
	dualPC endpoint = iota
	// singlePC is /rtc/v1: a livekit.JoinRequest in the join_request parameter, one
	// PeerConnection.
	singlePC
)

// Handler serves LiveKit-compatible signaling over websockets. Create it with NewHandler and
// mount it with Register.
type Handler struct {
	cfg      Config
	keys     auth.KeyProvider
	joiner   rooms.Joiner
	log      *slog.Logger
	upgrader websocket.Upgrader
	draining atomic.Bool
	joins    *joinLimiter // nil: joins are not rate-limited
	// joinWarn paces the warnings about refused joins; joinsRefused counts those since the last.
	joinWarn     rate.Sometimes
	joinsRefused atomic.Int64

	mu      sync.Mutex
	conns   map[*conn]struct{}
	changed chan struct{} // closed and replaced whenever a connection ends
}

// NewHandler returns a handler that verifies tokens against keys and admits participants
// through joiner. Zero fields of cfg take their defaults.
func NewHandler(cfg Config, keys auth.KeyProvider, joiner rooms.Joiner, logger *slog.Logger) *Handler {
	cfg = cfg.withDefaults()
	return &Handler{
		cfg:      cfg,
		joins:    newJoinLimiter(cfg.JoinRateLimit, cfg.JoinRateBurst),
		joinWarn: rate.Sometimes{Interval: joinWarnInterval},
		keys:     keys,
		joiner:   joiner,
		log:      logger,
		upgrader: websocket.Upgrader{
			// Any origin may connect: the access token, not the page's origin, authorizes.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		conns:   make(map[*conn]struct{}),
		changed: make(chan struct{}),
	}
}

// Register mounts the signaling routes on mux: /rtc and /rtc/validate (dual PeerConnection,
// query parameters), /rtc/v1 and /rtc/v1/validate (single PeerConnection, join_request).
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("/rtc", h.ServeRTC)
	mux.HandleFunc("/rtc/validate", h.ServeValidate)
	mux.HandleFunc("/rtc/v1", h.ServeRTCv1)
	mux.HandleFunc("/rtc/v1/validate", h.ServeValidateV1)
}

// ServeRTCv1 serves GET /rtc/v1, the single PeerConnection flavour: the client's
// livekit.JoinRequest (with its publisher offer) arrives in the join_request parameter.
func (h *Handler) ServeRTCv1(w http.ResponseWriter, r *http.Request) {
	h.serveRTC(w, r, singlePC)
}

// ServeValidateV1 serves GET /rtc/v1/validate: the checks of ServeRTCv1 without joining.
func (h *Handler) ServeValidateV1(w http.ResponseWriter, r *http.Request) {
	h.serveValidate(w, r, singlePC)
}

// ServeRTC serves GET /rtc: it verifies the join, upgrades to a websocket, joins the room
// and relays signal messages until the connection ends.
func (h *Handler) ServeRTC(w http.ResponseWriter, r *http.Request) {
	h.serveRTC(w, r, dualPC)
}

// ServeValidate serves GET /rtc/validate: the checks of ServeRTC without joining. It answers
// 200 "success" or the status and reason ServeRTC would have refused with.
func (h *Handler) ServeValidate(w http.ResponseWriter, r *http.Request) {
	h.serveValidate(w, r, dualPC)
}

// Drain refuses new joins (HTTP 503, or a SERVER_SHUTDOWN leave for one caught mid-upgrade).
// Existing connections are untouched.
func (h *Handler) Drain() {
	h.draining.Store(true)
}

// Draining reports whether Drain was called.
func (h *Handler) Draining() bool {
	return h.draining.Load()
}

// Connections returns the number of open signaling connections.
func (h *Handler) Connections() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// Shutdown drains the handler and waits for the open connections to end (the room is
// expected to send leaves and close them). When ctx ends first, it closes the remaining
// connections (close code 1001, after flushing their queues), waits for them to finish and
// returns ctx's error.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.Drain()
	if err := h.waitIdle(ctx.Done()); err == nil {
		return nil
	}
	h.mu.Lock()
	open := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		open = append(open, c)
	}
	h.mu.Unlock()
	h.log.Info("signaling shutdown: closing remaining connections", "count", len(open))
	for _, c := range open {
		c.requestClose(closeCause{code: websocket.CloseGoingAway, reason: "server shutting down", flush: true})
	}
	_ = h.waitIdle(nil) // each connection finishes within WriteTimeout + CloseGrace
	return ctx.Err()
}

// waitIdle waits until no connection is open, or until stop is closed (then it returns
// context.Canceled).
func (h *Handler) waitIdle(stop <-chan struct{}) error {
	for {
		h.mu.Lock()
		n, changed := len(h.conns), h.changed
		h.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-stop:
			return context.Canceled
		}
	}
}

func (h *Handler) track(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conns[c] = struct{}{}
}

func (h *Handler) untrack(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, c)
	close(h.changed)
	h.changed = make(chan struct{})
}

func (h *Handler) serveRTC(w http.ResponseWriter, r *http.Request, ep endpoint) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "websocket upgrade required", http.StatusUpgradeRequired)
		return
	}
	req, herr := h.admit(r, ep)
	if herr != nil {
		h.refuse(w, r, herr, req)
		return
	}
	if wait, ok := h.joins.allow(req.ClientInfo.GetAddress(), time.Now()); !ok {
		h.refuseJoinRate(w, req, wait)
		return
	}
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has answered the client already.
		h.log.Info("websocket upgrade failed", "remote", req.ClientInfo.GetAddress(), "error", err)
		return
	}
	log := h.log.With("room", req.RoomName, "identity", req.Identity, "remote", req.ClientInfo.GetAddress())
	c := newConn(h.cfg, ws, log, req)
	h.track(c)
	defer h.untrack(c)
	c.serve(r.Context(), h.joiner, h.draining.Load)
}

func (h *Handler) serveValidate(w http.ResponseWriter, r *http.Request, ep endpoint) {
	setCORS(w.Header())
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodGet, http.MethodHead:
	default:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	req, herr := h.admit(r, ep)
	if herr != nil {
		h.refuse(w, r, herr, req)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "success")
}

// admit runs every check that precedes the upgrade and returns the verified join. On error
// the returned JoinRequest holds whatever was learnt (for logging).
func (h *Handler) admit(r *http.Request, ep endpoint) (rooms.JoinRequest, *httpError) {
	raw, herr := requestToken(r)
	if herr != nil {
		return rooms.JoinRequest{}, herr
	}
	tok, herr := verifyToken(raw, h.keys)
	if herr != nil {
		return rooms.JoinRequest{}, herr
	}
	addr := ClientAddress(r, h.cfg.TrustProxyHeaders)
	var req rooms.JoinRequest
	// The Go SDK sends its single PeerConnection join_request on /rtc: the parameter, not
	// the path, decides the mode there.
	if ep == dualPC && r.URL.Query().Get("join_request") != "" {
		ep = singlePC
	}
	switch ep {
	case singlePC:
		req, herr = joinFromProto(r.URL.Query(), tok, addr, h.cfg.MaxMessageBytes)
	default:
		req, herr = joinFromQuery(r.URL.Query(), tok, addr)
	}
	if herr != nil {
		return newJoinRequest(tok), herr
	}
	req.Host = requestHost(r, h.cfg.TrustProxyHeaders)
	if h.draining.Load() {
		rej := RejectionFor(rooms.ErrServerShuttingDown)
		return req, &httpError{status: rej.Status, msg: rej.Message}
	}
	if v, ok := h.joiner.(rooms.JoinValidator); ok {
		ctx, cancel := context.WithTimeout(r.Context(), h.cfg.JoinTimeout)
		err := v.ValidateJoin(ctx, req)
		cancel()
		if err != nil {
			rej := RejectionFor(err)
			return req, &httpError{status: rej.Status, msg: rej.Message, cause: err}
		}
	}
	return req, nil
}

// refuse answers a refused join with its status and plain-text reason, and logs it.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, herr *httpError, req rooms.JoinRequest) {
	level := slog.LevelInfo
	if herr.status >= http.StatusInternalServerError {
		level = slog.LevelWarn
	}
	attrs := []any{
		"status", herr.status, "reason", herr.Error(), "path", r.URL.Path,
		"remote", ClientAddress(r, h.cfg.TrustProxyHeaders),
	}
	if req.Identity != "" {
		attrs = append(attrs, "room", req.RoomName, "identity", req.Identity)
	}
	h.log.Log(r.Context(), level, "join refused", attrs...)
	http.Error(w, herr.msg, herr.status)
}

// joinWarnInterval is how often at most refused joins are logged.
const joinWarnInterval = 10 * time.Second

// refuseJoinRate answers a join over its address's rate limit: 429, with the seconds to wait
// in Retry-After. Refusals are logged at most every joinWarnInterval, with their count.
func (h *Handler) refuseJoinRate(w http.ResponseWriter, req rooms.JoinRequest, wait time.Duration) {
	secs := max(int(math.Ceil(wait.Seconds())), 1)
	n := h.joinsRefused.Add(1)
	h.joinWarn.Do(func() {
		h.log.Warn("joins refused: too many from one address (signal.join_rate_limit, signal.join_rate_burst)",
			"refused", n, "last_client", req.ClientInfo.GetAddress(), "last_identity", req.Identity)
		h.joinsRefused.Add(-n)
	})
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	http.Error(w, fmt.Sprintf("too many joins from this address: try again in %d s", secs), http.StatusTooManyRequests)
}

// setCORS lets browser pages on any origin read the validate answers.
func setCORS(hdr http.Header) {
	hdr.Set("Access-Control-Allow-Origin", "*")
	hdr.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	hdr.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	hdr.Set("Access-Control-Max-Age", "86400")
}
