package room

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/internal/rooms"
)

// Config holds what the room layer needs from the server configuration.
type Config struct {
	AutoCreate       bool
	EmptyTimeout     time.Duration
	DepartureTimeout time.Duration
	MaxParticipants  int
	// SyncStreams has subscribers receive a participant's camera and microphone (and a screen
	// share and its audio) in one MediaStream, so browsers play them in sync (sync.go).
	SyncStreams bool
	// ReconnectWindow is how long a participant whose connection dropped is kept for a resume.
	ReconnectWindow time.Duration
	PingInterval    time.Duration
	PingTimeout     time.Duration
	PLIThrottle     time.Duration
	PacketCacheSize int
	// CaptureAudio, when set, is asked for a sink of each published audio track's RTP as
	// received (sfu.ReceiverParams.Capture); a nil sink captures nothing. A test aid.
	CaptureAudio func(trackSID string) func(pkt []byte)
	// ICEServers are handed to clients in the join response.
	ICEServers []*livekit.ICEServer
	// TURN, if not nil, returns the embedded relay's URLs and fresh credentials for the
	// participant with sid, who reached the server at host; they follow ICEServers in join
	// and reconnect responses. The relay refuses them once the participant has left (its
	// participant_left event).
	TURN func(host, sid string) (*livekit.ICEServer, error)
	// ServerInfo is sent in join responses (version, protocol, node id, region).
	ServerInfo *livekit.ServerInfo
	// Keys sign the refreshed tokens sent to clients; nil disables refresh.
	Keys auth.KeyProvider
	// Limits bound what clients and Room API calls can make rooms keep.
	Limits Limits
}

// clientICEServers returns the ICE servers for participant sid, whose client reached the
// server at host.
func (c *Config) clientICEServers(host, sid string, logger *slog.Logger) []*livekit.ICEServer {
	if c.TURN == nil {
		return c.ICEServers
	}
	ice, err := c.TURN(host, sid)
	if err != nil {
		logger.Warn("no TURN relay for the client", "sid", sid, "host", host, "err", err)
		return c.ICEServers
	}
	return append(slices.Clip(c.ICEServers), ice)
}

func (c *Config) webrtcICEServers() []webrtc.ICEServer {
	// The server itself needs no STUN: it knows its own address (host candidates, or NodeIP).
	return nil
}

// clientConfiguration tells clients which optional behaviours to use.
func (c *Config) clientConfiguration() *livekit.ClientConfiguration {
	return &livekit.ClientConfiguration{ResumeConnection: livekit.ClientConfigSetting_ENABLED}
}

// Manager owns the rooms of this node. It implements rooms.Joiner and rooms.Admin.
type Manager struct {
	cfg    *Config
	media  *MediaAPI
	logger *slog.Logger

	mu        sync.Mutex
	rooms     map[string]*Room
	draining  bool
	observers []Observer
	policy    JoinPolicy // nil: participants start with what their token grants

	dataDropped atomic.Uint64 // data packets not sent to participants that did not read them
}

// Media returns the media API the rooms' PeerConnections are built with.
func (m *Manager) Media() *MediaAPI { return m.media }

// NewManager creates a room manager using the given media API for PeerConnections. Zero
// Limits in cfg take their defaults.
func NewManager(cfg *Config, media *MediaAPI, logger *slog.Logger) *Manager {
	c := *cfg
	c.Limits = c.Limits.withDefaults()
	return &Manager{cfg: &c, media: media, logger: logger, rooms: map[string]*Room{}}
}

// getOrCreate returns the named room, creating it when allowed.
func (m *Manager) getOrCreate(name string, create bool, opts *livekit.CreateRoomRequest) (*Room, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.draining {
		return nil, rooms.ErrServerShuttingDown
	}
	if r, ok := m.rooms[name]; ok {
		return r, nil
	}
	if !create {
		return nil, rooms.ErrRoomNotFound
	}
	r := newRoom(m, name, opts)
	m.rooms[name] = r
	obs := m.observers
	// room_started is delivered outside m.mu: observers may call back into the manager.
	m.mu.Unlock()
	info := r.Info()
	for _, o := range obs {
		o.OnRoomEvent(Event{Type: EventRoomStarted, Time: time.Now(), Room: info})
	}
	m.mu.Lock()
	return r, nil
}

func (m *Manager) room(name string) (*Room, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.rooms[name]; ok {
		return r, nil
	}
	return nil, rooms.ErrRoomNotFound
}

// forget drops a closed room.
func (m *Manager) forget(r *Room) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rooms[r.Name()] == r {
		delete(m.rooms, r.Name())
	}
}

// Join implements rooms.Joiner: a new participant, or a resume of an existing one.
// A new participant starts with what the join policy (SetJoinPolicy) decides.
func (m *Manager) Join(ctx context.Context, req rooms.JoinRequest, sink rooms.Sink) (rooms.Session, error) {
	if err := m.checkJoin(req); err != nil {
		return nil, err
	}
	var adm *Admission
	if !req.Reconnect {
		var err error
		if adm, err = m.admit(ctx, req); err != nil {
			return nil, err
		}
	}
	r, err := m.getOrCreate(req.RoomName, m.cfg.AutoCreate, nil)
	if err != nil {
		return nil, err
	}
	if req.Reconnect {
		if p := r.participant(req.Identity); p != nil && (req.ParticipantSID == "" || p.sid == req.ParticipantSID) {
			p.mu.Lock()
			lastSeq := p.lastDataSeq
			p.mu.Unlock()
			p.resume(sink, &livekit.SignalResponse{Message: &livekit.SignalResponse_Reconnect{Reconnect: &livekit.ReconnectResponse{
				IceServers:          m.cfg.clientICEServers(req.Host, p.sid, m.logger),
				ClientConfiguration: m.cfg.clientConfiguration(),
				ServerInfo:          m.cfg.ServerInfo,
				LastMessageSeq:      lastSeq,
			}}})
			p.logger.Info("participant resumed", "reason", req.ReconnectReason.String())
			p.refreshToken()
			// New ICE credentials for our offers; the client restarts ICE on its own offers.
			if !p.single {
				p.subscriber.Negotiate(true)
			}
			return &session{p: p, sink: sink}, nil
		}
		// Nothing to resume (e.g. the server restarted): signaling tells the client to rejoin.
		m.logger.Info("resume impossible, asking for full reconnect", "room", req.RoomName, "identity", req.Identity)
		return nil, fmt.Errorf("resume of %q: %w", req.Identity, rooms.ErrParticipantNotFound)
	}
	p, err := r.join(req, adm, sink)
	if err != nil {
		return nil, err
	}
	return &session{p: p, sink: sink}, nil
}

// ValidateJoin implements rooms.JoinValidator: refuse before the websocket upgrade what
// Join would refuse anyway.
func (m *Manager) ValidateJoin(_ context.Context, req rooms.JoinRequest) error {
	if err := m.checkJoin(req); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.draining {
		return rooms.ErrServerShuttingDown
	}
	if _, ok := m.rooms[req.RoomName]; !ok && !m.cfg.AutoCreate && !req.Reconnect {
		return rooms.ErrRoomNotFound
	}
	return nil
}

// Drain stops accepting joins and disconnects everyone (graceful shutdown).
func (m *Manager) Drain() {
	m.mu.Lock()
	m.draining = true
	rooms := make([]*Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		rooms = append(rooms, r)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range rooms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.close(livekit.DisconnectReason_SERVER_SHUTDOWN)
		}()
	}
	wg.Wait()
}

// Rooms returns a snapshot of the active rooms.
func (m *Manager) roomList() []*Room {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// --- rooms.Admin ---

// CreateRoom creates a room (or returns the existing one).
func (m *Manager) CreateRoom(_ context.Context, req *livekit.CreateRoomRequest) (*livekit.Room, error) {
	if err := m.cfg.Limits.checkRoom(req.Name, req.Metadata); err != nil {
		return nil, err
	}
	r, err := m.getOrCreate(req.Name, true, req)
	if err != nil {
		return nil, err
	}
	return r.Info(), nil
}

// ListRooms lists active rooms, optionally only those named.
func (m *Manager) ListRooms(_ context.Context, names []string) ([]*livekit.Room, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []*livekit.Room
	for _, r := range m.roomList() {
		if len(want) == 0 || want[r.Name()] {
			out = append(out, r.Info())
		}
	}
	return out, nil
}

// DeleteRoom closes a room and disconnects its participants.
func (m *Manager) DeleteRoom(_ context.Context, name string) error {
	r, err := m.room(name)
	if err != nil {
		return err
	}
	r.close(livekit.DisconnectReason_ROOM_DELETED)
	return nil
}

// ListParticipants lists a room's participants (hidden ones included: the API is for admins).
func (m *Manager) ListParticipants(_ context.Context, name string) ([]*livekit.ParticipantInfo, error) {
	r, err := m.room(name)
	if err != nil {
		return nil, err
	}
	ps := r.participantList()
	sort.Slice(ps, func(i, j int) bool { return ps[i].joinedAt.Before(ps[j].joinedAt) })
	out := make([]*livekit.ParticipantInfo, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Info())
	}
	return out, nil
}

func (m *Manager) participant(room, identity string) (*Room, *Participant, error) {
	r, err := m.room(room)
	if err != nil {
		return nil, nil, err
	}
	p := r.participant(identity)
	if p == nil {
		return r, nil, rooms.ErrParticipantNotFound
	}
	return r, p, nil
}

// GetParticipant returns one participant.
func (m *Manager) GetParticipant(_ context.Context, room, identity string) (*livekit.ParticipantInfo, error) {
	_, p, err := m.participant(room, identity)
	if err != nil {
		return nil, err
	}
	return p.Info(), nil
}

// RemoveParticipant disconnects a participant.
func (m *Manager) RemoveParticipant(_ context.Context, room, identity string) error {
	r, p, err := m.participant(room, identity)
	if err != nil {
		return err
	}
	r.removeParticipant(p, livekit.DisconnectReason_PARTICIPANT_REMOVED, true)
	return nil
}

// MutePublishedTrack mutes or unmutes a participant's track on the server's initiative.
func (m *Manager) MutePublishedTrack(_ context.Context, room, identity, trackSID string, muted bool) (*livekit.TrackInfo, error) {
	_, p, err := m.participant(room, identity)
	if err != nil {
		return nil, err
	}
	info := p.setTrackMuted(trackSID, muted, true)
	if info == nil {
		return nil, rooms.ErrTrackNotFound
	}
	return info, nil
}

// UpdateParticipant changes metadata, name, attributes and permissions. It is the server's
// own path (the classroom service calls it directly): attributes reserved for the server
// are accepted here, and refused by the Room API before it gets here. Whether a participant
// is hidden or the recorder does not change (the join token decides). The participant gets
// a fresh refresh token right away, so that the newest token it holds says what it may do
// now (a withdrawn microphone is not carried forward).
func (m *Manager) UpdateParticipant(_ context.Context, req *livekit.UpdateParticipantRequest) (*livekit.ParticipantInfo, error) {
	r, p, err := m.participant(req.Room, req.Identity)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	name, md := p.name, p.metadata
	if req.Name != "" {
		name = req.Name
	}
	if req.Metadata != "" {
		md = req.Metadata
	}
	attrs := mergeAttributes(p.attributes, req.Attributes)
	if err := m.cfg.Limits.checkParticipant(name, md, attrs); err != nil {
		p.mu.Unlock()
		return nil, err
	}
	p.name, p.metadata, p.attributes = name, md, attrs
	var revoked []string
	lostSub := false
	if req.Permission != nil {
		old := p.permission
		p.setPermissionLocked(req.Permission)
		lostSub = old.CanSubscribe && !p.permission.CanSubscribe
		for sid, t := range p.published {
			if !p.permission.CanPublish || !sourceAllowed(p.permission.CanPublishSources, t.Info().Source) {
				revoked = append(revoked, sid)
			}
		}
	}
	p.bumpLocked()
	p.mu.Unlock()

	for _, sid := range revoked {
		r.revokeTrack(p, sid)
	}
	if lostSub {
		p.mu.Lock()
		subs := make([]string, 0, len(p.subscribed))
		for sid := range p.subscribed {
			subs = append(subs, sid)
		}
		p.mu.Unlock()
		for _, sid := range subs {
			r.unsubscribe(p, sid)
		}
	}
	r.broadcastParticipant(p)
	p.refreshToken()
	if req.Permission != nil && req.Permission.CanSubscribe && p.autoSubscribe {
		r.subscribeToAll(p)
	}
	return p.Info(), nil
}

func sourceAllowed(allowed []livekit.TrackSource, s livekit.TrackSource) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, a := range allowed {
		if a == s {
			return true
		}
	}
	return false
}

// UpdateSubscriptions subscribes or unsubscribes a participant on an admin's behalf.
func (m *Manager) UpdateSubscriptions(_ context.Context, req *livekit.UpdateSubscriptionsRequest) error {
	r, p, err := m.participant(req.Room, req.Identity)
	if err != nil {
		return err
	}
	return r.updateSubscription(p, &livekit.UpdateSubscription{TrackSids: req.TrackSids, Subscribe: req.Subscribe, ParticipantTracks: req.ParticipantTracks})
}

// SendData sends a server-originated data packet to a room.
func (m *Manager) SendData(_ context.Context, req *livekit.SendDataRequest) error {
	if err := checkData(req); err != nil {
		return err
	}
	r, err := m.room(req.Room)
	if err != nil {
		return err
	}
	dest := append([]string(nil), req.DestinationIdentities...)
	for _, sid := range req.DestinationSids { //nolint:staticcheck // LiveKit Room API: data addressed by sid
		if p := r.participantBySID(sid); p != nil {
			dest = append(dest, p.identity)
		}
	}
	if len(dest) == 0 && (len(req.DestinationSids) > 0 || len(req.DestinationIdentities) > 0) { //nolint:staticcheck // LiveKit Room API: data addressed by sid
		return nil // addressed to nobody present
	}
	pkt := &livekit.DataPacket{
		Kind:                  req.Kind, //nolint:staticcheck // LiveKit protocol: clients send and read kind
		DestinationIdentities: dest,
		Value: &livekit.DataPacket_User{User: &livekit.UserPacket{
			Payload: req.Data, Topic: req.Topic, DestinationIdentities: dest, //nolint:staticcheck // LiveKit protocol: older clients address here
		}},
	}
	r.relayData(nil, req.Kind, pkt)
	return nil
}

// UpdateRoomMetadata replaces a room's metadata and tells its participants.
func (m *Manager) UpdateRoomMetadata(_ context.Context, name, metadata string) (*livekit.Room, error) {
	if err := checkLength("room metadata", metadata, m.cfg.Limits.MaxMetadataSize); err != nil {
		return nil, err
	}
	r, err := m.room(name)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.info.Metadata = metadata
	info := r.infoLocked()
	r.mu.Unlock()
	msg := &livekit.SignalResponse{Message: &livekit.SignalResponse_RoomUpdate{RoomUpdate: &livekit.RoomUpdate{Room: info}}}
	for _, p := range r.participantList() {
		p.send(msg)
	}
	return info, nil
}

// The manager is what signaling and the Room API talk to.
var (
	_ rooms.Joiner        = (*Manager)(nil)
	_ rooms.JoinValidator = (*Manager)(nil)
	_ rooms.Admin         = (*Manager)(nil)
	_ rooms.Session       = (*session)(nil)
)
