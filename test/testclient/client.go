package testclient

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// EventKind names what a Client observed.
type EventKind string

// Event kinds, one per SDK callback the Client captures.
const (
	EventParticipantConnected    EventKind = "participant_connected"
	EventParticipantDisconnected EventKind = "participant_disconnected" // Detail: disconnect reason
	EventTrackPublished          EventKind = "track_published"
	EventTrackUnpublished        EventKind = "track_unpublished"
	EventTrackSubscribed         EventKind = "track_subscribed"
	EventTrackUnsubscribed       EventKind = "track_unsubscribed"
	EventTrackSubscriptionFailed EventKind = "track_subscription_failed"
	EventTrackMuted              EventKind = "track_muted"
	EventTrackUnmuted            EventKind = "track_unmuted"
	EventMetadataChanged         EventKind = "metadata_changed"   // Detail: new metadata
	EventAttributesChanged       EventKind = "attributes_changed" // Detail: changed keys=values
	EventIsSpeakingChanged       EventKind = "is_speaking_changed"
	EventConnectionQuality       EventKind = "connection_quality" // Detail: quality
	EventActiveSpeakers          EventKind = "active_speakers"    // Detail: identities, loudest first
	EventRoomMetadata            EventKind = "room_metadata"      // Detail: new metadata
	EventDataReceived            EventKind = "data_received"      // Detail: topic
	EventLocalTrackPublished     EventKind = "local_track_published"
	EventLocalTrackUnpublished   EventKind = "local_track_unpublished"
	EventLocalTrackSubscribed    EventKind = "local_track_subscribed"
	EventReconnecting            EventKind = "reconnecting"
	EventReconnected             EventKind = "reconnected"
	EventDisconnected            EventKind = "disconnected" // Detail: "PROTO_REASON: sdk reason"
)

// Event is one SDK callback a Client observed.
type Event struct {
	At   time.Time
	Kind EventKind
	// Participant is the identity concerned (the local one for local events).
	Participant string
	// TrackSID is the track concerned, if any.
	TrackSID string
	// Detail depends on Kind; see the constants.
	Detail string
}

// String renders the event on one line for logs.
func (e Event) String() string {
	s := string(e.Kind)
	if e.Participant != "" {
		s += " " + e.Participant
	}
	if e.TrackSID != "" {
		s += " " + e.TrackSID
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// DataMessage is a data packet a Client received.
type DataMessage struct {
	At   time.Time
	From string // sender identity ("" when sent by the server)
	// Kind is "user", "chat", "dtmf" or the Go type of other packets.
	Kind    string
	Topic   string
	Payload []byte // user payload, chat text, or DTMF digit
	Packet  lksdk.DataPacket
}

// JoinOptions configures Join. The zero value joins with every permission, auto-subscribes,
// and keeps the SDK's defaults.
type JoinOptions struct {
	// Grant replaces JoinGrant(room).
	Grant *auth.VideoGrant
	// TokenOptions adjust the minted token (name, metadata, attributes, TTL...).
	TokenOptions []TokenOption
	// Token, when set, is used as is (Grant and TokenOptions are ignored).
	Token string
	// NoAutoSubscribe joins with auto_subscribe=0.
	NoAutoSubscribe bool
	// ConnectOptions are passed to the SDK after the Client's own.
	ConnectOptions []lksdk.ConnectOption
	// Timeout bounds the join (default 20 s).
	Timeout time.Duration
	// OnPacket, when set, sees every RTP packet received on every subscribed track, after the
	// statistics were updated. It runs on the track's reader goroutine: keep it short.
	OnPacket func(ts *TrackStats, pkt *rtp.Packet)
	// Callback receives the SDK callbacks too, after the Client recorded them. Only the
	// fields set are called.
	Callback *lksdk.RoomCallback
	// NoDisconnectOnCleanup leaves the client connected when the test ends (for tests that
	// drop connections themselves).
	NoDisconnectOnCleanup bool
}

// Client is a Go SDK participant that records what it sees: events, data packets, and RTP
// statistics of every track it subscribes to. Its methods are safe for concurrent use.
type Client struct {
	// Room is the SDK room; use it for anything the helpers do not cover.
	Room *lksdk.Room
	// Identity is the participant identity.
	Identity string
	// RoomName is the room joined.
	RoomName string
	// Target is the server joined.
	Target Target

	tb       testing.TB
	logs     *logBuffer
	onPacket func(*TrackStats, *rtp.Packet)

	mu      sync.Mutex
	events  []Event
	data    []DataMessage
	tracks  map[string]*TrackStats // current, by track SID
	history []*TrackStats          // every subscription, oldest first
}

// Join connects a new participant identity to room on target and fails the test if it
// cannot. The client disconnects when the test ends; its SDK logs are printed if the test
// failed.
func Join(tb testing.TB, target Target, room, identity string, opts *JoinOptions) *Client {
	tb.Helper()
	c, err := TryJoin(tb, target, room, identity, opts)
	if err != nil {
		tb.Fatalf("join %s to room %s on %s: %v", identity, room, target.URL, err)
	}
	return c
}

// TryJoin is Join that returns the error instead of failing, for tests expecting a refusal.
// On error nothing is left running.
func TryJoin(tb testing.TB, target Target, room, identity string, opts *JoinOptions) (*Client, error) {
	tb.Helper()
	if opts == nil {
		opts = &JoinOptions{}
	}
	c := &Client{
		Identity: identity,
		RoomName: room,
		Target:   target,
		tb:       tb,
		logs:     newLogBuffer(),
		onPacket: opts.OnPacket,
		tracks:   map[string]*TrackStats{},
	}
	token := opts.Token
	if token == "" {
		grant := opts.Grant
		if grant == nil {
			grant = JoinGrant(room)
		}
		var err error
		token, err = NewToken(target.APIKey, target.APISecret, identity, grant, opts.TokenOptions...)
		if err != nil {
			return nil, err
		}
	}

	c.Room = lksdk.NewRoom(c.callbacks(opts.Callback))
	c.Room.SetLogger(sdkLogger(c.logs, identity))
	connect := []lksdk.ConnectOption{lksdk.WithAutoSubscribe(!opts.NoAutoSubscribe)}
	connect = append(connect, opts.ConnectOptions...)
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.Room.JoinWithContextAndToken(ctx, target.URL, token, connect...); err != nil {
		c.Room.Disconnect()
		if logs := c.logs.String(); logs != "" {
			tb.Logf("SDK log of %s:\n%s", identity, logs)
		}
		return nil, err
	}
	tb.Cleanup(func() {
		if !opts.NoDisconnectOnCleanup {
			c.Room.Disconnect()
			c.waitReaders(3 * time.Second)
		}
		if tb.Failed() {
			tb.Logf("client %s events:\n%s", identity, c.describeEvents())
			tb.Logf("client %s tracks:\n%s", identity, c.describeTracks())
			tb.Logf("client %s SDK log:\n%s", identity, c.logs.String())
		}
	})
	return c, nil
}

// Logf adds a line to the client's log (printed if the test fails).
func (c *Client) Logf(format string, args ...any) { c.logs.add(fmt.Sprintf(format, args...)) }

// Disconnect leaves the room (client initiated) and waits briefly for track readers to stop.
func (c *Client) Disconnect() {
	c.Room.Disconnect()
	c.waitReaders(3 * time.Second)
}

func (c *Client) waitReaders(d time.Duration) {
	c.mu.Lock()
	all := slices.Clone(c.history)
	c.mu.Unlock()
	deadline := time.After(d)
	for _, ts := range all {
		select {
		case <-ts.Done():
		case <-deadline:
			return
		}
	}
}

// Events returns the events observed so far, oldest first.
func (c *Client) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}

// HasEvent reports whether an event of kind about participant (any when "") was observed.
func (c *Client) HasEvent(kind EventKind, participant string) bool {
	_, ok := c.FindEvent(func(e Event) bool {
		return e.Kind == kind && (participant == "" || e.Participant == participant)
	})
	return ok
}

// FindEvent returns the first observed event that match accepts.
func (c *Client) FindEvent(match func(Event) bool) (Event, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.events {
		if match(e) {
			return e, true
		}
	}
	return Event{}, false
}

// WaitForEvent waits up to timeout for an event of kind about participant (any when "") and
// returns it; it fails the test otherwise.
func (c *Client) WaitForEvent(timeout time.Duration, kind EventKind, participant string) Event {
	c.tb.Helper()
	var ev Event
	Eventually(c.tb, timeout, fmt.Sprintf("%s sees %s %s", c.Identity, kind, participant), func() (bool, string) {
		var ok bool
		ev, ok = c.FindEvent(func(e Event) bool {
			return e.Kind == kind && (participant == "" || e.Participant == participant)
		})
		return ok, c.describeEvents()
	})
	return ev
}

// Data returns the data packets received so far, oldest first.
func (c *Client) Data() []DataMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.data)
}

// WaitForData waits up to timeout until match accepts a received data packet, and returns
// it; it fails the test otherwise.
func (c *Client) WaitForData(timeout time.Duration, match func(DataMessage) bool) DataMessage {
	c.tb.Helper()
	var got DataMessage
	Eventually(c.tb, timeout, c.Identity+" receives data", func() (bool, string) {
		msgs := c.Data()
		for _, m := range msgs {
			if match(m) {
				got = m
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d data packets received", len(msgs))
	})
	return got
}

// Track returns the statistics of the current subscription to trackSID, or nil.
func (c *Client) Track(trackSID string) *TrackStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tracks[trackSID]
}

// Tracks returns snapshots of every current subscription, ordered by subscription time.
func (c *Client) Tracks() []TrackSnapshot {
	c.mu.Lock()
	cur := make([]*TrackStats, 0, len(c.tracks))
	for _, ts := range c.history {
		if c.tracks[ts.s.TrackSID] == ts {
			cur = append(cur, ts)
		}
	}
	c.mu.Unlock()
	out := make([]TrackSnapshot, len(cur))
	for i, ts := range cur {
		out[i] = ts.Snapshot()
	}
	return out
}

// WaitForTrack waits up to timeout until the client is subscribed to a track of kind
// published by identity (any when ""), and returns its statistics.
func (c *Client) WaitForTrack(timeout time.Duration, identity string, kind webrtc.RTPCodecType) *TrackStats {
	c.tb.Helper()
	var found *TrackStats
	Eventually(c.tb, timeout, fmt.Sprintf("%s subscribed to a %s track of %q", c.Identity, kind, identity), func() (bool, string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, ts := range c.history {
			if c.tracks[ts.s.TrackSID] == ts && ts.s.Kind == kind && (identity == "" || ts.s.ParticipantIdentity == identity) {
				found = ts
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d tracks subscribed", len(c.tracks))
	})
	return found
}

// WaitForPublication waits up to timeout until remote participant identity has a published
// track of kind and returns it (subscribed or not); it fails the test otherwise.
func (c *Client) WaitForPublication(timeout time.Duration, identity string, kind lksdk.TrackKind) *lksdk.RemoteTrackPublication {
	c.tb.Helper()
	var pub *lksdk.RemoteTrackPublication
	Eventually(c.tb, timeout, fmt.Sprintf("%s sees a %s publication of %s", c.Identity, kind, identity), func() (bool, string) {
		rp := c.Room.GetParticipantByIdentity(identity)
		if rp == nil {
			return false, "participant not in room"
		}
		for _, tp := range rp.TrackPublications() {
			if r, ok := tp.(*lksdk.RemoteTrackPublication); ok && r.Kind() == kind {
				pub = r
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d publications", len(rp.TrackPublications()))
	})
	return pub
}

func (c *Client) record(e Event) {
	e.At = time.Now()
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
	c.logs.add("event: " + e.String())
}

func (c *Client) describeEvents() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, e := range c.events {
		fmt.Fprintf(&b, "  %s %s\n", e.At.Format("15:04:05.000"), e)
	}
	if b.Len() == 0 {
		return "  (none)"
	}
	return b.String()
}

func (c *Client) describeTracks() string {
	var b strings.Builder
	for _, s := range c.Tracks() {
		fmt.Fprintf(&b, "  %s\n", s)
	}
	if b.Len() == 0 {
		return "  (none)"
	}
	return b.String()
}

// callbacks builds the SDK callbacks that record into c and then call extra's.
func (c *Client) callbacks(extra *lksdk.RoomCallback) *lksdk.RoomCallback {
	x := lksdk.NewRoomCallback()
	x.Merge(extra)
	cb := lksdk.NewRoomCallback()
	cb.OnParticipantConnected = func(rp *lksdk.RemoteParticipant) {
		c.record(Event{Kind: EventParticipantConnected, Participant: rp.Identity()})
		x.OnParticipantConnected(rp)
	}
	cb.OnParticipantDisconnected = func(rp *lksdk.RemoteParticipant) {
		c.record(Event{Kind: EventParticipantDisconnected, Participant: rp.Identity(), Detail: rp.DisconnectReason().String()})
		x.OnParticipantDisconnected(rp)
	}
	cb.OnTrackPublished = func(pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		c.record(Event{Kind: EventTrackPublished, Participant: rp.Identity(), TrackSID: pub.SID(), Detail: pub.Kind().String()})
		x.OnTrackPublished(pub, rp)
	}
	cb.OnTrackUnpublished = func(pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		c.record(Event{Kind: EventTrackUnpublished, Participant: rp.Identity(), TrackSID: pub.SID()})
		x.OnTrackUnpublished(pub, rp)
	}
	cb.OnTrackSubscribed = func(track *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		ts := newTrackStats(track, pub.Receiver(), rp.Identity(), rp.SID(), pub.SID())
		c.mu.Lock()
		c.tracks[pub.SID()] = ts
		c.history = append(c.history, ts)
		c.mu.Unlock()
		go ts.read(track, c.onPacket)
		c.record(Event{Kind: EventTrackSubscribed, Participant: rp.Identity(), TrackSID: pub.SID(),
			Detail: fmt.Sprintf("%s ssrc=%d", track.Codec().MimeType, track.SSRC())})
		x.OnTrackSubscribed(track, pub, rp)
	}
	cb.OnTrackUnsubscribed = func(track *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		c.record(Event{Kind: EventTrackUnsubscribed, Participant: rp.Identity(), TrackSID: pub.SID()})
		x.OnTrackUnsubscribed(track, pub, rp)
	}
	cb.OnTrackSubscriptionFailed = func(sid string, rp *lksdk.RemoteParticipant) {
		c.record(Event{Kind: EventTrackSubscriptionFailed, Participant: rp.Identity(), TrackSID: sid})
		x.OnTrackSubscriptionFailed(sid, rp)
	}
	cb.OnTrackMuted = func(pub lksdk.TrackPublication, p lksdk.Participant) {
		c.record(Event{Kind: EventTrackMuted, Participant: p.Identity(), TrackSID: pub.SID()})
		x.OnTrackMuted(pub, p)
	}
	cb.OnTrackUnmuted = func(pub lksdk.TrackPublication, p lksdk.Participant) {
		c.record(Event{Kind: EventTrackUnmuted, Participant: p.Identity(), TrackSID: pub.SID()})
		x.OnTrackUnmuted(pub, p)
	}
	cb.OnMetadataChanged = func(old string, p lksdk.Participant) {
		c.record(Event{Kind: EventMetadataChanged, Participant: p.Identity(), Detail: p.Metadata()})
		x.OnMetadataChanged(old, p)
	}
	cb.OnAttributesChanged = func(changed map[string]string, p lksdk.Participant) {
		keys := make([]string, 0, len(changed))
		for k, v := range changed {
			keys = append(keys, k+"="+v)
		}
		slices.Sort(keys)
		c.record(Event{Kind: EventAttributesChanged, Participant: p.Identity(), Detail: strings.Join(keys, ",")})
		x.OnAttributesChanged(changed, p)
	}
	cb.OnIsSpeakingChanged = func(p lksdk.Participant) {
		c.record(Event{Kind: EventIsSpeakingChanged, Participant: p.Identity(), Detail: fmt.Sprint(p.IsSpeaking())})
		x.OnIsSpeakingChanged(p)
	}
	cb.OnConnectionQualityChanged = func(u *livekit.ConnectionQualityInfo, p lksdk.Participant) {
		c.record(Event{Kind: EventConnectionQuality, Participant: p.Identity(), Detail: u.GetQuality().String()})
		x.OnConnectionQualityChanged(u, p)
	}
	cb.OnActiveSpeakersChanged = func(ps []lksdk.Participant) {
		ids := make([]string, len(ps))
		for i, p := range ps {
			ids[i] = p.Identity()
		}
		c.record(Event{Kind: EventActiveSpeakers, Detail: strings.Join(ids, ",")})
		x.OnActiveSpeakersChanged(ps)
	}
	cb.OnRoomMetadataChanged = func(md string) {
		c.record(Event{Kind: EventRoomMetadata, Detail: md})
		x.OnRoomMetadataChanged(md)
	}
	cb.OnDataPacket = func(pkt lksdk.DataPacket, params lksdk.DataReceiveParams) {
		m := DataMessage{At: time.Now(), From: params.SenderIdentity, Packet: pkt}
		switch p := pkt.(type) {
		case *lksdk.UserDataPacket:
			m.Kind, m.Topic, m.Payload = "user", p.Topic, slices.Clone(p.Payload)
		case *livekit.ChatMessage:
			m.Kind, m.Payload = "chat", []byte(p.GetMessage())
		case *livekit.SipDTMF:
			m.Kind, m.Payload = "dtmf", []byte(p.GetDigit())
		default:
			m.Kind = fmt.Sprintf("%T", pkt)
		}
		c.mu.Lock()
		c.data = append(c.data, m)
		c.mu.Unlock()
		c.record(Event{Kind: EventDataReceived, Participant: params.SenderIdentity, Detail: m.Kind + " " + m.Topic})
		x.OnDataPacket(pkt, params)
	}
	cb.OnLocalTrackPublished = func(pub *lksdk.LocalTrackPublication, lp *lksdk.LocalParticipant) {
		c.record(Event{Kind: EventLocalTrackPublished, Participant: lp.Identity(), TrackSID: pub.SID()})
		x.OnLocalTrackPublished(pub, lp)
	}
	cb.OnLocalTrackUnpublished = func(pub *lksdk.LocalTrackPublication, lp *lksdk.LocalParticipant) {
		c.record(Event{Kind: EventLocalTrackUnpublished, Participant: lp.Identity(), TrackSID: pub.SID()})
		x.OnLocalTrackUnpublished(pub, lp)
	}
	cb.OnLocalTrackSubscribed = func(pub *lksdk.LocalTrackPublication, lp *lksdk.LocalParticipant) {
		c.record(Event{Kind: EventLocalTrackSubscribed, Participant: lp.Identity(), TrackSID: pub.SID()})
		x.OnLocalTrackSubscribed(pub, lp)
	}
	cb.OnReconnecting = func() {
		c.record(Event{Kind: EventReconnecting})
		x.OnReconnecting()
	}
	cb.OnReconnected = func() {
		c.record(Event{Kind: EventReconnected})
		x.OnReconnected()
	}
	cb.OnDisconnectedWithReason = func(reason lksdk.DisconnectionReason) {
		c.record(Event{Kind: EventDisconnected, Detail: c.Room.DisconnectReason().String() + ": " + string(reason)})
		x.OnDisconnectedWithReason(reason)
	}
	cb.OnDisconnected = func() { x.OnDisconnected() }
	return cb
}
