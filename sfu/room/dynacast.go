package room

import (
	"strings"
	"time"

	"github.com/livekit/protocol/livekit"
)

// downgradeHold delays telling a publisher to stop a layer, so a subscriber resizing its
// window or briefly hiding a tab does not make the publisher stop and restart encoding.
const downgradeHold = 3 * time.Second

// dynacast tells the publisher of a video track which simulcast qualities somebody watches,
// so that unwatched layers are neither encoded nor sent: on a rural uplink of 1-3 Mbps the
// 1.7 Mbps HIGH layer nobody looks at is what starves the rest. State is guarded by the
// track's mutex.
type dynacast struct {
	sent    []bool // enabled per quality (LOW, MEDIUM, HIGH) as last sent; nil: nothing sent
	pending *time.Timer
}

// wantedLayer is the highest layer any subscriber of t wants; -1 when nobody watches.
func (r *Room) wantedLayer(t *PublishedTrack) int {
	sid := t.SID()
	max := -1
	for _, p := range r.participantList() {
		p.mu.Lock()
		s := p.subscribed[sid]
		if s != nil && !s.paused && s.maxLayer > max {
			max = s.maxLayer
		}
		p.mu.Unlock()
	}
	return max
}

// updateDynacast recomputes which qualities of t are watched and tells the publisher:
// at once when more is needed, after downgradeHold when less is.
func (r *Room) updateDynacast(t *PublishedTrack) {
	if t.kind() != livekit.TrackType_VIDEO {
		return
	}
	want := r.wantedLayer(t)
	info := t.Info()
	enabled := make([]bool, 3)
	for _, l := range info.Layers { //nolint:staticcheck // LiveKit protocol: clients read TrackInfo.layers
		q := qualityToLayer(l.Quality)
		if !info.Simulcast { //nolint:staticcheck // LiveKit protocol: clients read TrackInfo.simulcast
			// One stream: on while anybody watches.
			enabled[q] = want >= 0
		} else {
			enabled[q] = want >= 0 && q <= want
		}
	}
	t.mu.Lock()
	if t.dyn.sent != nil && equalBools(t.dyn.sent, enabled) {
		if t.dyn.pending != nil {
			t.dyn.pending.Stop()
			t.dyn.pending = nil
		}
		t.mu.Unlock()
		return
	}
	upgrade := t.dyn.sent == nil
	for q := range enabled {
		if enabled[q] && (t.dyn.sent == nil || !t.dyn.sent[q]) {
			upgrade = true
		}
	}
	if !upgrade {
		if t.dyn.pending == nil {
			t.dyn.pending = time.AfterFunc(downgradeHold, func() {
				t.mu.Lock()
				t.dyn.pending = nil
				t.mu.Unlock()
				r.sendDynacast(t, true)
			})
		}
		t.mu.Unlock()
		return
	}
	if t.dyn.pending != nil {
		t.dyn.pending.Stop()
		t.dyn.pending = nil
	}
	t.mu.Unlock()
	r.sendDynacast(t, false)
}

// sendDynacast sends the current wanted qualities to the publisher. After a held
// downgrade (recheck), it recomputes first, since subscribers may have come back.
func (r *Room) sendDynacast(t *PublishedTrack, recheck bool) {
	want := r.wantedLayer(t)
	info := t.Info()
	enabled := make([]bool, 3)
	var qualities []*livekit.SubscribedQuality
	for _, l := range info.Layers { //nolint:staticcheck // LiveKit protocol: clients read TrackInfo.layers
		q := qualityToLayer(l.Quality)
		on := want >= 0 && (!info.Simulcast || q <= want) //nolint:staticcheck // LiveKit protocol: clients read TrackInfo.simulcast
		enabled[q] = on
		qualities = append(qualities, &livekit.SubscribedQuality{Quality: l.Quality, Enabled: on})
	}
	t.mu.Lock()
	if recheck && t.dyn.sent != nil && equalBools(t.dyn.sent, enabled) {
		t.mu.Unlock()
		return
	}
	t.dyn.sent = enabled
	t.mu.Unlock()
	codec := strings.ToLower(strings.TrimPrefix(strings.ToLower(info.MimeType), "video/"))
	t.owner.logger.Debug("subscribed qualities", "track", info.Sid, "wanted_layer", want)
	t.owner.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_SubscribedQualityUpdate{
		SubscribedQualityUpdate: &livekit.SubscribedQualityUpdate{
			TrackSid:            info.Sid,
			SubscribedQualities: qualities, //nolint:staticcheck // LiveKit protocol: older clients read it
			SubscribedCodecs:    []*livekit.SubscribedCodec{{Codec: codec, Qualities: qualities}},
		},
	}})
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
