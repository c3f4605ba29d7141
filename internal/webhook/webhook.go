// Package webhook sends LiveKit-format webhooks: room_started, room_finished,
// participant_joined, participant_left, track_published, track_unpublished, and
// egress_started / egress_updated / egress_ended for recordings. Events are
// livekit.WebhookEvent messages in protojson, POSTed with Content-Type
// application/webhook+json and an Authorization header holding a LiveKit access token
// whose sha256 claim is the body's SHA-256 -- exactly what LiveKit sends, produced by
// github.com/livekit/protocol/webhook -- so existing receivers
// (webhook.ReceiveWebhookEvent in the Go SDK, WebhookReceiver in the JS SDK, ...) verify
// them with the same API key and secret.
//
// Delivery is LiveKit's: events are queued per room (or per recording), retried briefly,
// and dropped when they get too old. Webhooks notify; the durable channel for statistics is
// the classroom outbox.
package webhook

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/utils/guid"
	lkwebhook "github.com/livekit/protocol/webhook"
	"google.golang.org/protobuf/proto"

	"github.com/sanke-edu/sanke/sfu/room"
)

// Recording event names (LiveKit calls recordings "egress").
const (
	EventRecordingStarted = lkwebhook.EventEgressStarted
	EventRecordingUpdated = lkwebhook.EventEgressUpdated
	EventRecordingEnded   = lkwebhook.EventEgressEnded
)

// RecordingListener is told about recordings. The recorder calls it; Notifier and the metrics
// collector implement it.
type RecordingListener interface {
	RecordingStarted(info *livekit.EgressInfo)
	RecordingUpdated(info *livekit.EgressInfo)
	RecordingEnded(info *livekit.EgressInfo)
}

// Config configures the notifier.
type Config struct {
	// URLs receive every event.
	URLs []string
	// APIKey and APISecret sign the events; receivers need the same pair.
	APIKey, APISecret string
	// Events, when not empty, limits the events sent (e.g. participant_joined,
	// participant_left).
	Events []string
	Logger *slog.Logger
}

// Notifier sends webhooks. It is a room.Observer and a RecordingListener.
type Notifier struct {
	notifiers []*lkwebhook.ResourceURLNotifier
	logger    *slog.Logger
}

// New creates a notifier for the configured URLs.
func New(cfg Config) (*Notifier, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("webhook: no URL")
	}
	if cfg.APIKey == "" || cfg.APISecret == "" {
		return nil, errors.New("webhook: an API key and secret are needed to sign webhooks")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// The library records its dispatch statistics in Prometheus collectors that must exist.
	lkwebhook.InitWebhookStats(nil)
	n := &Notifier{logger: cfg.Logger}
	for _, u := range cfg.URLs {
		n.notifiers = append(n.notifiers, lkwebhook.NewResourceURLNotifier(lkwebhook.ResourceURLNotifierParams{
			URL:          u,
			APIKey:       cfg.APIKey,
			APISecret:    cfg.APISecret,
			FilterParams: lkwebhook.FilterParams{IncludeEvents: cfg.Events},
		}))
	}
	return n, nil
}

// OnRoomEvent implements room.Observer.
func (n *Notifier) OnRoomEvent(e room.Event) {
	ev := &livekit.WebhookEvent{Event: string(e.Type), Room: e.Room, Track: e.Track}
	if e.Participant != nil {
		p := proto.Clone(e.Participant).(*livekit.ParticipantInfo)
		if e.Type == room.EventParticipantLeft {
			p.DisconnectReason = e.Reason
		}
		ev.Participant = p
	}
	n.send(ev, e.Time)
}

// RecordingStarted sends egress_started.
func (n *Notifier) RecordingStarted(info *livekit.EgressInfo) {
	n.send(&livekit.WebhookEvent{Event: EventRecordingStarted, EgressInfo: info}, time.Time{})
}

// RecordingUpdated sends egress_updated.
func (n *Notifier) RecordingUpdated(info *livekit.EgressInfo) {
	n.send(&livekit.WebhookEvent{Event: EventRecordingUpdated, EgressInfo: info}, time.Time{})
}

// RecordingEnded sends egress_ended.
func (n *Notifier) RecordingEnded(info *livekit.EgressInfo) {
	n.send(&livekit.WebhookEvent{Event: EventRecordingEnded, EgressInfo: info}, time.Time{})
}

func (n *Notifier) send(ev *livekit.WebhookEvent, at time.Time) {
	if at.IsZero() {
		at = time.Now()
	}
	ev.Id = guid.New("EV_")
	ev.CreatedAt = at.Unix()
	for _, u := range n.notifiers {
		// Each notifier queues its own copy: the library sets fields while sending.
		if err := u.QueueNotify(context.Background(), proto.Clone(ev).(*livekit.WebhookEvent)); err != nil {
			n.logger.Warn("webhook not queued", "event", ev.Event, "err", err)
		}
	}
}

// Stop sends what is queued (force: drops it) and stops.
func (n *Notifier) Stop(force bool) {
	for _, u := range n.notifiers {
		u.Stop(force)
	}
}

// Recordings fans recording events out to several listeners (nil ones are skipped).
type Recordings []RecordingListener

// RecordingStarted tells every listener.
func (rs Recordings) RecordingStarted(info *livekit.EgressInfo) {
	for _, l := range rs {
		if l != nil {
			l.RecordingStarted(info)
		}
	}
}

// RecordingUpdated tells every listener.
func (rs Recordings) RecordingUpdated(info *livekit.EgressInfo) {
	for _, l := range rs {
		if l != nil {
			l.RecordingUpdated(info)
		}
	}
}

// RecordingEnded tells every listener.
func (rs Recordings) RecordingEnded(info *livekit.EgressInfo) {
	for _, l := range rs {
		if l != nil {
			l.RecordingEnded(info)
		}
	}
}
