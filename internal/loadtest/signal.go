package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"
)

// clientProtocol is the LiveKit signaling protocol version the generator announces: the
// dual-PeerConnection flow (server offers on the subscriber PC, client offers on the
// publisher PC) with trickle ICE.
const clientProtocol = 16

// signalClient is one LiveKit signaling websocket: protobuf SignalRequest out, SignalResponse
// in. Writes are serialized; reads happen in one goroutine (readLoop).
type signalClient struct {
	ws  *websocket.Conn
	wmu sync.Mutex
}

// accessToken mints a join token for identity in room.
func accessToken(key, secret, room, identity string, publish bool) (string, error) {
	g := &auth.VideoGrant{RoomJoin: true, Room: room}
	g.SetCanPublish(publish)
	g.SetCanSubscribe(true)
	g.SetCanPublishData(false)
	return auth.NewAccessToken(key, secret).SetIdentity(identity).SetVideoGrant(g).SetValidFor(24 * time.Hour).ToJWT()
}

// rtcURL turns the server URL (ws://, wss://, http://, https://) into the /rtc endpoint with
// the query the LiveKit SDKs send.
func rtcURL(base string, autoSubscribe bool) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return "", fmt.Errorf("server url %q: want ws://, wss://, http:// or https://", base)
	}
	if u.Host == "" {
		return "", fmt.Errorf("server url %q has no host", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/rtc"
	q := url.Values{}
	q.Set("protocol", fmt.Sprint(clientProtocol))
	q.Set("sdk", "go")
	q.Set("version", "2.19.0")
	q.Set("os", "linux")
	q.Set("auto_subscribe", map[bool]string{true: "1", false: "0"}[autoSubscribe])
	q.Set("adaptive_stream", "0")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// dialSignal opens the websocket and waits for the JoinResponse.
func dialSignal(ctx context.Context, rtc, token string, timeout time.Duration) (*signalClient, *livekit.JoinResponse, error) {
	d := websocket.Dialer{HandshakeTimeout: timeout, ReadBufferSize: 16 << 10, WriteBufferSize: 16 << 10}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ws, resp, err := d.DialContext(dctx, rtc, h)
	if err != nil {
		if resp != nil {
			return nil, nil, fmt.Errorf("websocket: %w (HTTP %s)", err, resp.Status)
		}
		return nil, nil, fmt.Errorf("websocket: %w", err)
	}
	s := &signalClient{ws: ws}
	_ = ws.SetReadDeadline(time.Now().Add(timeout))
	for {
		msg, err := s.read()
		if err != nil {
			_ = ws.Close()
			return nil, nil, fmt.Errorf("waiting for join response: %w", err)
		}
		switch m := msg.Message.(type) {
		case *livekit.SignalResponse_Join:
			_ = ws.SetReadDeadline(time.Time{})
			return s, m.Join, nil
		case *livekit.SignalResponse_Leave:
			_ = ws.Close()
			return nil, nil, fmt.Errorf("server refused the join: %s", m.Leave.GetReason())
		}
	}
}

// read reads one message; text frames (JSON) are accepted too.
func (s *signalClient) read() (*livekit.SignalResponse, error) {
	for {
		typ, b, err := s.ws.ReadMessage()
		if err != nil {
			return nil, err
		}
		msg := &livekit.SignalResponse{}
		switch typ {
		case websocket.BinaryMessage:
			err = proto.Unmarshal(b, msg)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("bad signal message: %w", err)
		}
		return msg, nil
	}
}

// send writes one request.
func (s *signalClient) send(req *livekit.SignalRequest) error {
	b, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return s.ws.WriteMessage(websocket.BinaryMessage, b)
}

// leave tells the server the client is going, then closes the websocket.
func (s *signalClient) leave() {
	_ = s.send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Leave{Leave: &livekit.LeaveRequest{
		Reason: livekit.DisconnectReason_CLIENT_INITIATED, Action: livekit.LeaveRequest_DISCONNECT,
	}}})
	s.wmu.Lock()
	_ = s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
		time.Now().Add(time.Second))
	s.wmu.Unlock()
	_ = s.ws.Close()
}

// readLoop passes every message to handle until the websocket fails or closes.
func (s *signalClient) readLoop(handle func(*livekit.SignalResponse)) error {
	for {
		msg, err := s.read()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure {
				return nil
			}
			return err
		}
		handle(msg)
	}
}

// pingLoop sends the protocol's keepalive every interval until done closes.
func (s *signalClient) pingLoop(interval time.Duration, done <-chan struct{}) {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			now := time.Now().UnixMilli()
			if err := s.send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Ping{Ping: now}}); err != nil {
				return
			}
		}
	}
}
