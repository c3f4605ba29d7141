package room

import (
	"time"

	"github.com/livekit/protocol/livekit"
)

// qualityInterval is how often connection quality is scored and sent.
const qualityInterval = 3 * time.Second

// qualityCounters remembers a participant's received/lost totals at the last scoring, so
// loss is measured per interval.
type qualityCounters struct {
	packets, lost uint64
	sent          livekit.ConnectionQuality
	sentOnce      bool
}

// Thresholds for scoring; rural links with a few percent loss still carry a usable class.
const (
	excellentLoss = 0.02
	goodLoss      = 0.07
	excellentRTT  = 300 * time.Millisecond
	goodRTT       = 800 * time.Millisecond
	// Video arrives in frame-sized bursts: 30-50 ms of RFC 3550 jitter is normal even on
	// loopback.
	excellentJit = 80 * time.Millisecond
	goodJit      = 200 * time.Millisecond
)

// scoreQuality maps measured loss (fraction), RTT and jitter to a LiveKit quality and a score
// in [1,5] (5 = excellent). It never says LOST: livekit-client reconnects a publisher that
// stays LOST, and an SFU cannot tell a silent publisher from a lost one reliably.
func scoreQuality(loss float64, rtt, jitter time.Duration) (livekit.ConnectionQuality, float32) {
	switch {
	case loss <= excellentLoss && rtt <= excellentRTT && jitter <= excellentJit:
		return livekit.ConnectionQuality_EXCELLENT, 5 - float32(loss/excellentLoss)*0.5
	case loss <= goodLoss && rtt <= goodRTT && jitter <= goodJit:
		return livekit.ConnectionQuality_GOOD, 4 - float32(loss/goodLoss)
	default:
		score := 3 - float32(loss)*10
		if score < 1 {
			score = 1
		}
		return livekit.ConnectionQuality_POOR, score
	}
}

// measureQuality scores p from what it sends (loss on its published tracks) and what it
// receives (its subscribers' receiver reports), taking the worse of the two.
func (p *Participant) measureQuality() (livekit.ConnectionQuality, float32, bool) {
	p.mu.Lock()
	pubs := make([]*PublishedTrack, 0, len(p.published))
	for _, t := range p.published {
		pubs = append(pubs, t)
	}
	subs := make([]*subscription, 0, len(p.subscribed))
	for _, s := range p.subscribed {
		subs = append(subs, s)
	}
	p.mu.Unlock()

	var packets, lost uint64
	for _, t := range pubs {
		st := t.receiver.Stats()
		packets += st.Packets
		lost += st.Lost
	}
	var worstLoss float64
	var rtt, jitter time.Duration
	measured := false
	p.mu.Lock()
	dp, dl := packets-p.quality.packets, lost-p.quality.lost
	if packets < p.quality.packets || lost < p.quality.lost {
		dp, dl = 0, 0 // a track went away: start over
	}
	p.quality.packets, p.quality.lost = packets, lost
	p.mu.Unlock()
	if dp+dl > 0 {
		worstLoss = float64(dl) / float64(dp+dl)
		measured = true
	}
	for _, s := range subs {
		st := s.down.Stats()
		if st.Packets == 0 {
			continue
		}
		measured = true
		if st.FractionLost > worstLoss {
			worstLoss = st.FractionLost
		}
		rtt = max(rtt, st.RTT)
		jitter = max(jitter, st.Jitter)
	}
	if !measured {
		return livekit.ConnectionQuality_EXCELLENT, 5, false
	}
	q, score := scoreQuality(worstLoss, rtt, jitter)
	return q, score, true
}

// updateQuality scores every participant and sends the changes to everyone.
func (r *Room) updateQuality() {
	var updates []*livekit.ConnectionQualityInfo
	for _, p := range r.participantList() {
		q, score, measured := p.measureQuality()
		p.mu.Lock()
		changed := !p.quality.sentOnce || p.quality.sent != q
		if measured || !p.quality.sentOnce {
			p.quality.sent, p.quality.sentOnce = q, true
		}
		p.mu.Unlock()
		if changed && !p.hidden {
			updates = append(updates, &livekit.ConnectionQualityInfo{ParticipantSid: p.sid, Quality: q, Score: score})
		}
	}
	if len(updates) == 0 {
		return
	}
	msg := &livekit.SignalResponse{Message: &livekit.SignalResponse_ConnectionQuality{
		ConnectionQuality: &livekit.ConnectionQualityUpdate{Updates: updates},
	}}
	for _, p := range r.participantList() {
		p.send(msg)
	}
}
