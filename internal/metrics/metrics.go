// Package metrics exposes Sanke's Prometheus metrics at /metrics: rooms, participants by
// role, published tracks, forwarded packets, bytes and bitrate, retransmissions, NACKs and
// PLIs, subscriber loss / RTT / jitter distributions, recordings and the platform outbox
// backlog. Room figures are gathered from the room manager at scrape time; counters are made
// monotonic by accumulating the increase of every down track between scrapes.
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sanke-edu/sanke/classroom"
	"github.com/sanke-edu/sanke/classroom/outbox"
	"github.com/sanke-edu/sanke/sfu"
	"github.com/sanke-edu/sanke/sfu/room"
)

// Source is what metrics are gathered from (room.Manager implements it).
type Source interface {
	RoomNames() []string
	Stats(roomName string) ([]room.ParticipantStats, error)
}

// DataDropper is implemented by a Source that drops data packets for participants that do
// not read them fast enough (room.Manager does): DataDropped counts them since start.
type DataDropper interface {
	DataDropped() uint64
}

// Backlog reports the platform outbox (classroom's outbox implements it).
type Backlog interface {
	Stats(ctx context.Context) (outbox.Stats, error)
}

// Collector is a prometheus.Collector over the room manager. It also counts recordings
// (it implements webhook.RecordingListener).
type Collector struct {
	src Source

	mu       sync.Mutex
	backlog  Backlog
	last     map[[2]string]down // (subscriber SID, track SID) -> counters at the last scrape
	totals   down
	lastAt   time.Time
	lastSent uint64 // totals.bytes at the last scrape, for the bitrate
	bitrate  float64
	active   map[string]bool // recording IDs in progress
	started  float64
	ended    map[string]float64 // by status

	rooms, participants, tracks, subscriptions                 *prometheus.Desc
	packets, bytes, retransmits, nacks, plis, bitrateDesc      *prometheus.Desc
	loss, rtt, jitter                                          *prometheus.Desc
	videoLayers, downlinkCapped, rtxLimited, dataDropped       *prometheus.Desc
	recActive, recStarted, recEnded                            *prometheus.Desc
	outboxPending, outboxOldest, outboxDelivered, outboxFailed *prometheus.Desc
}

type down struct {
	packets, bytes, retransmits, nacks, plis, rtxLimited uint64
}

// New creates a collector over src.
func New(src Source) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("sanke_"+name, help, labels, nil)
	}
	return &Collector{
		src: src, last: map[[2]string]down{}, active: map[string]bool{}, ended: map[string]float64{},
		rooms:           d("rooms", "Active rooms."),
		participants:    d("participants", "Participants in rooms, by classroom role (participant when none, other when not a known role).", "role"),
		tracks:          d("published_tracks", "Published tracks.", "kind", "source"),
		subscriptions:   d("subscriptions", "Tracks being forwarded to subscribers."),
		packets:         d("forwarded_packets_total", "RTP packets forwarded to subscribers (retransmissions excluded)."),
		bytes:           d("forwarded_bytes_total", "Payload bytes forwarded to subscribers."),
		retransmits:     d("retransmitted_packets_total", "Packets sent again in answer to NACKs."),
		rtxLimited:      d("retransmissions_refused_total", "NACKs left unanswered: the packet was sent again 3 times already, or the subscriber's retransmission budget was spent."),
		nacks:           d("nacks_total", "Sequence numbers subscribers reported lost (NACK)."),
		plis:            d("plis_total", "Picture loss indications from subscribers."),
		bitrateDesc:     d("forwarded_bitrate_bps", "Forwarded bitrate since the previous scrape, bits per second."),
		loss:            d("subscriber_loss_ratio", "Fraction of packets lost per subscription, from the last receiver report."),
		rtt:             d("subscriber_rtt_seconds", "Round-trip time per subscription, from RTCP."),
		jitter:          d("subscriber_jitter_seconds", "Interarrival jitter per subscription, from the last receiver report."),
		videoLayers:     d("video_subscriptions", "Video subscriptions by the simulcast layer being forwarded (none: paused or waiting for a keyframe).", "layer"),
		downlinkCapped:  d("video_subscriptions_downlink_capped", "Video subscriptions kept below the top layer because the subscriber's downlink does not carry more (rtc.downlink_control)."),
		recActive:       d("recordings_active", "Recordings in progress."),
		recStarted:      d("recordings_started_total", "Recordings started."),
		recEnded:        d("recordings_ended_total", "Recordings ended, by final status.", "status"),
		dataDropped:     d("data_dropped_total", "Data packets not sent to participants that did not read their data channels fast enough."),
		outboxPending:   d("outbox_pending", "Messages (session records, daily reports) waiting for the platform to accept them."),
		outboxOldest:    d("outbox_oldest_pending_seconds", "Age of the oldest message waiting for the platform."),
		outboxDelivered: d("outbox_delivered", "Messages the platform has accepted (stored count)."),
		outboxFailed:    d("outbox_failed_attempts_total", "Failed delivery attempts since start."),
	}
}

// SetBacklog makes the collector report an outbox.
func (c *Collector) SetBacklog(b Backlog) {
	c.mu.Lock()
	c.backlog = b
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rooms, c.participants, c.tracks, c.subscriptions, c.packets, c.bytes,
		c.retransmits, c.rtxLimited, c.nacks, c.plis, c.bitrateDesc, c.loss, c.rtt, c.jitter, c.videoLayers, c.downlinkCapped,
		c.dataDropped, c.recActive, c.recStarted, c.recEnded,
		c.outboxPending, c.outboxOldest, c.outboxDelivered, c.outboxFailed} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := c.src.RoomNames()
	roles := map[string]float64{}
	type trackKey struct{ kind, source string }
	tracks := map[trackKey]float64{}
	var subs, capped float64
	layers := map[string]float64{"none": 0, "low": 0, "medium": 0, "high": 0}
	lossH := newHist([]float64{0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5})
	rttH := newHist([]float64{0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6})
	jitterH := newHist([]float64{0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2})
	seen := map[[2]string]down{}
	for _, name := range names {
		stats, err := c.src.Stats(name)
		if err != nil {
			continue
		}
		for _, p := range stats {
			roles[roleLabel(p.Info)]++
			for _, t := range p.Info.GetTracks() {
				tracks[trackKey{kindName(t.GetType()), sourceName(t.GetSource())}]++
			}
			for _, s := range p.Subscriptions {
				subs++
				key := [2]string{s.SubscriberSID, s.TrackSID}
				cur := down{s.Packets, s.Bytes, s.Retransmits, s.NACKs, s.PLIs, s.RtxLimited}
				prev := c.last[key]
				if cur.packets < prev.packets || cur.bytes < prev.bytes {
					prev = down{}
				}
				c.totals.packets += cur.packets - prev.packets
				c.totals.bytes += cur.bytes - prev.bytes
				c.totals.retransmits += cur.retransmits - min(prev.retransmits, cur.retransmits)
				c.totals.nacks += cur.nacks - min(prev.nacks, cur.nacks)
				c.totals.plis += cur.plis - min(prev.plis, cur.plis)
				c.totals.rtxLimited += cur.rtxLimited - min(prev.rtxLimited, cur.rtxLimited)
				seen[key] = cur
				if s.Kind == livekit.TrackType_VIDEO {
					layers[layerName(s.CurrentLayer)]++
					if s.CapLayer < sfu.LayerHigh {
						capped++
					}
				}
				if s.Kind == livekit.TrackType_VIDEO || s.Kind == livekit.TrackType_AUDIO {
					lossH.observe(s.FractionLost)
					jitterH.observe(s.Jitter.Seconds())
					if s.RTT > 0 {
						rttH.observe(s.RTT.Seconds())
					}
				}
			}
		}
	}
	c.last = seen
	now := time.Now()
	if !c.lastAt.IsZero() {
		if dt := now.Sub(c.lastAt).Seconds(); dt > 0 {
			c.bitrate = float64(c.totals.bytes-c.lastSent) * 8 / dt
		}
	}
	c.lastAt, c.lastSent = now, c.totals.bytes

	ch <- prometheus.MustNewConstMetric(c.rooms, prometheus.GaugeValue, float64(len(names)))
	for role, n := range roles {
		ch <- prometheus.MustNewConstMetric(c.participants, prometheus.GaugeValue, n, role)
	}
	for k, n := range tracks {
		ch <- prometheus.MustNewConstMetric(c.tracks, prometheus.GaugeValue, n, k.kind, k.source)
	}
	ch <- prometheus.MustNewConstMetric(c.subscriptions, prometheus.GaugeValue, subs)
	ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(c.totals.packets))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(c.totals.bytes))
	ch <- prometheus.MustNewConstMetric(c.retransmits, prometheus.CounterValue, float64(c.totals.retransmits))
	ch <- prometheus.MustNewConstMetric(c.nacks, prometheus.CounterValue, float64(c.totals.nacks))
	ch <- prometheus.MustNewConstMetric(c.plis, prometheus.CounterValue, float64(c.totals.plis))
	ch <- prometheus.MustNewConstMetric(c.rtxLimited, prometheus.CounterValue, float64(c.totals.rtxLimited))
	ch <- prometheus.MustNewConstMetric(c.bitrateDesc, prometheus.GaugeValue, c.bitrate)
	for layer, n := range layers {
		ch <- prometheus.MustNewConstMetric(c.videoLayers, prometheus.GaugeValue, n, layer)
	}
	ch <- prometheus.MustNewConstMetric(c.downlinkCapped, prometheus.GaugeValue, capped)
	if dd, ok := c.src.(DataDropper); ok {
		ch <- prometheus.MustNewConstMetric(c.dataDropped, prometheus.CounterValue, float64(dd.DataDropped()))
	}
	ch <- lossH.metric(c.loss)
	ch <- rttH.metric(c.rtt)
	ch <- jitterH.metric(c.jitter)
	ch <- prometheus.MustNewConstMetric(c.recActive, prometheus.GaugeValue, float64(len(c.active)))
	ch <- prometheus.MustNewConstMetric(c.recStarted, prometheus.CounterValue, c.started)
	for status, n := range c.ended {
		ch <- prometheus.MustNewConstMetric(c.recEnded, prometheus.CounterValue, n, status)
	}
	if c.backlog != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := c.backlog.Stats(ctx)
		cancel()
		if err == nil {
			ch <- prometheus.MustNewConstMetric(c.outboxPending, prometheus.GaugeValue, float64(st.Pending))
			age := 0.0
			if st.OldestPending != nil {
				age = now.Sub(*st.OldestPending).Seconds()
			}
			ch <- prometheus.MustNewConstMetric(c.outboxOldest, prometheus.GaugeValue, age)
			ch <- prometheus.MustNewConstMetric(c.outboxDelivered, prometheus.GaugeValue, float64(st.Delivered))
			ch <- prometheus.MustNewConstMetric(c.outboxFailed, prometheus.CounterValue, float64(st.FailuresSinceStart))
		}
	}
}

// roleLabel is the role label of a participant: its classroom role when it is a known one,
// "participant" when it has none and "other" for anything else, so that the number of
// series stays bounded whatever an attribute says.
func roleLabel(p *livekit.ParticipantInfo) string {
	attr := p.GetAttributes()[classroom.AttrRole]
	if attr == "" {
		return "participant"
	}
	if role, ok := classroom.ParseRole(attr); ok {
		return string(role)
	}
	return "other"
}

// RecordingStarted counts a recording (webhook.RecordingListener).
func (c *Collector) RecordingStarted(info *livekit.EgressInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.active[info.GetEgressId()] {
		c.active[info.GetEgressId()] = true
		c.started++
	}
}

// RecordingUpdated changes nothing.
func (c *Collector) RecordingUpdated(*livekit.EgressInfo) {}

// RecordingEnded counts the end of a recording by status (EGRESS_COMPLETE, EGRESS_FAILED ...).
func (c *Collector) RecordingEnded(info *livekit.EgressInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.active, info.GetEgressId())
	c.ended[info.GetStatus().String()]++
}

// Handler serves the collector and what the default Prometheus registry holds: Go runtime
// and process metrics, and LiveKit's webhook dispatch counters.
func Handler(c *Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	return promhttp.HandlerFor(prometheus.Gatherers{reg, prometheus.DefaultGatherer}, promhttp.HandlerOpts{})
}

// hist builds a constant histogram at scrape time.
type hist struct {
	bounds []float64
	counts []uint64
	n      uint64
	sum    float64
}

func newHist(bounds []float64) *hist {
	return &hist{bounds: bounds, counts: make([]uint64, len(bounds))}
}

func (h *hist) observe(v float64) {
	h.n++
	h.sum += v
	for i, b := range h.bounds {
		if v <= b {
			h.counts[i]++
		}
	}
}

func (h *hist) metric(d *prometheus.Desc) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.bounds))
	for i, b := range h.bounds {
		buckets[b] = h.counts[i]
	}
	return prometheus.MustNewConstHistogram(d, h.n, h.sum, buckets)
}

func kindName(k livekit.TrackType) string {
	switch k {
	case livekit.TrackType_AUDIO:
		return "audio"
	case livekit.TrackType_VIDEO:
		return "video"
	case livekit.TrackType_DATA:
		return "data"
	}
	return "unknown"
}

func sourceName(s livekit.TrackSource) string {
	switch s {
	case livekit.TrackSource_CAMERA:
		return "camera"
	case livekit.TrackSource_MICROPHONE:
		return "microphone"
	case livekit.TrackSource_SCREEN_SHARE:
		return "screen_share"
	case livekit.TrackSource_SCREEN_SHARE_AUDIO:
		return "screen_share_audio"
	}
	return "unknown"
}

// layerName names a simulcast layer for the video_subscriptions label.
func layerName(layer int) string {
	switch layer {
	case sfu.LayerLow:
		return "low"
	case sfu.LayerMedium:
		return "medium"
	case sfu.LayerHigh:
		return "high"
	}
	return "none"
}
