package room

import (
	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/sfu"
)

// subscription is one published track forwarded to one subscriber.
type subscription struct {
	track  *PublishedTrack
	down   *sfu.DownTrack
	sender *webrtc.RTPSender
	// maxLayer and paused are the subscriber's wishes (from update_track_settings), guarded
	// by the subscriber's mutex; dynacast reads them.
	maxLayer int
	paused   bool
}

// allowsSubscriber reports whether the publisher's subscription permission lets sub see track.
// Hidden participants (supervisors) and the recorder are beyond a publisher's reach: its
// permission never shuts them out.
func (p *Participant) allowsSubscriber(sub *Participant, trackSID string) bool {
	if sub.hidden || sub.isRecorder() {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	perm := p.subPerm
	if perm == nil || perm.AllParticipants {
		return true
	}
	for _, tp := range perm.TrackPermissions {
		if tp.ParticipantSid != sub.sid && tp.ParticipantIdentity != sub.identity {
			continue
		}
		if tp.AllTracks {
			return true
		}
		for _, s := range tp.TrackSids {
			if s == trackSID {
				return true
			}
		}
	}
	return false
}

// subscribe starts forwarding track to sub. It is a no-op when already subscribed or not allowed.
func (r *Room) subscribe(sub *Participant, t *PublishedTrack) {
	owner := t.owner
	if sub == owner || !sub.canSubscribe() {
		return
	}
	sid := t.SID()
	if !owner.allowsSubscriber(sub, sid) {
		sub.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_SubscriptionPermissionUpdate{
			SubscriptionPermissionUpdate: &livekit.SubscriptionPermissionUpdate{ParticipantSid: owner.sid, TrackSid: sid, Allowed: false},
		}})
		return
	}
	priority := downlinkPriority(t) // before sub.mu: it takes the owner's
	streamID, shared := r.downStream(sub, t)
	sub.mu.Lock()
	if sub.closed {
		sub.mu.Unlock()
		return
	}
	if _, ok := sub.subscribed[sid]; ok {
		sub.mu.Unlock()
		return
	}
	down, err := sfu.NewDownTrack(sfu.DownTrackParams{
		Receiver:     t.receiver,
		SubscriberID: sub.sid,
		StreamID:     streamID,
		TrackID:      sid,
		Reports:      sub.downTransport().reports,
		Allocator:    sub.downTransport().alloc,
		Priority:     priority,
		Output:       sub.downTransport().out,
		FirstSeq:     sub.downTransport().media.firstSeq,
		RED:          supportsAudioRED(sub.clientInfo),
		// Nothing is forwarded, nor a keyframe asked for, before the connection is up.
		AwaitConnected: true,
		Logger:         sub.logger.With("track", sid),
	})
	if err != nil {
		sub.mu.Unlock()
		sub.logger.Warn("create down track", "track", sid, "err", err)
		return
	}
	sender, err := sub.addDownTrack(down, shared)
	if err != nil {
		sub.mu.Unlock()
		sub.logger.Warn("add down track", "track", sid, "err", err)
		return
	}
	if t.kind() == livekit.TrackType_AUDIO {
		sub.preferSubscriberAudio(sender)
	}
	s := &subscription{track: t, down: down, sender: sender, maxLayer: 2}
	sub.subscribed[sid] = s
	settings := sub.pendingSettings(sid)
	// Read under sub.mu: connectDownTracks sets the flag before it lists sub.subscribed.
	connected := sub.downTransport().dtlsUp.Load()
	sub.mu.Unlock()

	sub.applySettings(s, settings)
	if connected {
		down.SetConnected()
	}
	down.StartRTCP(sender)
	t.receiver.AddDownTrack(down)
	sub.negotiateDown()
	r.updateDynacast(t)
	sub.logger.Debug("subscribed", "track", sid, "publisher", owner.identity)
	owner.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_TrackSubscribed{TrackSubscribed: &livekit.TrackSubscribed{TrackSid: sid}}})
}

// pendingSettings returns settings the subscriber sent before the subscription existed.
// Caller holds sub.mu.
func (p *Participant) pendingSettings(sid string) *livekit.UpdateTrackSettings {
	if p.earlySettings == nil {
		return nil
	}
	s := p.earlySettings[sid]
	delete(p.earlySettings, sid)
	return s
}

// unsubscribe stops forwarding the track with sid to sub, and forgets sub's early settings
// for it (a track that ended takes them along).
func (r *Room) unsubscribe(sub *Participant, sid string) {
	sub.mu.Lock()
	delete(sub.earlySettings, sid)
	s, ok := sub.subscribed[sid]
	if ok {
		delete(sub.subscribed, sid)
	}
	closed := sub.closed
	sub.mu.Unlock()
	if !ok {
		return
	}
	s.track.receiver.RemoveDownTrack(s.down)
	s.down.Close()
	if !closed {
		if err := sub.downTransport().pc.RemoveTrack(s.sender); err != nil {
			sub.logger.Debug("remove track", "track", sid, "err", err)
		}
		sub.negotiateDown()
	}
	r.updateDynacast(s.track)
	sub.logger.Debug("unsubscribed", "track", sid)
}

// subscriptionLength is how many entries an update_subscription names.
func subscriptionLength(u *livekit.UpdateSubscription) int {
	n := len(u.GetTrackSids()) + len(u.GetParticipantTracks())
	for _, pt := range u.GetParticipantTracks() {
		n += len(pt.GetTrackSids())
	}
	return n
}

// updateSubscription handles a client's (or the Room API's) explicit subscribe/unsubscribe.
// It refuses, changing nothing, a message naming more than maxListLength entries.
func (r *Room) updateSubscription(sub *Participant, u *livekit.UpdateSubscription) error {
	if err := checkList("subscription", subscriptionLength(u)); err != nil {
		return err
	}
	sids := append([]string(nil), u.TrackSids...)
	for _, pt := range u.ParticipantTracks {
		sids = append(sids, pt.TrackSids...)
	}
	for _, sid := range sids {
		if u.Subscribe {
			if t := r.trackBySID(sid); t != nil {
				r.subscribe(sub, t)
			}
		} else {
			r.unsubscribe(sub, sid)
		}
	}
	return nil
}

// updateTrackSettings applies a subscriber's quality/size/disabled wishes. Wishes for a
// track not subscribed yet are kept for when it is, only for tracks published in the room
// (unsubscribe forgets them when the track ends), at most maxListLength of them. It
// refuses, changing nothing, a message naming more than maxListLength tracks.
func (p *Participant) updateTrackSettings(u *livekit.UpdateTrackSettings) error {
	if err := checkList("track settings", len(u.TrackSids)); err != nil {
		return err
	}
	// Kept without the list of sids it came with.
	wish := &livekit.UpdateTrackSettings{Disabled: u.Disabled, Quality: u.Quality, Width: u.Width, Height: u.Height,
		Fps: u.Fps, Priority: u.Priority}
	for _, sid := range u.TrackSids {
		p.mu.Lock()
		s, ok := p.subscribed[sid]
		p.mu.Unlock()
		if ok {
			p.applySettings(s, wish)
			continue
		}
		if p.room.trackBySID(sid) == nil {
			continue // no such track: nothing to remember
		}
		p.mu.Lock()
		if _, known := p.earlySettings[sid]; known || len(p.earlySettings) < maxListLength {
			if p.earlySettings == nil {
				p.earlySettings = map[string]*livekit.UpdateTrackSettings{}
			}
			p.earlySettings[sid] = wish
		}
		p.mu.Unlock()
	}
	return nil
}

func (p *Participant) applySettings(s *subscription, u *livekit.UpdateTrackSettings) {
	video := s.track.kind() == livekit.TrackType_VIDEO
	layer, paused := 2, false
	if u != nil {
		paused = u.Disabled
		if video {
			layer = s.track.layerFor(u.Quality, u.Width, u.Height)
		}
	}
	p.mu.Lock()
	s.maxLayer, s.paused = layer, paused
	p.mu.Unlock()
	s.down.SetPaused(paused)
	if video {
		s.down.SetMaxLayer(layer)
		p.room.updateDynacast(s.track)
	}
}

// checkSubscriptionPermission bounds a subscription permission, which the publisher keeps.
func (r *Room) checkSubscriptionPermission(perm *livekit.SubscriptionPermission) error {
	n := len(perm.TrackPermissions)
	for _, tp := range perm.TrackPermissions {
		n += len(tp.TrackSids)
		if err := checkLength("participant identity", tp.ParticipantIdentity, r.cfg.Limits.MaxIdentityLength); err != nil {
			return err
		}
		if err := checkLength("participant sid", tp.ParticipantSid, maxIDLength); err != nil {
			return err
		}
		for _, sid := range tp.TrackSids {
			if err := checkLength("track sid", sid, maxIDLength); err != nil {
				return err
			}
		}
	}
	return checkList("subscription permission", n)
}

// updateSubscriptionPermission sets who may subscribe to p's tracks and revokes the rest.
// It refuses, changing nothing, a permission over the limits.
func (r *Room) updateSubscriptionPermission(p *Participant, perm *livekit.SubscriptionPermission) error {
	if err := r.checkSubscriptionPermission(perm); err != nil {
		return err
	}
	p.mu.Lock()
	p.subPerm = perm
	tracks := make([]*PublishedTrack, 0, len(p.published))
	for _, t := range p.published {
		tracks = append(tracks, t)
	}
	p.mu.Unlock()
	for _, other := range r.participantList() {
		if other == p {
			continue
		}
		for _, t := range tracks {
			sid := t.SID()
			allowed := p.allowsSubscriber(other, sid)
			other.mu.Lock()
			_, subscribed := other.subscribed[sid]
			other.mu.Unlock()
			switch {
			case !allowed && subscribed:
				r.unsubscribe(other, sid)
				other.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_SubscriptionPermissionUpdate{
					SubscriptionPermissionUpdate: &livekit.SubscriptionPermissionUpdate{ParticipantSid: p.sid, TrackSid: sid, Allowed: false},
				}})
			case allowed && !subscribed && other.autoSubscribe:
				r.subscribe(other, t)
			}
		}
	}
	return nil
}
