// Package e2e holds Sanke's end-to-end tests (issue 2, "Tests that must exist and pass in
// CI"): a real sanke process, built from ./cmd/sanke with -race when the tests are, driven by
// the unmodified LiveKit Go SDK and by raw websocket and UDP clients, on loopback only.
//
// Every test starts its own server (testclient.StartSanke), so a server crash or data race
// is pinned to one test, and uses room names of its own. Tests wait on conditions with
// generous deadlines; no assertion depends on a fixed sleep.
package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtp"
	"google.golang.org/protobuf/proto"

	tc "github.com/sanke-edu/sanke/test/testclient"
)

// Deadlines. They are generous because the server and the clients run with the race detector
// on small CI machines; a healthy run meets them with a wide margin.
const (
	joinWait  = 20 * time.Second
	eventWait = 10 * time.Second
	mediaWait = 15 * time.Second
)

// startServer runs a sanke process for the test (stopped, and checked for data races, when
// the test ends) and returns it.
func startServer(t *testing.T, opts ...tc.ServerOption) *tc.Server {
	t.Helper()
	return tc.StartSanke(t, opts...)
}

// inEachPeerConnectionMode runs body as a subtest with the Go SDK's two PeerConnections per
// client ("dual") and with one ("single"), given the connect options of the mode.
func inEachPeerConnectionMode(t *testing.T, body func(t *testing.T, connect []lksdk.ConnectOption)) {
	for _, mode := range []string{"dual", "single"} {
		t.Run(mode, func(t *testing.T) {
			var opts []lksdk.ConnectOption
			if mode == "single" {
				opts = append(opts, lksdk.WithSinglePeerConnection())
			}
			body(t, opts)
		})
	}
}

// roomName returns a room name unique to the test and the suffix.
func roomName(t *testing.T, suffix string) string {
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	return fmt.Sprintf("%s-%s-%d", strings.ToLower(name), suffix, time.Now().UnixNano()%1_000_000)
}

// serverAlive fails the test if the server process exited or /healthz does not answer 200.
func serverAlive(t *testing.T, srv *tc.Server) {
	t.Helper()
	select {
	case <-srv.Exited():
		t.Fatalf("sanke exited unexpectedly; output:\n%s", srv.Logs())
	default:
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(srv.HTTPURL + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %s", resp.Status)
	}
}

// expectFlow waits until ts has received at least n more packets than now: media is still
// flowing to that subscriber.
func expectFlow(t *testing.T, ts *tc.TrackStats, n int, what string) {
	t.Helper()
	start := ts.Snapshot().Packets
	tc.Eventually(t, mediaWait, what+": packets keep arriving", func() (bool, string) {
		s := ts.Snapshot()
		return s.Packets >= start+n && !s.Ended, fmt.Sprintf("%d new packets (want %d); %s", s.Packets-start, n, s)
	})
}

// waitResolution waits until the newest keyframe on ts is w x h and some frames of that size
// arrived.
func waitResolution(t *testing.T, ts *tc.TrackStats, w, h int, what string) {
	t.Helper()
	var since int
	tc.Eventually(t, mediaWait, fmt.Sprintf("%s receives %dx%d", what, w, h), func() (bool, string) {
		s := ts.Snapshot()
		if !s.HasResolution(w, h) {
			since = s.Frames
			return false, s.String()
		}
		return s.Frames >= since+10, s.String()
	})
}

// arrivalGaps records, per subscribed track, the longest time between two consecutive
// packets, from a chosen moment on. Plug its OnPacket into JoinOptions.
type arrivalGaps struct {
	mu    sync.Mutex
	last  map[*tc.TrackStats]time.Time
	worst map[*tc.TrackStats]time.Duration
}

func newArrivalGaps() *arrivalGaps {
	return &arrivalGaps{last: map[*tc.TrackStats]time.Time{}, worst: map[*tc.TrackStats]time.Duration{}}
}

func (g *arrivalGaps) OnPacket(ts *tc.TrackStats, _ *rtp.Packet) {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if last, ok := g.last[ts]; ok {
		if d := now.Sub(last); d > g.worst[ts] {
			g.worst[ts] = d
		}
	}
	g.last[ts] = now
}

// reset forgets the worst gap of ts so far (measure from now on).
func (g *arrivalGaps) reset(ts *tc.TrackStats) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.worst, ts)
}

func (g *arrivalGaps) worstGap(ts *tc.TrackStats) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.worst[ts]
}

// stallMonitor samples the packet counters of some tracks while a test does things that must
// not disturb them, and remembers the longest time any of them went without a new packet.
type stallMonitor struct {
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	worst time.Duration
	which string
}

func startStallMonitor(tracks map[string]*tc.TrackStats) *stallMonitor {
	m := &stallMonitor{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		lastCount := map[string]int{}
		lastChange := map[string]time.Time{}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			now := time.Now()
			for name, ts := range tracks {
				n := ts.Snapshot().Packets
				if c, ok := lastCount[name]; !ok || n != c {
					lastCount[name], lastChange[name] = n, now
					continue
				}
				if d := now.Sub(lastChange[name]); d > m.worstStall() {
					m.mu.Lock()
					m.worst, m.which = d, name
					m.mu.Unlock()
				}
			}
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

func (m *stallMonitor) worstStall() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.worst
}

// finish stops the monitor and returns the longest stall and the track it happened on.
func (m *stallMonitor) finish() (time.Duration, string) {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.worst, m.which
}

// --- raw websocket clients ---------------------------------------------------------------

// rtcURL is the /rtc websocket URL of target with the given token and extra query values.
func rtcURL(target tc.Target, path, token string, extra url.Values) string {
	q := url.Values{}
	q.Set("access_token", token)
	q.Set("protocol", "16")
	q.Set("sdk", "go")
	q.Set("version", "2.19.0")
	for k, vs := range extra {
		q.Del(k) // extra replaces the defaults above
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	return target.URL + path + "?" + q.Encode()
}

// rawClient is a websocket signaling client with no WebRTC behind it, for feeding the server
// bad input. A reader goroutine collects everything the server sends until the connection
// ends.
type rawClient struct {
	t  *testing.T
	ws *websocket.Conn

	mu        sync.Mutex
	responses []*livekit.SignalResponse
	undecoded int
	closeErr  *websocket.CloseError // the server's close frame, if one came
	readErr   error                 // why reading stopped
	done      chan struct{}
	started   atomic.Bool
	writeMu   sync.Mutex
}

// dialRaw opens a websocket to /rtc with token. It fails the test if the upgrade fails.
func dialRaw(t *testing.T, target tc.Target, token string, extra url.Values) *rawClient {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(rtcURL(target, "/rtc", token, extra), nil)
	if err != nil {
		status := "no response"
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("raw websocket dial: %v (%s)", err, status)
	}
	c := &rawClient{t: t, ws: ws, done: make(chan struct{})}
	t.Cleanup(func() {
		_ = ws.Close()
		if c.started.Load() {
			<-c.done
		}
	})
	return c
}

// startReading starts the reader goroutine. Tests that must write before reading anything
// call it later.
func (c *rawClient) startReading() {
	c.started.Store(true)
	go func() {
		defer close(c.done)
		for {
			typ, data, err := c.ws.ReadMessage()
			if err != nil {
				c.mu.Lock()
				c.readErr = err
				if ce, ok := err.(*websocket.CloseError); ok {
					c.closeErr = ce
				}
				c.mu.Unlock()
				return
			}
			res := &livekit.SignalResponse{}
			if typ != websocket.BinaryMessage || proto.Unmarshal(data, res) != nil {
				c.mu.Lock()
				c.undecoded++
				c.mu.Unlock()
				continue
			}
			c.mu.Lock()
			c.responses = append(c.responses, res)
			c.mu.Unlock()
		}
	}()
}

// send writes a SignalRequest as a binary frame. Errors are returned, not fatal: the server
// may have closed the connection already.
func (c *rawClient) send(req *livekit.SignalRequest) error {
	data, err := proto.Marshal(req)
	if err != nil {
		c.t.Fatalf("marshal %v: %v", req, err)
	}
	return c.sendRaw(websocket.BinaryMessage, data)
}

func (c *rawClient) sendRaw(typ int, data []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(typ, data)
}

// messages returns what the server sent so far.
func (c *rawClient) messages() []*livekit.SignalResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*livekit.SignalResponse(nil), c.responses...)
}

// count returns how many server messages satisfy match.
func (c *rawClient) count(match func(*livekit.SignalResponse) bool) int {
	n := 0
	for _, m := range c.messages() {
		if match(m) {
			n++
		}
	}
	return n
}

// waitJoin waits for the join response and returns it.
func (c *rawClient) waitJoin() *livekit.JoinResponse {
	c.t.Helper()
	var join *livekit.JoinResponse
	tc.Eventually(c.t, joinWait, "raw client receives its join response", func() (bool, string) {
		for _, m := range c.messages() {
			if j := m.GetJoin(); j != nil {
				join = j
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d messages, read error %v", len(c.messages()), c.err())
	})
	return join
}

func (c *rawClient) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readErr
}

// waitClosed waits until the connection ended and returns the server's close frame (nil if
// the connection ended without one).
func (c *rawClient) waitClosed(timeout time.Duration) *websocket.CloseError {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(timeout):
		c.t.Fatalf("raw client: connection still open after %v (%d messages received)", timeout, len(c.messages()))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

// isOpen reports whether the reader is still running.
func (c *rawClient) isOpen() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// leave sends a leave request and closes the connection normally.
func (c *rawClient) leave() {
	_ = c.send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Leave{Leave: &livekit.LeaveRequest{
		Reason: livekit.DisconnectReason_CLIENT_INITIATED,
	}}})
	c.writeMu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
		time.Now().Add(time.Second))
	c.writeMu.Unlock()
}

// probeJoin checks that the server still admits participants: a raw client joins room,
// gets its join response, answers a ping and leaves.
func probeJoin(t *testing.T, target tc.Target, room, identity string) {
	t.Helper()
	c := dialRaw(t, target, target.Token(t, identity, tc.JoinGrant(room)), url.Values{"auto_subscribe": {"0"}})
	c.startReading()
	join := c.waitJoin()
	if join.GetParticipant().GetIdentity() != identity || join.GetRoom().GetName() != room {
		t.Fatalf("probe join: participant %q in room %q, want %q in %q", join.GetParticipant().GetIdentity(),
			join.GetRoom().GetName(), identity, room)
	}
	ts := time.Now().UnixMilli()
	if err := c.send(&livekit.SignalRequest{Message: &livekit.SignalRequest_PingReq{PingReq: &livekit.Ping{Timestamp: ts}}}); err != nil {
		t.Fatalf("probe join: send ping: %v", err)
	}
	tc.Eventually(t, eventWait, "probe client gets a pong", func() (bool, string) {
		n := c.count(func(m *livekit.SignalResponse) bool { return m.GetPongResp().GetLastPingTimestamp() == ts })
		return n == 1, fmt.Sprintf("%d messages", len(c.messages()))
	})
	c.leave()
	_ = c.waitClosed(eventWait) // the leave was ours: any close will do
}

// ctxTimeout is a context for one API call.
func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
