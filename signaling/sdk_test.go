package signaling

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/logger"
	lksignalling "github.com/livekit/server-sdk-go/v2/signalling"
	"github.com/pion/webrtc/v4"
	"google.golang.org/protobuf/proto"
)

// sdkHandler collects what the SDK's signal transport receives.
type sdkHandler struct {
	messages chan *livekit.SignalResponse
	closed   chan struct{}
}

func (h *sdkHandler) SetLogger(logger.Logger) {}

func (h *sdkHandler) HandleMessage(msg proto.Message) error {
	if res, ok := msg.(*livekit.SignalResponse); ok {
		h.messages <- res
	}
	return nil
}

func (h *sdkHandler) OnTransportClose() { close(h.closed) }

// TestLiveKitGoSDK drives the handler with the LiveKit Go SDK's own signal transport: its
// query parameters, Authorization header, validate request and message framing.
func TestLiveKitGoSDK(t *testing.T) {
	j := newFakeJoiner()
	srv := newTestServer(t, Config{}, j)
	tok := testToken(t, "gopher")
	sig := lksignalling.NewSignalling(lksignalling.SignallingParams{Logger: logger.GetLogger()})

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	// The SDK validates with the same parameters after a failed connection.
	params := lksignalling.ConnectParams{AutoSubscribe: false}
	vreq, err := sig.HTTPRequestForValidate(ctx, "2.19.0", 16, srv.URL, tok, &params, "")
	if err != nil {
		t.Fatal(err)
	}
	vresp, err := http.DefaultClient.Do(vreq)
	if err != nil {
		t.Fatal(err)
	}
	vresp.Body.Close()
	if vresp.StatusCode != http.StatusOK {
		t.Fatalf("validate status %d", vresp.StatusCode)
	}

	h := &sdkHandler{messages: make(chan *livekit.SignalResponse, 16), closed: make(chan struct{})}
	transport := lksignalling.NewSignalTransportWebSocket(lksignalling.SignalTransportWebSocketParams{
		Logger:                 logger.GetLogger(),
		Version:                "2.19.0",
		Protocol:               16,
		Signalling:             sig,
		SignalTransportHandler: h,
		SignalHandler:          h,
	})
	if err := transport.Join(ctx, srv.URL, tok, params, nil, webrtc.SessionDescription{}); err != nil {
		t.Fatalf("SDK join: %v", err)
	}
	select {
	case res := <-h.messages:
		if res.GetJoin().GetParticipant().GetIdentity() != "gopher" {
			t.Fatalf("first message %v, want the join response", res)
		}
	case <-time.After(waitFor):
		t.Fatal("no join response")
	}
	transport.Start()

	s := j.nextSession(t)
	ci := s.req.ClientInfo
	if s.req.AutoSubscribe || ci.GetSdk() != livekit.ClientInfo_GO || ci.GetProtocol() != 16 || ci.GetVersion() != "2.19.0" {
		t.Errorf("join request %+v, client %v", s.req, ci)
	}

	// SDK -> room.
	if err := transport.SendMessage(sig.SignalMuteTrack(&livekit.MuteTrackRequest{Sid: "TR_1", Muted: true})); err != nil {
		t.Fatal(err)
	}
	if got := s.nextRequest(t).GetMute(); got.GetSid() != "TR_1" || !got.GetMuted() {
		t.Errorf("room got %v", got)
	}
	// Room -> SDK.
	if err := s.sink.Send(LeaveResponse(livekit.DisconnectReason_ROOM_DELETED, livekit.LeaveRequest_DISCONNECT)); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-h.messages:
		if res.GetLeave().GetReason() != livekit.DisconnectReason_ROOM_DELETED {
			t.Errorf("SDK got %v, want the leave", res)
		}
	case <-time.After(waitFor):
		t.Fatal("the SDK got no leave")
	}
	s.sink.Close()
	select {
	case <-h.closed:
	case <-time.After(waitFor):
		t.Fatal("the SDK transport did not see the close")
	}
	s.waitClosed(t)
}
