package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"
)

// client is one participant's connection: the signaling websocket, the subscriber
// PeerConnection (the server offers on it, always present because the server opens its data
// channels there) and, for publishers, the publisher PeerConnection (the client offers).
type client struct {
	r        *runner
	identity string
	sig      *signalClient
	join     *livekit.JoinResponse

	sub *webrtc.PeerConnection
	pub *webrtc.PeerConnection

	// Callbacks set before connect returns, called from the signal read loop.
	onParticipants func(*client, []*livekit.ParticipantInfo)
	onTrack        func(*webrtc.TrackRemote, *webrtc.RTPReceiver)
	onQuality      func(*livekit.SubscribedQualityUpdate)

	mu         sync.Mutex
	pending    map[livekit.SignalTarget][]webrtc.ICECandidateInit
	published  map[string]chan *livekit.TrackInfo // by cid
	answered   chan struct{}                      // publisher answer applied
	closing    bool
	pubConnect chan struct{} // closed when the publisher PeerConnection connects

	done chan struct{} // closed when the read loop ends
}

// connect opens the signaling connection and the PeerConnections; the subscriber side then
// negotiates by itself as the server offers. setup, when given, sets callbacks before anything
// can call them.
func (r *runner) connect(ctx context.Context, identity string, publisher bool,
	setup func(*client)) (*client, error) {
	token, err := accessToken(r.cfg.APIKey, r.cfg.APISecret, r.cfg.Room, identity, publisher)
	if err != nil {
		return nil, err
	}
	rtc, err := rtcURL(r.cfg.URL, !publisher)
	if err != nil {
		return nil, err
	}
	c := &client{
		r: r, identity: identity,
		pending:    map[livekit.SignalTarget][]webrtc.ICECandidateInit{},
		published:  map[string]chan *livekit.TrackInfo{},
		answered:   make(chan struct{}, 1),
		pubConnect: make(chan struct{}),
		done:       make(chan struct{}),
	}
	if setup != nil {
		setup(c)
	}
	// A publisher's subscriber PeerConnection carries only the server's data channels: it
	// stays on UDP like the publisher's own.
	if c.sub, err = r.stack.newPeerConnection(!publisher); err != nil {
		return nil, err
	}
	c.wirePC(c.sub, livekit.SignalTarget_SUBSCRIBER, nil)
	c.sub.OnTrack(func(t *webrtc.TrackRemote, rr *webrtc.RTPReceiver) {
		if c.onTrack != nil {
			c.onTrack(t, rr)
		}
	})
	if publisher {
		if c.pub, err = r.stack.newPeerConnection(false); err != nil {
			_ = c.sub.Close()
			return nil, err
		}
		c.wirePC(c.pub, livekit.SignalTarget_PUBLISHER, c.pubConnect)
	}
	c.sig, c.join, err = dialSignal(ctx, rtc, token, r.cfg.JoinTimeout)
	if err != nil {
		c.closePCs()
		return nil, err
	}
	if c.onParticipants != nil {
		c.onParticipants(c, c.join.OtherParticipants)
	}
	go func() {
		defer close(c.done)
		err := c.sig.readLoop(c.handle)
		c.mu.Lock()
		closing := c.closing
		c.mu.Unlock()
		if !closing {
			r.errs.add("signal", fmt.Errorf("%s: signal connection lost: %v", identity, err))
		}
	}()
	go c.sig.pingLoop(time.Duration(c.join.PingInterval)*time.Second, c.done)
	return c, nil
}

// wirePC trickles pc's candidates to the server, closes connected (if not nil) once pc
// connects and reports a failed connection.
func (c *client) wirePC(pc *webrtc.PeerConnection, target livekit.SignalTarget, connected chan struct{}) {
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil || c.sig == nil {
			return
		}
		b, err := json.Marshal(cand.ToJSON())
		if err != nil {
			return
		}
		_ = c.sig.send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Trickle{Trickle: &livekit.TrickleRequest{
			CandidateInit: string(b), Target: target,
		}}})
	})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			if connected != nil {
				once.Do(func() { close(connected) })
			}
		case webrtc.PeerConnectionStateFailed:
			c.mu.Lock()
			closing := c.closing
			c.mu.Unlock()
			if !closing {
				c.r.errs.add("ice", fmt.Errorf("%s: %s peer connection failed", c.identity, target))
			}
		}
	})
}

// handle processes one server message (in the read loop goroutine, so in order).
func (c *client) handle(msg *livekit.SignalResponse) {
	switch m := msg.Message.(type) {
	case *livekit.SignalResponse_Offer:
		if err := c.answerOffer(m.Offer); err != nil {
			c.r.errs.add("negotiation", fmt.Errorf("%s: subscriber offer: %w", c.identity, err))
		}
	case *livekit.SignalResponse_Answer:
		if c.pub == nil {
			return
		}
		sd := webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.Answer.Sdp}
		if err := c.pub.SetRemoteDescription(sd); err != nil {
			c.r.errs.add("negotiation", fmt.Errorf("%s: publisher answer: %w", c.identity, err))
			return
		}
		c.flushCandidates(livekit.SignalTarget_PUBLISHER, c.pub)
		select {
		case c.answered <- struct{}{}:
		default:
		}
	case *livekit.SignalResponse_Trickle:
		var cand webrtc.ICECandidateInit
		if err := json.Unmarshal([]byte(m.Trickle.CandidateInit), &cand); err != nil {
			c.r.errs.add("negotiation", fmt.Errorf("%s: bad candidate: %w", c.identity, err))
			return
		}
		pc := c.sub
		if m.Trickle.Target == livekit.SignalTarget_PUBLISHER {
			pc = c.pub
		}
		if pc == nil {
			return
		}
		c.mu.Lock()
		if pc.RemoteDescription() == nil {
			c.pending[m.Trickle.Target] = append(c.pending[m.Trickle.Target], cand)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		_ = pc.AddICECandidate(cand)
	case *livekit.SignalResponse_TrackPublished:
		c.mu.Lock()
		ch := c.published[m.TrackPublished.Cid]
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m.TrackPublished.Track:
			default:
			}
		}
	case *livekit.SignalResponse_SubscribedQualityUpdate:
		if c.onQuality != nil {
			c.onQuality(m.SubscribedQualityUpdate)
		}
	case *livekit.SignalResponse_Update:
		if c.onParticipants != nil {
			c.onParticipants(c, m.Update.Participants)
		}
	case *livekit.SignalResponse_Leave:
		c.mu.Lock()
		closing := c.closing
		c.mu.Unlock()
		if !closing {
			c.r.errs.add("signal", fmt.Errorf("%s: server sent leave: %s", c.identity, m.Leave.GetReason()))
		}
	case *livekit.SignalResponse_RequestResponse:
		if rr := m.RequestResponse; rr.Reason != livekit.RequestResponse_OK {
			c.r.errs.add("request", fmt.Errorf("%s: request refused: %s %s", c.identity, rr.Reason, rr.Message))
		}
	}
}

// answerOffer answers the server's offer on the subscriber PeerConnection.
func (c *client) answerOffer(o *livekit.SessionDescription) error {
	if err := c.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: o.Sdp}); err != nil {
		return err
	}
	c.flushCandidates(livekit.SignalTarget_SUBSCRIBER, c.sub)
	answer, err := c.sub.CreateAnswer(nil)
	if err != nil {
		return err
	}
	if err := c.sub.SetLocalDescription(answer); err != nil {
		return err
	}
	return c.sig.send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Answer{Answer: &livekit.SessionDescription{
		Type: "answer", Sdp: c.sub.LocalDescription().SDP, Id: o.Id,
	}}})
}

func (c *client) flushCandidates(target livekit.SignalTarget, pc *webrtc.PeerConnection) {
	c.mu.Lock()
	cands := c.pending[target]
	delete(c.pending, target)
	c.mu.Unlock()
	for _, cand := range cands {
		_ = pc.AddICECandidate(cand)
	}
}

// addTrack announces a track (add_track) and waits for the server's track_published.
func (c *client) addTrack(ctx context.Context, req *livekit.AddTrackRequest) (*livekit.TrackInfo, error) {
	ch := make(chan *livekit.TrackInfo, 1)
	c.mu.Lock()
	c.published[req.Cid] = ch
	c.mu.Unlock()
	if err := c.sig.send(&livekit.SignalRequest{Message: &livekit.SignalRequest_AddTrack{AddTrack: req}}); err != nil {
		return nil, err
	}
	select {
	case info := <-ch:
		return info, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		return nil, errors.New("signal connection closed")
	case <-time.After(c.r.cfg.JoinTimeout):
		return nil, errors.New("no track_published from the server")
	}
}

// negotiatePublisher sends an offer on the publisher PeerConnection and waits for the answer
// and the connection.
func (c *client) negotiatePublisher(ctx context.Context) error {
	offer, err := c.pub.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := c.pub.SetLocalDescription(offer); err != nil {
		return err
	}
	if err := c.sig.send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Offer{Offer: &livekit.SessionDescription{
		Type: "offer", Sdp: c.pub.LocalDescription().SDP, Id: 1,
	}}}); err != nil {
		return err
	}
	timeout := time.After(c.r.cfg.JoinTimeout)
	for _, ch := range []<-chan struct{}{asRecv(c.answered), c.pubConnect} {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return errors.New("signal connection closed")
		case <-timeout:
			return errors.New("publisher connection not established")
		}
	}
	return nil
}

func asRecv(ch chan struct{}) <-chan struct{} { return ch }

// close leaves the room and closes everything.
func (c *client) close() {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.mu.Unlock()
	if c.sig != nil {
		c.sig.leave()
		<-c.done
	}
	c.closePCs()
}

func (c *client) closePCs() {
	if c.pub != nil {
		_ = c.pub.Close()
	}
	if c.sub != nil {
		_ = c.sub.Close()
	}
}
