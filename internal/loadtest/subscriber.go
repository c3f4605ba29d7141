package loadtest

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"
)

// subscriber is one participant that only receives: it subscribes to every track (the server
// auto-subscribes it), optionally asks for a grid layout, and accounts every packet.
type subscriber struct {
	r     *runner
	index int
	cl    *client

	opened     int64        // run clock (ns) when the websocket dial started
	joined     atomic.Int64 // run clock of the JoinResponse; 0 before
	firstMedia atomic.Int64 // run clock of the first media packet; 0 before
	allTracks  atomic.Int64 // run clock when every expected track had delivered a packet
	failed     atomic.Bool
	unexpected atomic.Int64 // tracks that the generator did not publish

	mu       sync.Mutex
	streams  []*streamStats
	seen     map[int]bool
	settings map[string]bool // video track sids a layout setting was sent for
}

// start joins the room; media accounting then runs from pion's callbacks.
func (s *subscriber) start(ctx context.Context) {
	s.opened = int64(s.r.now())
	s.seen = map[int]bool{}
	s.settings = map[string]bool{}
	cl, err := s.r.connect(ctx, fmt.Sprintf("lt-sub-%04d", s.index), false, func(c *client) {
		c.onParticipants = s.onParticipants
		c.onTrack = s.onTrack
	})
	if err != nil {
		s.failed.Store(true)
		s.r.errs.add("join", fmt.Errorf("lt-sub-%04d: %w", s.index, err))
		return
	}
	s.joined.Store(int64(s.r.now()))
	s.mu.Lock()
	s.cl = cl
	s.mu.Unlock()
}

func (s *subscriber) client() *client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cl
}

// onParticipants applies the grid layout to video tracks as they become known: the first
// video publisher's track at HIGH, every other one at LOW.
func (s *subscriber) onParticipants(c *client, infos []*livekit.ParticipantInfo) {
	if s.r.cfg.Layout != LayoutGrid {
		return
	}
	var sids []string
	for _, p := range infos {
		for _, t := range p.Tracks {
			if t.Type != livekit.TrackType_VIDEO || s.settings[t.Sid] {
				continue
			}
			s.settings[t.Sid] = true
			sids = append(sids, t.Sid)
		}
	}
	for _, sid := range sids {
		q := livekit.VideoQuality_LOW
		if sid == s.r.highSID {
			q = livekit.VideoQuality_HIGH
		}
		err := c.sig.send(&livekit.SignalRequest{Message: &livekit.SignalRequest_TrackSetting{
			TrackSetting: &livekit.UpdateTrackSettings{TrackSids: []string{sid}, Quality: q},
		}})
		if err != nil {
			s.r.errs.add("signal", fmt.Errorf("lt-sub-%04d: track settings: %w", s.index, err))
		}
	}
}

// onTrack starts reading a subscribed track.
func (s *subscriber) onTrack(t *webrtc.TrackRemote, rr *webrtc.RTPReceiver) {
	idx, ok := s.r.bySID[t.ID()]
	if !ok {
		s.unexpected.Add(1)
		idx = -1
	}
	video := t.Kind() == webrtc.RTPCodecTypeVideo
	st := newStreamStats(idx, t.Codec().ClockRate, video)
	s.mu.Lock()
	s.streams = append(s.streams, st)
	s.mu.Unlock()
	go func() {
		// Sender reports from the server: read and dropped so pion's buffer stays empty.
		for {
			if _, _, err := rr.ReadRTCP(); err != nil {
				return
			}
		}
	}()
	go func() {
		buf := make([]byte, 1500)
		first := true
		var ring *arrivalRing
		tries := 0
		for {
			n, _, err := t.Read(buf)
			if err != nil {
				return
			}
			now := int64(s.r.now())
			if first {
				first = false
				s.noteFirst(idx, now)
			}
			if ring == nil && tries < 100 {
				tries++
				ring = s.arrivalRing()
			}
			var sock int64
			if ring != nil && n >= 12 {
				sock, _ = ring.get(binary.BigEndian.Uint32(buf[8:12]), binary.BigEndian.Uint16(buf[2:4]))
			}
			st.onPacket(buf[:n], now, sock)
			if sock != 0 {
				if h, ok := parseRTP(buf[:n]); ok {
					if tr, res := checkPayload(buf[h.payloadStart:h.payloadEnd], video); res == payloadOK {
						s.r.timeline.add(now, sock-tr.sendNs)
						continue
					}
				}
			}
			s.r.timeline.add(now, 0)
		}
	}()
}

// arrivalRing returns the arrival ring of the UDP socket the subscriber PeerConnection
// receives on (nil when unknown, and over ICE-TCP: rings exist for UDP sockets only, and a
// TCP port may have the number of another client's UDP socket).
func (s *subscriber) arrivalRing() *arrivalRing {
	pair := s.selectedPair()
	if pair == nil || pair.Local.Protocol != webrtc.ICEProtocolUDP {
		return nil
	}
	return s.r.stack.arrivals.ring(int(pair.Local.Port))
}

// selectedPair returns the subscriber PeerConnection's selected ICE candidate pair (nil
// before there is one).
func (s *subscriber) selectedPair() *webrtc.ICECandidatePair {
	c := s.client()
	if c == nil || c.sub.SCTP() == nil {
		return nil
	}
	pair, err := c.sub.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil {
		return nil
	}
	return pair
}

// noteFirst records the first packet of track idx.
func (s *subscriber) noteFirst(idx int, now int64) {
	s.firstMedia.CompareAndSwap(0, now)
	if idx < 0 {
		return
	}
	s.mu.Lock()
	s.seen[idx] = true
	n := len(s.seen)
	s.mu.Unlock()
	if n == s.r.expected {
		s.allTracks.CompareAndSwap(0, now)
	}
}

// complete reports whether every expected track delivered media.
func (s *subscriber) complete() bool { return s.allTracks.Load() != 0 }

func (s *subscriber) streamList() []*streamStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*streamStats(nil), s.streams...)
}

// tracksReceived returns how many distinct expected tracks delivered media.
func (s *subscriber) tracksReceived() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}
