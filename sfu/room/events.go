package room

import (
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/sfu"
)

// EventType names something that happened in a room. The names match LiveKit's webhook
// events so that a webhook sender can pass them through.
type EventType string

// Room events.
const (
	EventRoomStarted       EventType = "room_started"
	EventRoomFinished      EventType = "room_finished"
	EventParticipantJoined EventType = "participant_joined"
	EventParticipantLeft   EventType = "participant_left"
	EventTrackPublished    EventType = "track_published"
	EventTrackUnpublished  EventType = "track_unpublished"
)

// Event is one room event, with snapshots of what it concerns.
type Event struct {
	Type        EventType
	Time        time.Time
	Room        *livekit.Room
	Participant *livekit.ParticipantInfo // participant events and track events
	Track       *livekit.TrackInfo       // track events
	// Reason is why a participant left or a room finished.
	Reason livekit.DisconnectReason
}

// Observer receives room events (webhooks, statistics, recording). OnRoomEvent is called
// synchronously in event order and must return quickly (queue work elsewhere).
type Observer interface {
	OnRoomEvent(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// OnRoomEvent calls f.
func (f ObserverFunc) OnRoomEvent(e Event) { f(e) }

// AddObserver registers o for the events of every room. Call it before serving.
func (m *Manager) AddObserver(o Observer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.observers = append(m.observers, o)
}

// emit delivers an event to the observers.
func (r *Room) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Room == nil {
		e.Room = r.Info()
	}
	r.manager.mu.Lock()
	obs := r.manager.observers
	r.manager.mu.Unlock()
	for _, o := range obs {
		o.OnRoomEvent(e)
	}
}

// SubscriptionStats describes one track forwarded to one subscriber: what coverage statistics
// and metrics are built from.
type SubscriptionStats struct {
	Subscriber         string // identity
	SubscriberSID      string
	Publisher          string // identity
	TrackSID           string
	Kind               livekit.TrackType
	Source             livekit.TrackSource
	Width, Height      uint32 // of the layer being forwarded, when known
	sfu.DownTrackStats        // packets, loss, jitter, RTT, NACKs, PLIs, layers
}

// ParticipantStats lists a room's participants with what each receives.
type ParticipantStats struct {
	Info          *livekit.ParticipantInfo
	Subscriptions []SubscriptionStats
	// SRTPCiphers are the SRTP profiles negotiated on the participant's PeerConnections.
	SRTPCiphers []string
	// Transceivers counts the transceivers its PeerConnections hold (one per media section
	// ever negotiated on them, and per track sent to it).
	Transceivers int
	// DataBuffered is what the server has queued on the data channels to the participant,
	// in bytes; DataDropped counts the data packets it dropped instead of queueing them
	// (the participant did not read them fast enough).
	DataBuffered, DataDropped uint64
}

// Stats returns a snapshot of a room's participants and their subscriptions.
func (m *Manager) Stats(roomName string) ([]ParticipantStats, error) {
	r, err := m.room(roomName)
	if err != nil {
		return nil, err
	}
	var out []ParticipantStats
	for _, p := range r.participantList() {
		ps := ParticipantStats{Info: p.Info(), DataBuffered: p.dataBuffered(), DataDropped: p.dataDropped.Load()}
		for _, t := range []*transport{p.pub(), p.subscriber} {
			if t != nil {
				ps.SRTPCiphers = append(ps.SRTPCiphers, t.SRTPCipher())
				ps.Transceivers += len(t.pc.GetTransceivers())
			}
		}
		p.mu.Lock()
		subs := make([]*subscription, 0, len(p.subscribed))
		for _, s := range p.subscribed {
			subs = append(subs, s)
		}
		p.mu.Unlock()
		for _, s := range subs {
			info := s.track.Info()
			st := SubscriptionStats{
				Subscriber: p.identity, SubscriberSID: p.sid, Publisher: s.track.owner.identity,
				TrackSID: info.Sid, Kind: info.Type, Source: info.Source, DownTrackStats: s.down.Stats(),
			}
			if l := st.CurrentLayer; l >= 0 {
				for _, vl := range info.Layers { //nolint:staticcheck // LiveKit protocol: clients read TrackInfo.layers
					if qualityToLayer(vl.Quality) == l {
						st.Width, st.Height = vl.Width, vl.Height
					}
				}
			}
			ps.Subscriptions = append(ps.Subscriptions, st)
		}
		out = append(out, ps)
	}
	return out, nil
}

// RoomNames lists the active rooms.
func (m *Manager) RoomNames() []string {
	rooms := m.roomList()
	out := make([]string, len(rooms))
	for i, r := range rooms {
		out[i] = r.Name()
	}
	return out
}

// PeerConnections returns the number of participants' PeerConnections open on this node,
// those of participants that left and are still closing included.
func (m *Manager) PeerConnections() int {
	if m.media == nil {
		return 0
	}
	return m.media.PeerConnections()
}

// DataDropped returns how many data packets this node dropped instead of queueing them for
// participants that did not read their data fast enough (room/data.go bounds the queue).
func (m *Manager) DataDropped() uint64 { return m.dataDropped.Load() }
