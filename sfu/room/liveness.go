package room

import (
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/internal/rooms"
	"github.com/sanke-edu/sanke/sfu"
)

// Media liveness: a client whose signal connection lives but whose media path died (its UDP
// got blocked, its network changed under a signal connection that survived) is recovered in
// seconds rather than after pion's ICE timeouts (10 s to disconnected, 20 s to failed).
const (
	// subscriberVideoSilence: nothing from the subscriber (RTCP, ICE traffic) for this long
	// while video is sent to it. Browsers report received video about every second
	// (libwebrtc's video RTCP interval), the Go SDK every second, and pion's ICE keepalive
	// (every 2 s, MediaAPI) draws an answer.
	subscriberVideoSilence = 2500 * time.Millisecond
	// subscriberAudioSilence: the same while only audio is sent: libwebrtc reports audio
	// every 5 s.
	subscriberAudioSilence = 8 * time.Second
	// publisherSilence: no RTP from the client's unmuted published tracks for this long.
	publisherSilence = 2 * time.Second
	// livenessRecoveryInterval bounds the recoveries of one participant: a rural line's
	// outage of a second or two must not restart ICE in a loop.
	livenessRecoveryInterval = 10 * time.Second
	// livenessStallGap: samples further apart than this (the room's loop samples every
	// 300 ms) mean the server itself was starved of CPU; its readers were too, so the
	// silence it saw over the gap is its own, not the client's: the check counts afresh.
	livenessStallGap = time.Second
)

// livenessAction is what the liveness check asks for.
type livenessAction uint8

const (
	livenessOK livenessAction = iota
	// livenessRestartSubscriber: restart ICE on the subscriber PeerConnection (our offer).
	livenessRestartSubscriber
	// livenessResume: ask the client to resume (LeaveRequest RESUME): it reconnects its
	// signal and restarts ICE on the PeerConnection it offers.
	livenessResume
)

// mediaActivity is a participant's media counters at one moment.
type mediaActivity struct {
	sentVideo, sentAudio uint64 // packets sent to the client
	// heard counts what came from the client on the PeerConnection we send on: RTCP read
	// for the tracks sent, plus the bytes of its selected ICE pair (RTCP, STUN checks and
	// answers to our keepalives: a live path is never silent for seconds).
	heard      uint64
	received   uint64 // packets received on the client's unmuted published tracks
	publishing bool   // the client has unmuted published tracks that sent media
}

// liveness judges one participant's media path from its counters, sampled a few times a
// second. It holds no lock: one goroutine (the room's loop) samples a participant.
type liveness struct {
	started    bool
	last       mediaActivity
	lastAt     time.Time // when last was sampled
	lastRTCP   time.Time // when the RTCP count last rose (or the check started, or recovered)
	lastRecv   time.Time // the same for the published media
	videoSince time.Time // start of the current run of samples in which video was sent; zero: none
	audioSince time.Time
	recovered  time.Time  // the last recovery asked for
	sink       rooms.Sink // the signal connection the samples were taken under
}

// observe records a sample taken at now and returns the recovery the path needs, if any.
// downUp and pubUp say whether the PeerConnections we send on and receive on are connected
// (before they first connect, and while ICE restarts, silence means nothing).
func (l *liveness) observe(now time.Time, a mediaActivity, downUp, pubUp bool) livenessAction {
	if !l.started {
		l.started, l.last, l.lastAt, l.lastRTCP, l.lastRecv = true, a, now, now, now
		return livenessOK
	}
	prev, prevAt := l.last, l.lastAt
	l.last, l.lastAt = a, now
	stalled := now.Sub(prevAt) > livenessStallGap
	if a.heard != prev.heard || !downUp || stalled {
		l.lastRTCP = now
	}
	if a.received != prev.received || !a.publishing || !pubUp || stalled {
		l.lastRecv = now
	}
	l.videoSince = runStart(l.videoSince, prevAt, a.sentVideo != prev.sentVideo)
	l.audioSince = runStart(l.audioSince, prevAt, a.sentAudio != prev.sentAudio)
	if !l.recovered.IsZero() && now.Sub(l.recovered) < livenessRecoveryInterval {
		return livenessOK
	}
	var action livenessAction
	switch {
	case silentFor(now, l.lastRTCP, l.videoSince) >= subscriberVideoSilence,
		silentFor(now, l.lastRTCP, l.audioSince) >= subscriberAudioSilence:
		action = livenessRestartSubscriber
	case now.Sub(l.lastRecv) >= publisherSilence:
		action = livenessResume
	default:
		return livenessOK
	}
	l.recovered, l.lastRTCP, l.lastRecv = now, now, now
	return action
}

// runStart returns when the current run of active samples started: since while active
// (the previous sample's time, from, if a run starts), zero when the sample was idle.
func runStart(since, from time.Time, active bool) time.Time {
	switch {
	case !active:
		return time.Time{}
	case since.IsZero():
		return from
	default:
		return since
	}
}

// silentFor returns how long the client has been silent while we kept sending since
// sendingSince (zero: not sending now).
func silentFor(now, lastHeard, sendingSince time.Time) time.Duration {
	if sendingSince.IsZero() {
		return 0
	}
	if lastHeard.After(sendingSince) {
		return now.Sub(lastHeard)
	}
	return now.Sub(sendingSince)
}

// mediaActivity samples the participant's counters (outside its lock: the down tracks and
// receivers take their own).
func (p *Participant) mediaActivity() mediaActivity {
	p.mu.Lock()
	downs := make([]*sfu.DownTrack, 0, len(p.subscribed))
	for _, s := range p.subscribed {
		downs = append(downs, s.down)
	}
	receivers := make([]*sfu.Receiver, 0, len(p.published))
	for _, t := range p.published {
		receivers = append(receivers, t.receiver)
	}
	p.mu.Unlock()
	var a mediaActivity
	for _, d := range downs {
		sent, rtcp := d.Activity()
		if d.Kind() == webrtc.RTPCodecTypeVideo {
			a.sentVideo += sent
		} else {
			a.sentAudio += sent
		}
		a.heard += rtcp
	}
	for _, r := range receivers {
		if r.Muted() {
			continue
		}
		if n := r.Stats().Packets; n > 0 {
			a.received += n
			a.publishing = true
		}
	}
	return a
}

// checkLiveness samples the participant's media and recovers a dead path while the signal
// connection lives (without one the client recovers by itself, resuming). The room's loop
// calls it.
func (p *Participant) checkLiveness(now time.Time) {
	p.mu.Lock()
	sink := p.sink
	signal := sink != nil && !p.closed && p.disconnect == nil
	p.mu.Unlock()
	down := p.downTransport()
	if !signal || down == nil {
		p.live = liveness{} // start afresh once the client is back
		return
	}
	if p.live.sink != sink {
		// A new signal connection: the client resumed and restarts ICE now. Count afresh
		// (the PeerConnections' states hold the check while ICE reconnects).
		p.live = liveness{sink: sink, recovered: p.live.recovered}
	}
	pub := p.pub()
	act := p.mediaActivity()
	act.heard += down.pathTraffic()
	switch p.live.observe(now, act, down.isUp(), pub == nil || pub.isUp()) {
	case livenessOK:
	case livenessRestartSubscriber:
		down.preferTCPAfterUDPFailure()
		if p.single {
			p.logger.Info("media liveness: nothing heard from the client while sending, asking it to resume")
			p.send(leaveMessage(livekit.DisconnectReason_UNKNOWN_REASON, livekit.LeaveRequest_RESUME))
			return
		}
		p.logger.Info("media liveness: nothing heard from the client while sending, restarting ICE")
		p.subscriber.Negotiate(true)
	case livenessResume:
		if pub != nil {
			pub.preferTCPAfterUDPFailure()
		}
		p.logger.Info("media liveness: no media from the client's published tracks, asking it to resume")
		p.send(leaveMessage(livekit.DisconnectReason_UNKNOWN_REASON, livekit.LeaveRequest_RESUME))
	}
}

// onPathChange runs when ICE selects a new pair for the PeerConnection that carries media to
// the client. After it first connected, that is a restart or a move (to ICE-TCP, a new
// network): the client has likely lost packets on the way, so every video track asks its
// publisher for a keyframe now rather than after the client's own PLI.
func (p *Participant) onPathChange() {
	down := p.downTransport()
	if down == nil || !down.isConnected() {
		return
	}
	p.mu.Lock()
	var video []*subscription
	for _, s := range p.subscribed {
		if s.down.Kind() == webrtc.RTPCodecTypeVideo {
			video = append(video, s)
		}
	}
	p.mu.Unlock()
	p.logger.Debug("media path changed", "video_tracks", len(video))
	for _, s := range video {
		s.down.RequestKeyframe()
	}
}
