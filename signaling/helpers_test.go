package signaling

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"

	"github.com/sanke-edu/sanke/internal/rooms"
	"github.com/sanke-edu/sanke/test/syncbuf"
)

const (
	testKey    = "testkey"
	testSecret = "testsecret-that-is-long-enough-for-hs256"
	testRoom   = "lobby"
	// waitFor bounds every wait in these tests.
	waitFor = 5 * time.Second
)

// testToken mints a token for identity in room with the roomJoin grant; mutate adjusts it.
func testToken(t *testing.T, identity string, mutate ...func(*auth.AccessToken, *auth.VideoGrant)) string {
	t.Helper()
	grant := &auth.VideoGrant{RoomJoin: true, Room: testRoom}
	at := auth.NewAccessToken(testKey, testSecret).SetIdentity(identity).SetValidFor(time.Hour)
	for _, m := range mutate {
		m(at, grant)
	}
	at.SetVideoGrant(grant)
	tok, err := at.ToJWT()
	if err != nil {
		t.Fatalf("mint token: %v", err)
	}
	return tok
}

// rawToken signs arbitrary claims, for tokens the SDK helper refuses to mint (expired).
func rawToken(t *testing.T, secret string, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatalf("sign token: %v", err)
	}
	return tok
}

// logBuffer collects log output safely across goroutines.
type logBuffer struct{ syncbuf.Buffer }

// waitContains waits until the log contains s.
func (l *logBuffer) waitContains(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !strings.Contains(l.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never contained %q; log:\n%s", s, l.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeSession records what the handler gives the room.
type fakeSession struct {
	req      rooms.JoinRequest
	sink     rooms.Sink
	requests chan *livekit.SignalRequest
	closed   chan string // receives the Close reason
	mu       sync.Mutex
	closes   int
	// handle, if set, answers HandleRequest.
	handle func(*livekit.SignalRequest) error
}

func (s *fakeSession) HandleRequest(req *livekit.SignalRequest) error {
	s.requests <- req
	if s.handle != nil {
		return s.handle(req)
	}
	return nil
}

func (s *fakeSession) Close(reason string) {
	s.mu.Lock()
	s.closes++
	s.mu.Unlock()
	s.closed <- reason
}

// waitClosed returns the Close reason, failing after waitFor.
func (s *fakeSession) waitClosed(t *testing.T) string {
	t.Helper()
	select {
	case r := <-s.closed:
		return r
	case <-time.After(waitFor):
		t.Fatal("session was never closed")
		return ""
	}
}

// nextRequest returns the next request handed to the session.
func (s *fakeSession) nextRequest(t *testing.T) *livekit.SignalRequest {
	t.Helper()
	select {
	case r := <-s.requests:
		return r
	case <-time.After(waitFor):
		t.Fatal("no request reached the session")
		return nil
	}
}

// fakeJoiner admits everyone (answering with a JoinResponse) unless joinErr is set.
type fakeJoiner struct {
	joinErr  error
	sessions chan *fakeSession
	// handle is copied into each session.
	handle func(*livekit.SignalRequest) error
	// afterJoin, if set, runs at the end of Join (with the session's sink).
	afterJoin func(rooms.Sink)
}

func newFakeJoiner() *fakeJoiner {
	return &fakeJoiner{sessions: make(chan *fakeSession, 16)}
}

func (j *fakeJoiner) Join(_ context.Context, req rooms.JoinRequest, sink rooms.Sink) (rooms.Session, error) {
	if j.joinErr != nil {
		return nil, j.joinErr
	}
	s := &fakeSession{
		req: req, sink: sink, handle: j.handle,
		requests: make(chan *livekit.SignalRequest, 1024),
		closed:   make(chan string, 4),
	}
	err := sink.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Join{Join: &livekit.JoinResponse{
		Room:        &livekit.Room{Name: req.RoomName},
		Participant: &livekit.ParticipantInfo{Sid: "PA_" + req.Identity, Identity: req.Identity},
	}}})
	if err != nil {
		return nil, err
	}
	if j.afterJoin != nil {
		j.afterJoin(sink)
	}
	j.sessions <- s
	return s, nil
}

// nextSession returns the session of the next successful join.
func (j *fakeJoiner) nextSession(t *testing.T) *fakeSession {
	t.Helper()
	select {
	case s := <-j.sessions:
		return s
	case <-time.After(waitFor):
		t.Fatal("no join reached the room")
		return nil
	}
}

// validatingJoiner also implements rooms.JoinValidator.
type validatingJoiner struct {
	*fakeJoiner
	validateErr error
}

func (j validatingJoiner) ValidateJoin(context.Context, rooms.JoinRequest) error {
	return j.validateErr
}

// testServer is a Handler behind an httptest server.
type testServer struct {
	*httptest.Server
	h   *Handler
	log *logBuffer
}

func newTestServer(t *testing.T, cfg Config, joiner rooms.Joiner) *testServer {
	t.Helper()
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := NewHandler(cfg, auth.NewSimpleKeyProvider(testKey, testSecret), joiner, logger)
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		_ = h.Shutdown(ctx)
		srv.Close()
	})
	return &testServer{Server: srv, h: h, log: logs}
}

// url returns the server URL of path with query, in scheme ws or http.
func (s *testServer) url(scheme, path string, query url.Values) string {
	u, _ := url.Parse(s.URL)
	u.Scheme = scheme
	u.Path = path
	u.RawQuery = query.Encode()
	return u.String()
}

// dial opens path with the token in the query (or header, if header is set).
func (s *testServer) dial(t *testing.T, path string, query url.Values, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, s.url("ws", path, query), header)
	if ws != nil {
		t.Cleanup(func() { _ = ws.Close() })
	}
	return ws, resp, err
}

// join dials /rtc as identity and returns the websocket and its session, after checking
// the JoinResponse arrives.
func (s *testServer) join(t *testing.T, j *fakeJoiner, identity string) (*websocket.Conn, *fakeSession) {
	t.Helper()
	ws, _, err := s.dial(t, "/rtc", url.Values{"access_token": {testToken(t, identity)}}, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	res := readResponse(t, ws)
	if res.GetJoin().GetParticipant().GetIdentity() != identity {
		t.Fatalf("first message = %v, want a join response for %s", res, identity)
	}
	return ws, j.nextSession(t)
}

// get performs a plain HTTP request.
func (s *testServer) get(t *testing.T, method, path string, query url.Values, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.url("http", path, query), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// send writes req as binary protobuf.
func send(t *testing.T, ws *websocket.Conn, req *livekit.SignalRequest) {
	t.Helper()
	data, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, data); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readResponse reads one binary protobuf response.
func readResponse(t *testing.T, ws *websocket.Conn) *livekit.SignalResponse {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(waitFor))
	typ, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.BinaryMessage {
		t.Fatalf("message type %d, want binary", typ)
	}
	res := &livekit.SignalResponse{}
	if err := proto.Unmarshal(data, res); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return res
}

// readClose reads until the server's close frame and returns it.
func readClose(t *testing.T, ws *websocket.Conn) *websocket.CloseError {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(waitFor))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("read ended with %v, want a close frame", err)
		}
		return ce
	}
}

func pingReq(ts int64) *livekit.SignalRequest {
	return &livekit.SignalRequest{Message: &livekit.SignalRequest_PingReq{PingReq: &livekit.Ping{Timestamp: ts}}}
}

func trickle(n int) *livekit.SignalRequest {
	return &livekit.SignalRequest{Message: &livekit.SignalRequest_Trickle{Trickle: &livekit.TrickleRequest{
		CandidateInit: `{"candidate":"c` + string(rune('a'+n%26)) + `"}`,
	}}}
}

// assertAlive checks ws still answers a ping_req.
func assertAlive(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	send(t, ws, pingReq(42))
	if got := readResponse(t, ws).GetPongResp().GetLastPingTimestamp(); got != 42 {
		t.Fatalf("pong_resp last ping = %d, want 42", got)
	}
}
