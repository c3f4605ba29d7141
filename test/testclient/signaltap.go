package testclient

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// SignalMessage is one websocket message that crossed a SignalTap.
type SignalMessage struct {
	At time.Time
	// Conn numbers the websocket connections through the tap, from 1.
	Conn int
	// FromClient is true for client->server messages (Request set), false for
	// server->client ones (Response set). A message that did not decode has neither.
	FromClient bool
	Request    *livekit.SignalRequest
	Response   *livekit.SignalResponse
	// Raw is the message as sent; Text is true for websocket text (JSON) frames.
	Raw  []byte
	Text bool
}

// Type names the message's oneof case, such as "join", "offer", "trickle",
// "update_layers"... or "undecodable".
func (m SignalMessage) Type() string {
	var msg proto.Message
	switch {
	case m.Request != nil:
		msg = m.Request
	case m.Response != nil:
		msg = m.Response
	default:
		return "undecodable"
	}
	r := msg.ProtoReflect()
	od := r.Descriptor().Oneofs().ByName("message")
	if od == nil {
		return "unknown"
	}
	if fd := r.WhichOneof(od); fd != nil {
		return string(fd.Name())
	}
	return "empty"
}

// String renders the message as one line of JSON with its direction.
func (m SignalMessage) String() string {
	dir := "S->C"
	var msg proto.Message = m.Response
	if m.FromClient {
		dir = "C->S"
		msg = m.Request
	}
	body := fmt.Sprintf("%d bytes", len(m.Raw))
	if msg != nil && !(m.Request == nil && m.Response == nil) {
		if b, err := protojson.Marshal(msg); err == nil {
			body = string(b)
		}
	}
	return fmt.Sprintf("#%d %s %s %s", m.Conn, dir, m.Type(), body)
}

// SignalTap is a recording proxy between test clients and a server: websocket signaling
// (/rtc...) is relayed message by message and decoded; other HTTP requests (/rtc/validate,
// /twirp, /healthz) are passed through. Point clients at Target() instead of the server.
type SignalTap struct {
	upstream Target
	srv      *http.Server
	ln       net.Listener
	url      string

	mu       sync.Mutex
	msgs     []SignalMessage
	requests []string // HTTP request lines seen (method path?query)
	conns    int
	live     map[int][2]*websocket.Conn // relayed connections still open: client side, server side
}

// StartSignalTap starts a tap in front of upstream, closed when the test ends.
func StartSignalTap(tb testing.TB, upstream Target) *SignalTap {
	tb.Helper()
	return StartSignalTapOn(tb, "127.0.0.1", upstream)
}

// StartSignalTapOn is StartSignalTap listening on ip, for clients that cannot reach the
// loopback address (one in a network namespace of its own).
func StartSignalTapOn(tb testing.TB, ip string, upstream Target) *SignalTap {
	tb.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		tb.Fatalf("signal tap: %v", err)
	}
	if _, err := url.Parse(upstream.HTTPURL); err != nil {
		tb.Fatalf("signal tap: %v", err)
	}
	t := &SignalTap{upstream: upstream, ln: ln, url: ln.Addr().String(),
		live: map[int][2]*websocket.Conn{}}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		up, _ := url.Parse(t.upstreamTarget().HTTPURL)
		pr.SetURL(up)
		pr.Out.Host = pr.In.Host // as NewSingleHostReverseProxy did
		pr.SetXForwarded()
	}}
	t.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t.mu.Lock()
			t.requests = append(t.requests, r.Method+" "+r.URL.RequestURI())
			t.mu.Unlock()
			if websocket.IsWebSocketUpgrade(r) {
				t.relay(w, r)
				return
			}
			rp.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = t.srv.Serve(ln) }()
	tb.Cleanup(func() { _ = t.srv.Close() })
	return t
}

// Cut drops every websocket relayed right now as a network failure would: both TCP
// connections (to the client and to the server) are closed without a close frame. It returns
// how many websockets were cut. New connections are relayed as before (see SetUpstream).
func (t *SignalTap) Cut() int {
	t.mu.Lock()
	pairs := make([][2]*websocket.Conn, 0, len(t.live))
	for id, p := range t.live {
		pairs = append(pairs, p)
		delete(t.live, id)
	}
	t.mu.Unlock()
	for _, p := range pairs {
		_ = p[0].NetConn().Close()
		_ = p[1].NetConn().Close()
	}
	return len(pairs)
}

// SetUpstream points the tap at another server from now on: connections already relayed stay
// with the old one (Cut them), new ones and other HTTP requests go to upstream. Clients keep
// the tap's URL, as they keep a server's name when it is replaced behind a load balancer.
func (t *SignalTap) SetUpstream(upstream Target) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.upstream = upstream
}

func (t *SignalTap) upstreamTarget() Target {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.upstream
}

// Target is the upstream target with its URLs replaced by the tap's.
func (t *SignalTap) Target() Target {
	tg := t.upstreamTarget()
	tg.URL = "ws://" + t.url
	tg.HTTPURL = "http://" + t.url
	return tg
}

// Messages returns the messages relayed so far, in the order the tap saw them.
func (t *SignalTap) Messages() []SignalMessage {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.msgs)
}

// Requests returns the HTTP request lines seen ("GET /rtc?access_token=..."), oldest first.
func (t *SignalTap) Requests() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.requests)
}

// Transcript renders every message, one per line, for logs and golden comparisons.
func (t *SignalTap) Transcript() string {
	var b strings.Builder
	for _, m := range t.Messages() {
		b.WriteString(m.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// relay upgrades the client, dials the server with the same path, query and auth header, and
// copies messages both ways until either side closes.
func (t *SignalTap) relay(w http.ResponseWriter, r *http.Request) {
	up, _ := url.Parse(t.upstreamTarget().URL)
	target := *up
	target.Path, target.RawQuery = r.URL.Path, r.URL.RawQuery
	hdr := http.Header{}
	for _, k := range []string{"Authorization", "User-Agent", "Origin"} {
		if v := r.Header.Get(k); v != "" {
			hdr.Set(k, v)
		}
	}
	server, resp, err := websocket.DefaultDialer.Dial(target.String(), hdr)
	if err != nil {
		// Forward the server's refusal (status and body) as is.
		if resp != nil {
			defer func() { _ = resp.Body.Close() }()
			for k, vs := range resp.Header {
				for _, v := range vs {
					w.Header().Add(k, v)
				}
			}
			w.WriteHeader(resp.StatusCode)
			buf := make([]byte, 64<<10)
			n, _ := resp.Body.Read(buf)
			_, _ = w.Write(buf[:n])
			return
		}
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	up2 := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	client, err := up2.Upgrade(w, r, nil)
	if err != nil {
		_ = server.Close()
		return
	}
	t.mu.Lock()
	t.conns++
	conn := t.conns
	t.live[conn] = [2]*websocket.Conn{client, server}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.live, conn)
		t.mu.Unlock()
	}()

	done := make(chan struct{}, 2)
	pump := func(from, to *websocket.Conn, fromClient bool) {
		defer func() { done <- struct{}{} }()
		for {
			typ, data, err := from.ReadMessage()
			if err != nil {
				msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
				if ce, ok := err.(*websocket.CloseError); ok {
					msg = websocket.FormatCloseMessage(ce.Code, ce.Text)
				}
				_ = to.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
				return
			}
			t.record(conn, fromClient, typ, data)
			if err := to.WriteMessage(typ, data); err != nil {
				return
			}
		}
	}
	go pump(client, server, true)
	go pump(server, client, false)
	<-done
	_ = client.Close()
	_ = server.Close()
	<-done
}

func (t *SignalTap) record(conn int, fromClient bool, typ int, data []byte) {
	m := SignalMessage{At: time.Now(), Conn: conn, FromClient: fromClient, Raw: slices.Clone(data), Text: typ == websocket.TextMessage}
	var msg proto.Message
	if fromClient {
		m.Request = &livekit.SignalRequest{}
		msg = m.Request
	} else {
		m.Response = &livekit.SignalResponse{}
		msg = m.Response
	}
	var err error
	if m.Text {
		err = protojson.Unmarshal(data, msg)
	} else {
		err = proto.Unmarshal(data, msg)
	}
	if err != nil {
		m.Request, m.Response = nil, nil
	}
	t.mu.Lock()
	t.msgs = append(t.msgs, m)
	t.mu.Unlock()
}
