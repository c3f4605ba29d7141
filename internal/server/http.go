package server

import (
	"bufio"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sanke-edu/sanke/internal/config"
)

// The HTTP front (issue 12, finding 9): every request passes through frontHandler, which sets
// the security headers, bounds the request body of the routes that do not bound their own,
// and gives each write of the response http.write_timeout to complete. The http.Server itself
// bounds headers, whole requests and idle keep-alive connections (newHTTPServer), and the
// listener bounds the connections open at once (connlimit.go).

// defaultBodyLimit bounds request bodies outside bodyLimitedPrefixes: none of those routes
// (the web client, /rtc, /healthz, /metrics, /dev/, pprof) takes more than a few hundred bytes.
const defaultBodyLimit = 64 << 10

// bodyLimitedPrefixes are the route groups that bound their own request bodies: the
// classroom and recorder API (/api/) and the Room API (/twirp/, roomapi.WithMaxRequestBytes).
var bodyLimitedPrefixes = []string{"/api/", "/twirp/"}

// newHTTPServer returns the http.Server for h with the timeouts and header limit of cfg, its
// own complaints logged through logger.
//
// WriteTimeout is left to frontHandler, which applies it to each write rather than to the
// whole response: websockets clear the deadlines when they are hijacked anyway, and a
// recording that takes an hour to download must not be cut as long as it moves.
func newHTTPServer(cfg config.HTTPConfig, h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ErrorLog:          slog.NewLogLogger(logger.With("component", "http").Handler(), slog.LevelWarn),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
	}
}

// frontHandler wraps next with what every response needs: security headers, a body bound,
// per-write deadlines.
func frontHandler(next http.Handler, writeTimeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		fw := &frontWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: writeTimeout}
		if !hasAnyPrefix(r.URL.Path, bodyLimitedPrefixes) {
			if r.ContentLength > defaultBodyLimit {
				writeTooLarge(w, defaultBodyLimit)
				return
			}
			fw.body = &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, defaultBodyLimit)}
			r.Body = fw.body
		}
		fw.extend() // for the 100 Continue a body read may send
		next.ServeHTTP(fw, r)
		if !fw.hijacked {
			fw.extend() // for what net/http writes after the handler returns
		}
	})
}

// writeTooLarge answers 413 and closes the connection (the rest of the body is not read).
func writeTooLarge(w http.ResponseWriter, limit int64) {
	h := w.Header()
	for _, k := range []string{"Content-Length", "Content-Encoding", "Content-Disposition", "Content-Range", "Etag", "Last-Modified"} {
		h.Del(k)
	}
	h.Set("Connection", "close")
	writeWebJSON(w, http.StatusRequestEntityTooLarge,
		map[string]string{"error": fmt.Sprintf("request body too large: the limit is %d bytes", limit)})
}

func hasAnyPrefix(p string, prefixes []string) bool {
	for _, pre := range prefixes {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// limitedBody is a request body behind http.MaxBytesReader that remembers hitting the limit.
type limitedBody struct {
	io.ReadCloser
	limit atomic.Int64 // the limit, once hit
}

// Read implements io.Reader.
func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		b.limit.Store(mbe.Limit)
	}
	return n, err
}

// frontWriter is the ResponseWriter handlers get. It gives each write timeout to complete,
// so that a client that stops reading is disconnected and a long response that keeps moving
// is not; and when the handler answers a body over the limit (whatever it says, often a
// decoding error) the client gets 413 instead.
type frontWriter struct {
	http.ResponseWriter
	rc       *http.ResponseController
	timeout  time.Duration
	last     time.Time    // when the deadline was last moved
	body     *limitedBody // nil when the route bounds its own body
	started  bool         // the status line is decided
	replaced bool         // answered 413 in the handler's stead: its output is dropped
	hijacked bool
}

// extend moves the write deadline to timeout from now (at most every timeout/8: a deadline
// at least 7/8 of timeout away is good enough, and small writes stay cheap).
func (w *frontWriter) extend() {
	now := time.Now()
	if now.Sub(w.last) < w.timeout/8 {
		return
	}
	w.last = now
	_ = w.rc.SetWriteDeadline(now.Add(w.timeout))
}

// WriteHeader implements http.ResponseWriter.
func (w *frontWriter) WriteHeader(code int) {
	if w.replaced {
		return
	}
	w.extend()
	if !w.started && code >= 200 {
		w.started = true
		if limit := w.bodyLimitHit(); limit > 0 {
			w.replaced = true
			writeTooLarge(w.ResponseWriter, limit)
			return
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *frontWriter) Write(b []byte) (int, error) {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	if w.replaced {
		return len(b), nil
	}
	w.extend()
	return w.ResponseWriter.Write(b)
}

func (w *frontWriter) bodyLimitHit() int64 {
	if w.body == nil {
		return 0
	}
	return w.body.limit.Load()
}

// Flush implements http.Flusher (promhttp and streaming handlers look for it).
func (w *frontWriter) Flush() {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	if w.replaced {
		return
	}
	w.extend()
	_ = w.rc.Flush()
}

// Hijack implements http.Hijacker (the websocket upgrade); net/http clears the connection's
// deadlines when it is hijacked.
func (w *frontWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := w.rc.Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, rw, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *frontWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// loopbackOnly answers 404 to clients that are not on this machine (pprof and the dev
// endpoints, whatever the bind address).
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !remoteAddr(r).IsLoopback() {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// remoteAddr is the TCP peer's address (IPv4-mapped addresses unmapped); invalid when
// unknown.
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// metricsGuard restricts h (/metrics) to the networks and bearer token of cfg; with neither
// set it returns h unchanged. cfg has been validated.
func metricsGuard(cfg config.MetricsConfig, h http.Handler) http.Handler {
	var nets []netip.Prefix
	for _, s := range cfg.AllowedCIDRs {
		if p, err := config.ParseCIDR(s); err == nil {
			nets = append(nets, p)
		}
	}
	token := []byte(cfg.BearerToken)
	if len(nets) == 0 && len(token) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(nets) > 0 && !inAny(remoteAddr(r), nets) {
			http.Error(w, "forbidden: this address may not read metrics (metrics.allowed_cidrs)", http.StatusForbidden)
			return
		}
		if len(token) > 0 {
			scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") ||
				subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), token) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
				http.Error(w, "unauthorized: metrics need the bearer token (metrics.bearer_token)", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func inAny(a netip.Addr, nets []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
