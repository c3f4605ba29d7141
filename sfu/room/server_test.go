package room_test

import (
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/internal/server"
	"github.com/sanke-edu/sanke/sfu/room"
	tc "github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testclient/inprocess"
)

// The tests of this file run a whole server in the test process and drive it through its
// websocket and the LiveKit Go SDK, reading what the room manager holds (participants,
// PeerConnections, transceivers) to check that it stays bounded.

// wait bounds every wait for a positive signal (race detector, loaded machine).
const wait = 30 * time.Second

// startServer runs a server in the test process without recording (its hidden client would
// add PeerConnections of its own); setup, when not nil, runs before it serves.
func startServer(t *testing.T, setup func(*server.Server)) (*inprocess.Server, *room.Manager) {
	t.Helper()
	cfg := config.DevDefault()
	cfg.Recording.Enabled = false
	srv := inprocess.StartWith(t, cfg, setup)
	return srv, srv.Server.Rooms()
}

// sigClient is a websocket signaling client without WebRTC: it sends what a test tells it
// and keeps what the server answers.
type sigClient struct {
	t  *testing.T
	ws *websocket.Conn

	mu       sync.Mutex
	msgs     []*livekit.SignalResponse
	closeErr error // why reading stopped
	done     chan struct{}
}

// dialSignal joins with token on /rtc (with extra query values) and reads the server's
// messages until the connection ends. It returns an error if the join is refused.
func dialSignal(t *testing.T, target tc.Target, token string, extra url.Values) (*sigClient, error) {
	q := url.Values{"access_token": {token}, "protocol": {"16"}, "sdk": {"go"}, "auto_subscribe": {"0"}}
	for k, v := range extra {
		q[k] = v
	}
	ws, _, err := websocket.DefaultDialer.Dial(target.URL+"/rtc?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	c := &sigClient{t: t, ws: ws, done: make(chan struct{})}
	t.Cleanup(func() { _ = ws.Close(); <-c.done })
	go func() {
		defer close(c.done)
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				c.mu.Lock()
				c.closeErr = err
				c.mu.Unlock()
				return
			}
			m := &livekit.SignalResponse{}
			if proto.Unmarshal(data, m) == nil {
				c.mu.Lock()
				c.msgs = append(c.msgs, m)
				c.mu.Unlock()
			}
		}
	}()
	return c, nil
}

// send writes req, failing the test if it cannot.
func (c *sigClient) send(req *livekit.SignalRequest) {
	c.t.Helper()
	data, err := proto.Marshal(req)
	if err == nil {
		err = c.ws.WriteMessage(websocket.BinaryMessage, data)
	}
	if err != nil {
		c.t.Fatalf("send %T: %v", req.Message, err)
	}
}

// find returns the first message that match accepts, or nil.
func (c *sigClient) find(match func(*livekit.SignalResponse) bool) *livekit.SignalResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.msgs {
		if match(m) {
			return m
		}
	}
	return nil
}

// await waits for a message that match accepts, or for the connection to end (nil then).
func (c *sigClient) await(what string, match func(*livekit.SignalResponse) bool) *livekit.SignalResponse {
	c.t.Helper()
	var found *livekit.SignalResponse
	tc.Eventually(c.t, wait, what, func() (bool, string) {
		if found = c.find(match); found != nil {
			return true, ""
		}
		select {
		case <-c.done:
			return true, ""
		default:
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return false, fmt.Sprintf("%d messages", len(c.msgs))
	})
	return found
}

// closed returns why the connection ended, nil while it is open.
func (c *sigClient) closed() error {
	select {
	case <-c.done:
	default:
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

// participantStats returns the server's statistics of identity in roomName.
func participantStats(t *testing.T, rooms *room.Manager, roomName, identity string) room.ParticipantStats {
	t.Helper()
	stats, err := rooms.Stats(roomName)
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range stats {
		if ps.Info.GetIdentity() == identity {
			return ps
		}
	}
	t.Fatalf("%s is not in room %s", identity, roomName)
	return room.ParticipantStats{}
}
