package room

import (
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/sfu"
)

// streamStateDelay gathers the stream state changes of one subscriber into one message:
// a budget cut often pauses several tracks in a row.
const streamStateDelay = 100 * time.Millisecond

// streamStates tells a subscriber which video tracks the server paused for lack of
// downlink bandwidth and which it resumed (sfu.Allocator.OnStreamState), as LiveKit does:
// SignalResponse_StreamStateUpdate with the publisher's and the track's sids and PAUSED
// or ACTIVE; livekit-client sets the remote track's streamState and emits
// TrackStreamStateChanged, so an application can say why a picture stopped. Changes are
// gathered for streamStateDelay; only those that differ from what the client was last
// told are sent.
type streamStates struct {
	delay time.Duration
	// target names d's publisher and track, false once d is no longer subscribed.
	target func(d *sfu.DownTrack) (participantSID, trackSID string, ok bool)
	send   func(*livekit.SignalResponse)

	mu      sync.Mutex
	pending map[*sfu.DownTrack]bool // the newest state (paused) of each changed track
	told    map[*sfu.DownTrack]bool // tracks the client was told are paused
	timer   *time.Timer
	closed  bool
}

func newStreamStates(target func(*sfu.DownTrack) (string, string, bool), send func(*livekit.SignalResponse)) *streamStates {
	return &streamStates{delay: streamStateDelay, target: target, send: send,
		pending: map[*sfu.DownTrack]bool{}, told: map[*sfu.DownTrack]bool{}}
}

// note records d's new state and schedules the message. It is the Allocator's callback:
// it returns at once.
func (s *streamStates) note(d *sfu.DownTrack, paused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.pending[d] = paused
	if s.timer == nil {
		s.timer = time.AfterFunc(s.delay, s.flush)
	}
}

// flush sends the changes gathered since the last one.
func (s *streamStates) flush() {
	s.mu.Lock()
	changed := make(map[*sfu.DownTrack]bool, len(s.pending))
	for d, paused := range s.pending {
		if s.told[d] != paused {
			changed[d] = paused
		}
		if paused {
			s.told[d] = true
		} else {
			delete(s.told, d)
		}
	}
	for d := range s.told {
		if d.Closed() {
			delete(s.told, d) // unsubscribed: a new subscription starts active
		}
	}
	s.pending, s.timer = map[*sfu.DownTrack]bool{}, nil
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return
	}
	var infos []*livekit.StreamStateInfo
	for d, paused := range changed {
		participant, track, ok := s.target(d)
		if !ok {
			continue
		}
		state := livekit.StreamState_ACTIVE
		if paused {
			state = livekit.StreamState_PAUSED
		}
		infos = append(infos, &livekit.StreamStateInfo{ParticipantSid: participant, TrackSid: track, State: state})
	}
	if len(infos) > 0 {
		s.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_StreamStateUpdate{
			StreamStateUpdate: &livekit.StreamStateUpdate{StreamStates: infos},
		}})
	}
}

// close drops what is pending and sends nothing more.
func (s *streamStates) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
}

// streamStateTarget names the publisher and the track of a down track p receives.
func (p *Participant) streamStateTarget(d *sfu.DownTrack) (participantSID, trackSID string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for sid, s := range p.subscribed {
		if s.down == d {
			return s.track.owner.sid, sid, true
		}
	}
	return "", "", false
}

// watchStreamStates tells the client about the bandwidth pauses of t's down tracks.
func (p *Participant) watchStreamStates(t *transport) {
	if t.alloc == nil {
		return
	}
	p.streams = newStreamStates(p.streamStateTarget, func(r *livekit.SignalResponse) {
		p.logger.Debug("stream states", "states", r.GetStreamStateUpdate().GetStreamStates())
		p.send(r)
	})
	t.alloc.OnStreamState(p.streams.note)
}
