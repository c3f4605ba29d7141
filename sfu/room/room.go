package room

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/utils/guid"
	"google.golang.org/protobuf/proto"

	"github.com/sanke-edu/sanke/internal/rooms"
)

// speakerInterval is how often audio levels are sampled for speakers_changed.
const speakerInterval = 300 * time.Millisecond

// Room is one LiveKit room: its participants and their tracks.
type Room struct {
	cfg     *Config
	manager *Manager
	logger  *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc

	mu           sync.Mutex
	info         *livekit.Room
	participants map[string]*Participant // by identity
	closed       bool
	everJoined   bool
	lastLeft     time.Time
	speakers     map[string]float32 // participant sid -> level, as last announced
	joins        keyedMutex         // serializes the joins of each identity
}

func newRoom(m *Manager, name string, opts *livekit.CreateRoomRequest) *Room {
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	info := &livekit.Room{
		Sid:              guid.New(guid.RoomPrefix),
		Name:             name,
		EmptyTimeout:     uint32(m.cfg.EmptyTimeout / time.Second),
		DepartureTimeout: uint32(m.cfg.DepartureTimeout / time.Second),
		MaxParticipants:  uint32(m.cfg.MaxParticipants),
		CreationTime:     now.Unix(),
		CreationTimeMs:   now.UnixMilli(),
	}
	if opts != nil {
		if opts.EmptyTimeout > 0 {
			info.EmptyTimeout = opts.EmptyTimeout
		}
		if opts.DepartureTimeout > 0 {
			info.DepartureTimeout = opts.DepartureTimeout
		}
		if opts.MaxParticipants > 0 {
			info.MaxParticipants = opts.MaxParticipants
		}
		info.Metadata = opts.Metadata
	}
	r := &Room{
		cfg:          m.cfg,
		manager:      m,
		logger:       m.logger.With("room", name, "room_sid", info.Sid),
		ctx:          ctx,
		cancel:       cancel,
		info:         info,
		participants: map[string]*Participant{},
		speakers:     map[string]float32{},
	}
	go r.loop()
	r.logger.Info("room created")
	return r
}

// Name returns the room's name.
func (r *Room) Name() string { return r.info.Name }

// Info returns a snapshot of the room for the protocol.
func (r *Room) Info() *livekit.Room {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.infoLocked()
}

func (r *Room) infoLocked() *livekit.Room {
	info := proto.Clone(r.info).(*livekit.Room)
	var n, pubs uint32
	for _, p := range r.participants {
		if p.hidden {
			continue
		}
		n++
		p.mu.Lock()
		if len(p.published) > 0 {
			pubs++
		}
		p.mu.Unlock()
	}
	info.NumParticipants = n
	info.NumPublishers = pubs
	return info
}

// participantList returns a snapshot of the participants.
func (r *Room) participantList() []*Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Participant, 0, len(r.participants))
	for _, p := range r.participants {
		out = append(out, p)
	}
	return out
}

func (r *Room) participant(identity string) *Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.participants[identity]
}

func (r *Room) participantBySID(sid string) *Participant {
	for _, p := range r.participantList() {
		if p.sid == sid {
			return p
		}
	}
	return nil
}

// trackBySID finds a published track in the room.
func (r *Room) trackBySID(sid string) *PublishedTrack {
	for _, p := range r.participantList() {
		p.mu.Lock()
		t := p.published[sid]
		p.mu.Unlock()
		if t != nil {
			return t
		}
	}
	return nil
}

// join adds a new participant, starting with what adm says (nil: its token), sends its
// JoinResponse and subscribes it to existing tracks. A participant already there with the
// same identity is replaced (removed, with its participant_left event). The joins of one
// identity are serialized, so that however many arrive at once each replaces the previous
// one and none is left behind outside the room.
func (r *Room) join(req rooms.JoinRequest, adm *Admission, sink rooms.Sink) (*Participant, error) {
	unlock := r.joins.lock(req.Identity)
	p, err := r.add(req, adm, sink)
	unlock()
	if err != nil {
		return nil, err
	}
	p.downTransport().timeline("joined", "single", p.single)
	if p.single {
		// Clients may announce tracks and send their first offer inside the join request.
		for _, at := range req.ProtoJoinRequest.GetAddTrackRequests() {
			p.handleAddTrack(at)
		}
		if p.autoSubscribe {
			// Before the offer: its receive sections (the SDKs offer a few ahead) then carry
			// the room's tracks in the first answer, a negotiation round sooner.
			r.subscribeToAll(p)
		}
		if o := req.ProtoJoinRequest.GetPublisherOffer(); o != nil && o.Sdp != "" {
			if err := p.handleOffer(o); err != nil {
				p.logger.Warn("initial offer", "err", err)
			}
		}
	} else {
		if p.autoSubscribe {
			r.subscribeToAll(p)
		}
		// The subscriber connection carries the server's data channels and the room's
		// tracks, subscribed above: one offer, at once, not after the negotiation debounce.
		p.subscriber.NegotiateNow()
	}
	return p, nil
}

// add is the part of join that the joins of one identity do one at a time: it replaces the
// participant with that identity, if any, makes the new one's PeerConnections, puts it in
// the room, sends its JoinResponse and tells the others.
func (r *Room) add(req rooms.JoinRequest, adm *Admission, sink rooms.Sink) (*Participant, error) {
	hidden := req.Grants.Video != nil && req.Grants.Video.Hidden
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, rooms.ErrRoomClosed
	}
	old := r.participants[req.Identity]
	full := r.fullLocked(req.Identity, hidden)
	r.mu.Unlock()
	if full {
		return nil, rooms.ErrRoomFull
	}
	if old != nil {
		// Same identity joining again: the newer connection wins.
		r.removeParticipant(old, livekit.DisconnectReason_DUPLICATE_IDENTITY, true)
	}

	p := newParticipant(r, req, adm, sink)
	if err := p.setupTransports(r.manager.media, r.cfg.webrtcICEServers()); err != nil {
		p.closeMedia()
		return nil, err
	}

	r.mu.Lock()
	if r.closed || r.fullLocked(p.identity, p.hidden) {
		err := rooms.ErrRoomClosed
		if !r.closed {
			err = rooms.ErrRoomFull // others joined meanwhile
		}
		r.mu.Unlock()
		p.closeMedia()
		return nil, err
	}
	others := make([]*livekit.ParticipantInfo, 0, len(r.participants))
	for _, o := range r.participants {
		if !o.hidden {
			others = append(others, o.Info())
		}
	}
	// Joins of this identity wait for this one, and old was removed: nobody is replaced here.
	r.participants[p.identity] = p
	if !p.hidden {
		r.everJoined = true
	}
	p.mu.Lock()
	p.state = livekit.ParticipantInfo_JOINED
	p.bumpLocked()
	p.mu.Unlock()
	roomInfo := r.infoLocked()

	// The join response must be the client's first message, so it is queued before the
	// room's loops (speakers, quality) can see the participant: still under r.mu.
	canSub := p.canSubscribe()
	p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Join{Join: &livekit.JoinResponse{
		Room:                roomInfo,
		Participant:         p.Info(),
		OtherParticipants:   others,
		ServerVersion:       r.cfg.ServerInfo.Version,
		ServerInfo:          r.cfg.ServerInfo,
		IceServers:          r.cfg.clientICEServers(req.Host, p.sid, p.logger),
		SubscriberPrimary:   canSub && !p.single,
		ClientConfiguration: r.cfg.clientConfiguration(),
		PingTimeout:         int32(r.cfg.PingTimeout / time.Second),
		PingInterval:        int32(r.cfg.PingInterval / time.Second),
	}}})
	r.mu.Unlock()
	p.logger.Info("participant joined", "hidden", p.hidden, "auto_subscribe", p.autoSubscribe,
		"sdk", req.ClientInfo.GetSdk().String(), "sdk_version", req.ClientInfo.GetVersion())

	p.refreshToken()
	r.broadcastParticipant(p)
	r.emit(Event{Type: EventParticipantJoined, Participant: p.Info()})
	return p, nil
}

// fullLocked reports whether the room has no place for a participant with identity (one
// already there with it would give its place up). Hidden participants take no place.
// Caller holds r.mu.
func (r *Room) fullLocked(identity string, hidden bool) bool {
	max := r.info.MaxParticipants
	if max == 0 || hidden {
		return false
	}
	count := uint32(0)
	for _, p := range r.participants {
		if !p.hidden && p.identity != identity {
			count++
		}
	}
	return count >= max
}

// broadcastParticipant sends p's current info to everyone (p included: its own permission
// and metadata changes reach it this way). Hidden participants are announced only to themselves.
func (r *Room) broadcastParticipant(p *Participant) {
	info := p.Info()
	msg := &livekit.SignalResponse{Message: &livekit.SignalResponse_Update{Update: &livekit.ParticipantUpdate{
		Participants: []*livekit.ParticipantInfo{info},
	}}}
	for _, o := range r.participantList() {
		if p.hidden && o != p {
			continue
		}
		o.send(msg)
	}
}

// onTrackPublished announces a new track and subscribes everyone who auto-subscribes.
func (r *Room) onTrackPublished(p *Participant, t *PublishedTrack) {
	r.broadcastParticipant(p)
	r.emit(Event{Type: EventTrackPublished, Participant: p.Info(), Track: t.Info()})
	for _, o := range r.participantList() {
		if o != p && o.autoSubscribe {
			r.subscribe(o, t)
		}
	}
	r.updateDynacast(t) // nobody may be watching yet
}

// onTrackUnpublished removes a track that ended (publisher stopped sending or left).
func (r *Room) onTrackUnpublished(p *Participant, t *PublishedTrack) {
	sid := t.SID()
	p.mu.Lock()
	_, ok := p.published[sid]
	delete(p.published, sid)
	if ok {
		p.bumpLocked()
	}
	closed := p.closed
	p.mu.Unlock()
	for _, o := range r.participantList() {
		r.unsubscribe(o, sid)
	}
	if !ok || closed {
		return
	}
	r.emit(Event{Type: EventTrackUnpublished, Participant: p.Info(), Track: t.Info()})
	p.logger.Info("track unpublished", "track", sid)
	p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_TrackUnpublished{TrackUnpublished: &livekit.TrackUnpublishedResponse{TrackSid: sid}}})
	r.broadcastParticipant(p)
}

// removeParticipant takes p out of the room: tells it why (unless it left by itself), closes
// its media, unsubscribes everyone from its tracks and tells the others.
func (r *Room) removeParticipant(p *Participant, reason livekit.DisconnectReason, notify bool) {
	r.mu.Lock()
	if r.participants[p.identity] != p {
		r.mu.Unlock()
		return
	}
	delete(r.participants, p.identity)
	if !p.hidden {
		r.lastLeft = time.Now()
	}
	r.mu.Unlock()

	if notify {
		action := livekit.LeaveRequest_DISCONNECT
		if reason == livekit.DisconnectReason_SERVER_SHUTDOWN {
			// A restart (upgrade, crash recovery) should not end the class: clients rejoin
			// by themselves once the server is back.
			action = livekit.LeaveRequest_RECONNECT
		}
		p.send(leaveMessage(reason, action))
	}
	p.mu.Lock()
	sink := p.sink
	p.sink = nil
	subs := make([]string, 0, len(p.subscribed))
	for sid := range p.subscribed {
		subs = append(subs, sid)
	}
	p.mu.Unlock()
	// Unpublish before closing the PeerConnections: closing them ends the receivers, whose
	// own unpublish path stays silent for a closed participant, so the events come from here.
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for _, t := range p.unpublishAll() {
		r.emit(Event{Type: EventTrackUnpublished, Participant: p.Info(), Track: t})
	}
	p.closeMedia()
	for _, sid := range subs {
		r.unsubscribe(p, sid)
	}
	if sink != nil {
		sink.Close()
	}

	p.mu.Lock()
	p.state = livekit.ParticipantInfo_DISCONNECTED
	p.leftReason = reason
	p.bumpLocked()
	p.mu.Unlock()
	r.broadcastParticipant(p)
	r.emit(Event{Type: EventParticipantLeft, Participant: p.Info(), Reason: reason})
	p.logger.Info("participant left", "reason", reason.String())
}

// leaveMessage builds a server-initiated leave.
func leaveMessage(reason livekit.DisconnectReason, action livekit.LeaveRequest_Action) *livekit.SignalResponse {
	return &livekit.SignalResponse{Message: &livekit.SignalResponse_Leave{Leave: &livekit.LeaveRequest{
		CanReconnect: action == livekit.LeaveRequest_RECONNECT,
		Reason:       reason,
		Action:       action,
	}}}
}

// close removes everyone and stops the room.
func (r *Room) close(reason livekit.DisconnectReason) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.mu.Unlock()
	for _, p := range r.participantList() {
		r.removeParticipant(p, reason, true)
	}
	r.cancel()
	r.manager.forget(r)
	r.emit(Event{Type: EventRoomFinished, Reason: reason})
	r.logger.Info("room closed", "reason", reason.String())
}

// loop runs the room's periodic work: speaker detection and the empty/departure timeouts.
func (r *Room) loop() {
	t := time.NewTicker(speakerInterval)
	defer t.Stop()
	q := time.NewTicker(qualityInterval)
	defer q.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-q.C:
			r.updateQuality()
		case now := <-t.C:
			r.updateSpeakers()
			for _, p := range r.participantList() {
				if p.refreshTokenDue(now) {
					p.refreshToken()
				}
				p.checkLiveness(now)
			}
			if r.idleExpired(time.Now()) {
				r.close(livekit.DisconnectReason_ROOM_CLOSED)
				return
			}
		}
	}
}

// idleExpired reports whether the room has been empty past its timeout. Hidden participants
// (the recorder, supervisors) do not keep a room open: a class is over when its people left.
func (r *Room) idleExpired(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.participants {
		if !p.hidden {
			return false
		}
	}
	if !r.everJoined {
		return now.Sub(time.UnixMilli(r.info.CreationTimeMs)) > time.Duration(r.info.EmptyTimeout)*time.Second
	}
	return now.Sub(r.lastLeft) > time.Duration(r.info.DepartureTimeout)*time.Second
}

// updateSpeakers samples audio levels and sends speakers_changed with what changed.
func (r *Room) updateSpeakers() {
	levels := map[string]float32{}
	for _, p := range r.participantList() {
		if p.hidden {
			continue
		}
		p.mu.Lock()
		for _, t := range p.published {
			if t.kind() != livekit.TrackType_AUDIO {
				continue
			}
			if lvl, active := t.receiver.AudioLevel(); active && float32(lvl) > levels[p.sid] {
				levels[p.sid] = float32(lvl)
			}
		}
		p.mu.Unlock()
	}
	r.mu.Lock()
	var changed []*livekit.SpeakerInfo
	for sid, lvl := range levels {
		if prev, ok := r.speakers[sid]; !ok || abs32(prev-lvl) > 0.05 {
			changed = append(changed, &livekit.SpeakerInfo{Sid: sid, Level: lvl, Active: true})
			r.speakers[sid] = lvl
		}
	}
	for sid := range r.speakers {
		if _, ok := levels[sid]; !ok {
			changed = append(changed, &livekit.SpeakerInfo{Sid: sid, Level: 0, Active: false})
			delete(r.speakers, sid)
		}
	}
	r.mu.Unlock()
	if len(changed) == 0 {
		return
	}
	sort.Slice(changed, func(i, j int) bool { return changed[i].Level > changed[j].Level })
	msg := &livekit.SignalResponse{Message: &livekit.SignalResponse_SpeakersChanged{SpeakersChanged: &livekit.SpeakersChanged{Speakers: changed}}}
	for _, p := range r.participantList() {
		p.send(msg)
	}
}

func abs32(f float32) float32 {
	if f < 0 {
		return -f
	}
	return f
}

// subscribeToAll subscribes p to every track in the room it may see.
func (r *Room) subscribeToAll(p *Participant) {
	for _, o := range r.participantList() {
		if o == p {
			continue
		}
		o.mu.Lock()
		tracks := make([]*PublishedTrack, 0, len(o.published))
		for _, t := range o.published {
			tracks = append(tracks, t)
		}
		o.mu.Unlock()
		for _, t := range tracks {
			r.subscribe(p, t)
		}
	}
}

// revokeTrack stops a track whose publish permission was withdrawn: it is unpublished and
// the publisher is told.
func (r *Room) revokeTrack(p *Participant, sid string) {
	p.mu.Lock()
	t := p.published[sid]
	p.mu.Unlock()
	if t != nil {
		t.receiver.Close()
	}
}

// keyedMutex is a mutex per key, kept only while someone holds or waits for it: the state
// it keeps is bounded by the goroutines using it. The zero value is ready to use.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	mu    sync.Mutex
	users int // holding or waiting; guarded by keyedMutex.mu
}

// lock locks key's mutex and returns its unlock.
func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.users++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
