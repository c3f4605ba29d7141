package room

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/utils/guid"
	"github.com/pion/webrtc/v4"
	"google.golang.org/protobuf/proto"

	"github.com/sanke-edu/sanke/internal/rooms"
	"github.com/sanke-edu/sanke/sfu"
)

// Participant is one client in a room: its identity and grants, its two PeerConnections
// (publisher: the client sends media; subscriber: we send media), its published tracks and
// its subscriptions.
type Participant struct {
	room   *Room
	sid    string
	logger *slog.Logger

	identity string
	apiKey   string // the key the join token was signed with
	// single is livekit-client's single PeerConnection mode (/rtc/v1): one PeerConnection,
	// offered by the client, carries both directions and the data channels.
	single        bool
	hidden        bool
	autoSubscribe bool
	adaptive      bool
	clientInfo    *livekit.ClientInfo
	joinedAt      time.Time

	// publisher is created on the client's first offer in dual mode (a subscribe-only
	// client never offers: no PeerConnection, interceptors or timers for it), at join in
	// single mode. Read it with pub().
	pubMu      sync.Mutex
	publisher  *transport
	pubClosed  bool
	newPub     func() (*transport, error)
	subscriber *transport

	mu         sync.Mutex
	sink       rooms.Sink
	name       string
	metadata   string
	attributes map[string]string
	grants     *auth.ClaimGrants
	permission *livekit.ParticipantPermission
	state      livekit.ParticipantInfo_State
	version    uint32
	published  map[string]*PublishedTrack      // by track sid
	pending    map[string]*livekit.TrackInfo   // by client track id (cid), until media arrives
	subscribed map[string]*subscription        // by track sid
	subPerm    *livekit.SubscriptionPermission // who may subscribe to our tracks; nil: everyone
	// lastDataSeq is the last reliable data sequence received from this client; a resumed
	// client replays what came after it, and anything at or below it is a duplicate.
	lastDataSeq uint32
	// earlySettings holds track settings that arrived before the subscription existed.
	earlySettings map[string]*livekit.UpdateTrackSettings
	reliableOut   *webrtc.DataChannel
	lossyOut      *webrtc.DataChannel
	dataChannels  int // opened by the client so far
	// dataDropped counts the data packets not sent to the client: it did not read them.
	dataDropped atomic.Uint64
	closed      bool
	disconnect  *time.Timer              // pending removal after the signal connection dropped
	tokenSentAt time.Time                // when the last refresh_token was sent
	leftReason  livekit.DisconnectReason // why it left, once DISCONNECTED
	quality     qualityCounters
	// live judges the media path (liveness.go); only the room's loop touches it.
	live    liveness
	streams *streamStates // bandwidth pauses told to the client; nil without downlink control
}

// SID returns the participant's server id (PA_...).
func (p *Participant) SID() string { return p.sid }

// Identity returns the participant's identity from its token.
func (p *Participant) Identity() string { return p.identity }

// newParticipant builds a joining participant from its verified join (checked by
// Manager.checkJoin) and what the join policy decided (adm, nil when none).
func newParticipant(r *Room, req rooms.JoinRequest, adm *Admission, sink rooms.Sink) *Participant {
	g := req.Grants
	p := &Participant{
		room:          r,
		sid:           guid.New(guid.ParticipantPrefix),
		identity:      req.Identity,
		apiKey:        req.APIKey,
		single:        req.ProtoJoinRequest != nil,
		hidden:        g.Video != nil && g.Video.Hidden,
		autoSubscribe: req.AutoSubscribe,
		adaptive:      req.AdaptiveStream,
		clientInfo:    keptClientInfo(req.ClientInfo),
		joinedAt:      time.Now(),
		sink:          sink,
		name:          g.Name,
		metadata:      g.Metadata,
		attributes:    cloneMap(g.Attributes),
		grants:        g,
		state:         livekit.ParticipantInfo_JOINING,
		published:     map[string]*PublishedTrack{},
		pending:       map[string]*livekit.TrackInfo{},
		subscribed:    map[string]*subscription{},
	}
	p.permission = permissionFromGrant(g.Video)
	if p.permission.CanUpdateMetadata {
		p.attributes = mergeAttributes(p.attributes, req.Attributes)
	}
	if adm != nil {
		if adm.Permission != nil {
			p.setPermissionLocked(adm.Permission)
		}
		p.attributes = mergeAttributes(p.attributes, adm.Attributes)
	}
	p.logger = r.logger.With("participant", p.sid, "identity", p.identity)
	return p
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// permissionFromGrant derives the participant permission from the token's video grant.
func permissionFromGrant(v *auth.VideoGrant) *livekit.ParticipantPermission {
	if v == nil {
		return &livekit.ParticipantPermission{}
	}
	return &livekit.ParticipantPermission{
		CanSubscribe:      v.GetCanSubscribe(),
		CanPublish:        v.GetCanPublish(),
		CanPublishData:    v.GetCanPublishData(),
		CanPublishSources: distinctSources(v.GetCanPublishSources()),
		Hidden:            v.Hidden,
		CanUpdateMetadata: v.GetCanUpdateOwnMetadata(),
		Recorder:          v.Recorder, //nolint:staticcheck // LiveKit protocol: the recorder grant
	}
}

// setPermissionLocked replaces the participant's permission with perm, except what only
// the join token decides: whether it is hidden, the recorder or an agent. A permission
// update (a moderator's Room API call) thus cannot make anyone hidden or a recorder, nor
// carry that into a refreshed token. Caller holds p.mu (or owns p).
func (p *Participant) setPermissionLocked(perm *livekit.ParticipantPermission) {
	next := proto.Clone(perm).(*livekit.ParticipantPermission)
	next.CanPublishSources = distinctSources(next.CanPublishSources)
	next.Hidden = p.permission.Hidden
	next.Recorder = p.permission.Recorder //nolint:staticcheck // LiveKit protocol: the recorder grant
	next.Agent = p.permission.Agent       //nolint:staticcheck // LiveKit protocol: the agent grant
	p.permission = next
}

// distinctSources returns sources without repeats, in their order, and at most as many as
// there are sources (values beyond are not sources; dropping them only narrows the
// permission): the permission goes into every ParticipantInfo sent, so a long list (a
// token's, or an update's) must not be kept as is.
func distinctSources(sources []livekit.TrackSource) []livekit.TrackSource {
	var out []livekit.TrackSource
	for _, s := range sources {
		if len(out) == len(livekit.TrackSource_name) {
			break
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// canPublishSource reports whether the participant may publish a track of that source.
func (p *Participant) canPublishSource(src livekit.TrackSource) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.permission.CanPublish {
		return false
	}
	if len(p.permission.CanPublishSources) == 0 {
		return true
	}
	for _, s := range p.permission.CanPublishSources {
		if s == src {
			return true
		}
	}
	return false
}

// isRecorder reports whether the participant's join token made it a recorder (updates
// cannot change that).
func (p *Participant) isRecorder() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.permission.Recorder //nolint:staticcheck // LiveKit protocol: the recorder grant
}

func (p *Participant) canSubscribe() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.permission.CanSubscribe
}

func (p *Participant) canPublishData() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.permission.CanPublishData
}

// Info returns a snapshot of the participant for the protocol.
func (p *Participant) Info() *livekit.ParticipantInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.infoLocked()
}

func (p *Participant) infoLocked() *livekit.ParticipantInfo {
	info := &livekit.ParticipantInfo{
		Sid:              p.sid,
		Identity:         p.identity,
		Name:             p.name,
		Metadata:         p.metadata,
		Attributes:       cloneMap(p.attributes),
		State:            p.state,
		JoinedAt:         p.joinedAt.Unix(),
		JoinedAtMs:       p.joinedAt.UnixMilli(),
		Version:          p.version,
		Permission:       proto.Clone(p.permission).(*livekit.ParticipantPermission),
		IsPublisher:      len(p.published) > 0,
		Kind:             p.grants.GetParticipantKind(),
		DisconnectReason: p.leftReason,
		ClientProtocol:   p.clientInfo.GetClientProtocol(),
		Capabilities:     p.clientInfo.GetCapabilities(),
	}
	for _, t := range p.published {
		info.Tracks = append(info.Tracks, t.Info())
	}
	return info
}

// bumpLocked advances the info version; every change visible to others does this.
func (p *Participant) bumpLocked() { p.version++ }

// send delivers a message to the client; errors mean the signal connection is gone.
func (p *Participant) send(msg *livekit.SignalResponse) {
	p.mu.Lock()
	sink := p.sink
	p.mu.Unlock()
	if sink == nil {
		return
	}
	if err := sink.Send(msg); err != nil {
		p.logger.Debug("signal send failed", "err", err)
	}
}

// setupTransports creates the PeerConnections: in dual mode the subscriber (we offer, and
// create the data channels) now and the publisher (the client offers) on the client's first
// offer; in single mode the one PeerConnection now.
func (p *Participant) setupTransports(media *MediaAPI, ice []webrtc.ICEServer) error {
	sendCand := func(c webrtc.ICECandidateInit, target livekit.SignalTarget) {
		p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Trickle{Trickle: &livekit.TrickleRequest{
			CandidateInit: candidateJSON(c), Target: target,
		}}})
	}
	p.newPub = func() (*transport, error) {
		// In single mode the one PeerConnection also carries the media sent to the client.
		opts := PeerOptions{Publish: true, Direct: p.single}
		if p.single {
			opts.OnDTLSConnected = p.connectDownTracks
			opts.OnPathChange = p.onPathChange
		}
		pub, err := newTransport(media, opts, livekit.SignalTarget_PUBLISHER, ice, p.logger, sendCand)
		if err != nil {
			return nil, err
		}
		pub.pc.OnTrack(p.onTrack)
		pub.pc.OnDataChannel(p.onDataChannel)
		pub.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) { p.onConnectionState(livekit.SignalTarget_PUBLISHER, s) })
		pub.prepareOffer = withAudioNACK
		pub.prepareAnswer = p.preferAudioCodecs
		if p.single {
			pub.sendRequirement = func(audios, videos uint32) {
				p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_MediaSectionsRequirement{
					MediaSectionsRequirement: &livekit.MediaSectionsRequirement{NumAudios: audios, NumVideos: videos},
				}})
			}
		}
		return pub, nil
	}
	if p.single {
		pub, err := p.ensurePublisher()
		if err == nil {
			p.watchStreamStates(pub)
		}
		return err
	}

	sub, err := newTransport(media, PeerOptions{Direct: true, OnDTLSConnected: p.connectDownTracks, OnPathChange: p.onPathChange},
		livekit.SignalTarget_SUBSCRIBER, ice, p.logger, sendCand)
	if err != nil {
		return err
	}
	sub.sendOffer = func(sd webrtc.SessionDescription, id uint32) {
		p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Offer{Offer: toProtoSD(sd, id)}})
	}
	p.subscriber = sub
	p.watchStreamStates(sub)
	sub.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) { p.onConnectionState(livekit.SignalTarget_SUBSCRIBER, s) })

	ordered := true
	if p.reliableOut, err = sub.pc.CreateDataChannel(reliableLabel, &webrtc.DataChannelInit{Ordered: &ordered}); err != nil {
		return err
	}
	unordered, zero := false, uint16(0)
	if p.lossyOut, err = sub.pc.CreateDataChannel(lossyLabel, &webrtc.DataChannelInit{Ordered: &unordered, MaxRetransmits: &zero}); err != nil {
		return err
	}
	return nil
}

// pub returns the publisher transport, nil before the client's first offer (dual mode).
func (p *Participant) pub() *transport {
	p.pubMu.Lock()
	defer p.pubMu.Unlock()
	return p.publisher
}

// ensurePublisher returns the publisher transport, creating it if needed.
func (p *Participant) ensurePublisher() (*transport, error) {
	p.pubMu.Lock()
	defer p.pubMu.Unlock()
	if p.publisher != nil {
		return p.publisher, nil
	}
	if p.pubClosed || p.newPub == nil {
		return nil, errors.New("participant is closed")
	}
	pub, err := p.newPub()
	if err != nil {
		return nil, err
	}
	p.publisher = pub
	return pub, nil
}

// downTransport is the PeerConnection that carries media to the client.
func (p *Participant) downTransport() *transport {
	if p.single {
		return p.pub()
	}
	return p.subscriber
}

// connectDownTracks lets the down tracks start once the connection carrying media to the
// client is up (its transport's dtlsUp is set before this runs).
func (p *Participant) connectDownTracks() {
	p.mu.Lock()
	downs := make([]*sfu.DownTrack, 0, len(p.subscribed))
	for _, s := range p.subscribed {
		downs = append(downs, s.down)
	}
	p.mu.Unlock()
	for _, d := range downs {
		d.SetConnected()
	}
}

// negotiateDown renegotiates after the set of tracks sent to the client changed: we offer on
// the subscriber connection, or in single mode ask the client to offer.
func (p *Participant) negotiateDown() {
	if p.single {
		p.pub().RequestOffer()
		return
	}
	p.subscriber.Negotiate(false)
}

func (p *Participant) onConnectionState(target livekit.SignalTarget, s webrtc.PeerConnectionState) {
	p.logger.Debug("peer connection state", "pc", target.String(), "state", s.String())
	switch s {
	case webrtc.PeerConnectionStateConnected:
		t := p.pub()
		if target == livekit.SignalTarget_SUBSCRIBER {
			t = p.subscriber
		}
		t.noteConnected()
		p.logger.Info("peer connection connected", "pc", target.String(), "srtp", t.SRTPCipher())
		p.mu.Lock()
		changed := p.state == livekit.ParticipantInfo_JOINED || p.state == livekit.ParticipantInfo_JOINING
		if changed {
			p.state = livekit.ParticipantInfo_ACTIVE
			p.bumpLocked()
		}
		p.mu.Unlock()
		if changed {
			p.room.broadcastParticipant(p)
		}
	case webrtc.PeerConnectionStateFailed:
		// Media is gone; give the client the reconnect window before removing it.
		p.scheduleRemoval(p.room.cfg.ReconnectWindow, "peer connection failed")
	}
}

// HandleRequest processes one signal request from the client (rooms.Session).
func (p *Participant) HandleRequest(req *livekit.SignalRequest) error {
	switch m := req.Message.(type) {
	case *livekit.SignalRequest_Offer:
		return p.handleOffer(m.Offer)
	case *livekit.SignalRequest_Answer:
		sd, err := fromProtoSD(m.Answer)
		if err != nil {
			return err
		}
		return p.subscriber.HandleAnswer(sd)
	case *livekit.SignalRequest_Trickle:
		c, err := parseTrickle(m.Trickle)
		if err != nil {
			return err
		}
		t := p.subscriber
		if m.Trickle.Target != livekit.SignalTarget_SUBSCRIBER || p.single {
			if t, err = p.ensurePublisher(); err != nil {
				return err
			}
		}
		if err := t.AddCandidate(c); errors.Is(err, rooms.ErrLimitExceeded) {
			p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_RequestResponse{RequestResponse: &livekit.RequestResponse{
				Reason: livekit.RequestResponse_LIMIT_EXCEEDED, Message: err.Error(),
				Request: &livekit.RequestResponse_Trickle{Trickle: &livekit.TrickleRequest{Target: m.Trickle.Target}},
			}}})
		} else if err != nil {
			p.logger.Debug("add candidate", "err", err)
		}
		return nil
	case *livekit.SignalRequest_AddTrack:
		p.handleAddTrack(m.AddTrack)
		return nil
	case *livekit.SignalRequest_Mute:
		p.setTrackMuted(m.Mute.Sid, m.Mute.Muted, false)
		return nil
	case *livekit.SignalRequest_Subscription:
		p.refuseOver(p.room.updateSubscription(p, m.Subscription))
		return nil
	case *livekit.SignalRequest_TrackSetting:
		p.refuseOver(p.updateTrackSettings(m.TrackSetting))
		return nil
	case *livekit.SignalRequest_Leave:
		p.logger.Info("client left", "reason", m.Leave.Reason.String())
		p.room.removeParticipant(p, livekit.DisconnectReason_CLIENT_INITIATED, false)
		return nil
	case *livekit.SignalRequest_UpdateLayers:
		return nil // deprecated; simulcast layers come from add_track
	case *livekit.SignalRequest_SubscriptionPermission:
		p.refuseOver(p.room.updateSubscriptionPermission(p, m.SubscriptionPermission))
		return nil
	case *livekit.SignalRequest_SyncState:
		p.refuseOver(p.handleSyncState(m.SyncState))
		return nil
	case *livekit.SignalRequest_UpdateMetadata:
		p.handleUpdateMetadata(m.UpdateMetadata)
		return nil
	case *livekit.SignalRequest_Simulate, *livekit.SignalRequest_Ping, *livekit.SignalRequest_PingReq:
		return nil
	case *livekit.SignalRequest_UpdateAudioTrack, *livekit.SignalRequest_UpdateVideoTrack:
		return nil // feature hints (stereo, dtx, dimensions of a local track); nothing to change here
	default:
		p.logger.Debug("unsupported signal request", "type", fmt.Sprintf("%T", req.Message))
		return nil
	}
}

func (p *Participant) handleOffer(o *livekit.SessionDescription) error {
	sd, err := fromProtoSD(o)
	if err != nil {
		return err
	}
	if sd.Type != webrtc.SDPTypeOffer {
		return errors.New("offer message does not carry an offer")
	}
	pub, err := p.ensurePublisher()
	if err != nil {
		return err
	}
	answer, err := pub.HandleOffer(sd)
	if err != nil {
		return err
	}
	psd := toProtoSD(answer, o.Id)
	if p.single {
		psd.MidToTrackId = pub.midToTrackID()
	}
	p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Answer{Answer: psd}})
	if p.single {
		// Tracks that found no receive section in this offer need more of them.
		pub.RequestOffer()
	}
	return nil
}

// refuseOver answers a signal request that named more than the limits allow (err wraps
// rooms.ErrLimitExceeded; nil: nothing to answer). Such requests carry no request id: the answer
// tells the client why nothing happened.
func (p *Participant) refuseOver(err error) {
	if err == nil {
		return
	}
	p.logger.Info("signal request over the limits", "err", err)
	p.send(requestResponse(0, livekit.RequestResponse_LIMIT_EXCEEDED, err.Error()))
}

func (p *Participant) handleUpdateMetadata(u *livekit.UpdateParticipantMetadata) {
	p.mu.Lock()
	if !p.permission.CanUpdateMetadata {
		p.mu.Unlock()
		p.send(requestResponse(u.RequestId, livekit.RequestResponse_NOT_ALLOWED, "cannot update own metadata"))
		return
	}
	if err := refuseReserved(u.Attributes); err != nil {
		p.mu.Unlock()
		p.send(requestResponse(u.RequestId, livekit.RequestResponse_NOT_ALLOWED, err.Error()))
		return
	}
	name, md := p.name, p.metadata
	if u.Name != "" {
		name = u.Name
	}
	if u.Metadata != "" {
		md = u.Metadata
	}
	attrs := mergeAttributes(p.attributes, u.Attributes)
	if err := p.room.cfg.Limits.checkParticipant(name, md, attrs); err != nil {
		p.mu.Unlock()
		p.send(requestResponse(u.RequestId, livekit.RequestResponse_LIMIT_EXCEEDED, err.Error()))
		return
	}
	p.name, p.metadata, p.attributes = name, md, attrs
	p.bumpLocked()
	p.mu.Unlock()
	p.room.broadcastParticipant(p)
	p.send(requestResponse(u.RequestId, livekit.RequestResponse_OK, ""))
}

func requestResponse(id uint32, reason livekit.RequestResponse_Reason, msg string) *livekit.SignalResponse {
	return &livekit.SignalResponse{Message: &livekit.SignalResponse_RequestResponse{RequestResponse: &livekit.RequestResponse{
		RequestId: id, Reason: reason, Message: msg,
	}}}
}

// handleSyncState restores what a resuming client says it had: subscriptions and mute states.
func (p *Participant) handleSyncState(s *livekit.SyncState) error {
	if err := checkList("sync state", subscriptionLength(s.Subscription)+len(s.PublishTracks)); err != nil {
		return err
	}
	if s.Subscription != nil {
		if err := p.room.updateSubscription(p, s.Subscription); err != nil {
			return err
		}
	}
	for _, t := range s.PublishTracks {
		if t.Track != nil {
			p.setTrackMuted(t.Track.Sid, t.Track.Muted, false)
		}
	}
	return nil
}

// session is one signaling connection of a participant. A resumed participant gets a new
// session; the old one's Close must not detach the new connection.
type session struct {
	p    *Participant
	sink rooms.Sink
}

// HandleRequest passes the client's request to the participant unless a newer connection
// has replaced this one.
func (s *session) HandleRequest(req *livekit.SignalRequest) error {
	if !s.p.isCurrentSink(s.sink) {
		return nil
	}
	return s.p.HandleRequest(req)
}

// Close is called by signaling when the websocket goes away. Without a leave, the participant
// stays (media may still flow) for the reconnect window, then is removed.
func (s *session) Close(reason string) {
	p := s.p
	p.mu.Lock()
	if p.sink != s.sink || p.closed {
		p.mu.Unlock()
		return
	}
	p.sink = nil
	p.mu.Unlock()
	p.logger.Info("signal connection closed", "reason", reason)
	p.scheduleRemoval(p.room.cfg.ReconnectWindow, "signal connection lost")
}

func (p *Participant) isCurrentSink(sink rooms.Sink) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sink == sink
}

// scheduleRemoval removes the participant after d unless it resumes first.
func (p *Participant) scheduleRemoval(d time.Duration, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.disconnect != nil {
		return
	}
	p.disconnect = time.AfterFunc(d, func() {
		p.logger.Info("removing participant", "why", why)
		p.room.removeParticipant(p, livekit.DisconnectReason_CONNECTION_TIMEOUT, false)
	})
}

// resume attaches a new signal connection to this participant, with first as its first
// message (the SDKs drop whatever precedes the reconnect response).
func (p *Participant) resume(sink rooms.Sink, first *livekit.SignalResponse) {
	p.mu.Lock()
	old := p.sink
	p.sink = sink
	if err := sink.Send(first); err != nil {
		p.logger.Debug("signal send failed", "err", err)
	}
	if p.disconnect != nil {
		p.disconnect.Stop()
		p.disconnect = nil
	}
	p.mu.Unlock()
	if old != nil && old != sink {
		old.Close()
	}
}

// closeMedia tears down the participant's PeerConnections (tracks are handled by the room).
func (p *Participant) closeMedia() {
	p.mu.Lock()
	if p.disconnect != nil {
		p.disconnect.Stop()
		p.disconnect = nil
	}
	p.closed = true
	p.mu.Unlock()
	p.pubMu.Lock()
	pub := p.publisher
	p.pubClosed = true
	p.pubMu.Unlock()
	if pub != nil {
		pub.Close()
	}
	if p.subscriber != nil {
		p.subscriber.Close()
	}
	if p.streams != nil {
		p.streams.close()
	}
}

func candidateJSON(c webrtc.ICECandidateInit) string {
	b, err := json.Marshal(c)
	if err != nil {
		return "{}"
	}
	return string(b)
}
