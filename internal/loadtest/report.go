package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pion/webrtc/v4"
)

// Result is what a run measured. Window figures cover the measurement window only; join
// figures cover the ramp-up. It marshals to the --json output.
type Result struct {
	Config    ConfigSummary    `json:"config"`
	StartedAt time.Time        `json:"started_at"`
	WindowS   float64          `json:"window_s"`
	Tracks    TrackResult      `json:"tracks"`
	Received  []LayerResult    `json:"received"`
	Published []PublishedLayer `json:"published"`
	Loss      LossResult       `json:"loss"`
	Jitter    []JitterResult   `json:"jitter"`
	Latency   []LatencyResult  `json:"latency"`           // publish -> read by the subscriber
	ToSocket  []LatencyResult  `json:"latency_to_socket"` // publish -> in the subscriber's socket
	Join      JoinResult       `json:"join"`
	Errors    ErrorSummary     `json:"errors"`
	Server    *ServerResult    `json:"server,omitempty"`
	Generator *ProcessResult   `json:"generator,omitempty"`
	Floor     *FloorResult     `json:"floor,omitempty"`
	Host      *HostResult      `json:"host,omitempty"`
	Timeline  []TimelineEntry  `json:"timeline,omitempty"` // each second of the window
}

// HostResult is the whole machine during the window (from /proc/stat): on a shared host,
// Other shows how much CPU processes other than the server and the generator took.
type HostResult struct {
	CPUs       int     `json:"cpus"`
	BusyPct    float64 `json:"busy_pct"`    // of all CPUs together
	SoftIRQPct float64 `json:"softirq_pct"` // of all CPUs together
	OtherCores float64 `json:"other_cores"` // cores used by everything but server and generator
}

// ConfigSummary echoes the run's parameters.
type ConfigSummary struct {
	URL               string      `json:"url"`
	Room              string      `json:"room"`
	VideoPublishers   int         `json:"video_publishers"`
	AudioPublishers   int         `json:"audio_publishers"`
	Subscribers       int         `json:"subscribers"`
	Layout            Layout      `json:"layout"`
	DurationS         float64     `json:"duration_s"`
	RampUpS           float64     `json:"ramp_up_s"`
	Layers            []LayerSpec `json:"video_layers"`
	KeyframeIntervalS float64     `json:"keyframe_interval_s"`
	AudioBitrate      int         `json:"audio_bitrate"`
	SRTP              string      `json:"srtp"`
	ICETransport      string      `json:"ice_transport"` // subscribers' ICE transport: udp or tcp
	Pacing            float64     `json:"pacing"`        // negative: no pacing
	Dynacast          bool        `json:"dynacast"`
}

func summarize(c Config) ConfigSummary {
	srtp := c.SRTP
	if srtp == "" {
		srtp = SRTPAny
	}
	ice := c.ICETransport
	if ice == "" {
		ice = ICETransportUDP
	}
	return ConfigSummary{
		URL: c.URL, Room: c.Room, VideoPublishers: c.VideoPublishers, AudioPublishers: c.AudioPublishers,
		Subscribers: c.Subscribers, Layout: c.Layout, DurationS: c.Duration.Seconds(), RampUpS: c.RampUp.Seconds(),
		Layers: c.Layers, KeyframeIntervalS: c.KeyframeInterval.Seconds(), AudioBitrate: c.AudioBitrate, SRTP: srtp,
		ICETransport: ice, Pacing: c.Pacing, Dynacast: !c.IgnoreDynacast,
	}
}

// TrackResult counts subscriptions that delivered media (over the whole run).
type TrackResult struct {
	PerSubscriber       int `json:"per_subscriber"`       // tracks published
	Expected            int `json:"expected"`             // subscribers x tracks
	Received            int `json:"received"`             // (subscriber, track) pairs with media
	SubscribersJoined   int `json:"subscribers_joined"`   // got a join response
	SubscribersComplete int `json:"subscribers_complete"` // received every track
	Unexpected          int `json:"unexpected"`           // tracks the generator did not publish
	// Subscribers whose selected ICE candidate pair was UDP or TCP at the window's end.
	OverUDP int `json:"subscribers_over_udp"`
	OverTCP int `json:"subscribers_over_tcp"`
}

// LayerResult is what subscribers received of one kind and layer during the window.
type LayerResult struct {
	Kind             string  `json:"kind"`
	Layer            string  `json:"layer"`
	Streams          int     `json:"streams"` // subscriber tracks that received this layer
	Packets          uint64  `json:"packets"`
	Bytes            uint64  `json:"bytes"`
	PacketsPerS      float64 `json:"packets_per_s"`
	BitrateBps       float64 `json:"bitrate_bps"`          // all streams together
	StreamBitrateBps float64 `json:"stream_bitrate_bps"`   // per stream
	StreamPacketsPS  float64 `json:"stream_packets_per_s"` // per stream
}

// PublishedLayer is what the publishers sent of one kind and layer during the window, per
// track on average, plus the feedback they got.
type PublishedLayer struct {
	Kind       string  `json:"kind"`
	Layer      string  `json:"layer"`
	Tracks     int     `json:"tracks"`
	Sending    int     `json:"sending"` // tracks sending this layer at the window's end (dynacast)
	Packets    uint64  `json:"packets"`
	BitrateBps float64 `json:"bitrate_bps"` // per track
	Keyframes  uint64  `json:"keyframes"`
	PLIs       uint64  `json:"plis"`
	FIRs       uint64  `json:"firs"`
	NACKs      uint64  `json:"nacked_packets"`
	// Keyframe requests over the whole run (most come while subscribers join).
	RunPLIs uint64 `json:"run_plis"`
	RunFIRs uint64 `json:"run_firs"`
}

// LossResult is sequence-number accounting of what subscribers received.
type LossResult struct {
	Expected        uint64  `json:"expected"`
	Received        uint64  `json:"received"`
	Lost            uint64  `json:"lost"`
	LossPct         float64 `json:"loss_pct"`
	Gaps            uint64  `json:"gaps"`
	Duplicates      uint64  `json:"duplicates"`
	Late            uint64  `json:"late"`
	Corrupt         uint64  `json:"corrupt"`
	Foreign         uint64  `json:"foreign"`
	Padding         uint64  `json:"padding"` // padding-only packets (bandwidth probes), not media
	Misrouted       uint64  `json:"misrouted"`
	StreamsWithLoss int     `json:"streams_with_loss"`
	RunLost         uint64  `json:"run_lost"` // the whole run, joins included
	RunGaps         uint64  `json:"run_gaps"`
	RunCorrupt      uint64  `json:"run_corrupt"`
}

// JitterResult is the RFC 3550 interarrival jitter at the end of the window, over streams.
type JitterResult struct {
	Kind    string  `json:"kind"`
	Streams int     `json:"streams"`
	MeanMs  float64 `json:"mean_ms"`
	MaxMs   float64 `json:"max_ms"`
}

// LatencyResult is publish -> receive time during the window.
type LatencyResult struct {
	Kind    string  `json:"kind"`
	Samples uint64  `json:"samples"`
	MeanMs  float64 `json:"mean_ms"`
	P50Ms   float64 `json:"p50_ms"`
	P95Ms   float64 `json:"p95_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
}

// Percentiles summarizes durations.
type Percentiles struct {
	N     int     `json:"n"`
	P50Ms float64 `json:"p50_ms"`
	P95Ms float64 `json:"p95_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// JoinResult times subscriber joins from the websocket dial.
type JoinResult struct {
	Attempted  int         `json:"attempted"`
	Joined     int         `json:"joined"`
	Failed     int         `json:"failed"`
	Signal     Percentiles `json:"join_response"` // websocket open -> join response
	FirstMedia Percentiles `json:"first_media"`   // websocket open -> first media packet
	AllTracks  Percentiles `json:"all_tracks"`    // websocket open -> a packet of every track
}

// ErrorSummary counts errors by kind (join, signal, ice, negotiation, request, publish).
type ErrorSummary struct {
	Total   int            `json:"total"`
	ByKind  map[string]int `json:"by_kind"`
	Samples []string       `json:"samples,omitempty"`
}

// ServerResult is the server process during the window (from /proc).
type ServerResult struct {
	PID                 int     `json:"pid"`
	CPUSeconds          float64 `json:"cpu_s"`
	CPUPercent          float64 `json:"cpu_pct"` // of one core
	ForwardedPackets    uint64  `json:"forwarded_packets"`
	CPUUsPerPacket      float64 `json:"cpu_us_per_packet"`
	RatioToFloor        float64 `json:"ratio_to_floor,omitempty"`
	RSSBaselineKiB      int64   `json:"rss_baseline_kib"` // publishers up, no subscribers
	RSSWindowMaxKiB     int64   `json:"rss_window_max_kib"`
	PeakRSSKiB          int64   `json:"peak_rss_kib"` // VmHWM
	RSSPerSubscriberKiB float64 `json:"rss_per_subscriber_kib"`
	UDPDrops            uint64  `json:"udp_drops"`
	Error               string  `json:"error,omitempty"`
}

// ProcessResult is the generator's own cost during the window.
type ProcessResult struct {
	CPUSeconds float64 `json:"cpu_s"`
	CPUPercent float64 `json:"cpu_pct"`
	PeakRSSKiB int64   `json:"peak_rss_kib"`
	UDPDrops   uint64  `json:"udp_drops"`
}

// collect fills the media figures of res from every stream and publisher.
func (r *runner) collect(res *Result, window time.Duration) {
	secs := window.Seconds()
	res.WindowS = secs
	layerName := func(video bool, i int) string {
		if !video {
			return "-"
		}
		if i < len(r.cfg.Layers) {
			return r.cfg.Layers[i].RID
		}
		return fmt.Sprint(i)
	}

	type agg struct {
		streams int
		pkts    uint64
		bytes   uint64
	}
	recv := map[[2]int]*agg{} // (video?1:0, layer)
	var win, run counters
	lat := map[string]*histogram{"all": {}, "video": {}, "audio": {}}
	sock := map[string]*histogram{"all": {}, "video": {}, "audio": {}}
	jit := map[string]*JitterResult{"video": {Kind: "video"}, "audio": {Kind: "audio"}}
	var firstMedia, allTracks, signal []time.Duration

	res.Tracks.PerSubscriber = r.expected
	res.Tracks.Expected = r.expected * len(r.subs)
	res.Join.Attempted = len(r.subs)
	for _, s := range r.subs {
		if s.failed.Load() {
			res.Join.Failed++
		}
		if j := s.joined.Load(); j != 0 {
			res.Tracks.SubscribersJoined++
			res.Join.Joined++
			signal = append(signal, time.Duration(j-s.opened))
		}
		if f := s.firstMedia.Load(); f != 0 {
			firstMedia = append(firstMedia, time.Duration(f-s.opened))
		}
		if a := s.allTracks.Load(); a != 0 {
			res.Tracks.SubscribersComplete++
			allTracks = append(allTracks, time.Duration(a-s.opened))
		}
		if pair := s.selectedPair(); pair != nil {
			switch pair.Local.Protocol {
			case webrtc.ICEProtocolUDP:
				res.Tracks.OverUDP++
			case webrtc.ICEProtocolTCP:
				res.Tracks.OverTCP++
			}
		}
		res.Tracks.Received += s.tracksReceived()
		res.Tracks.Unexpected += int(s.unexpected.Load())
		for _, st := range s.streamList() {
			c, h, k, j := st.window()
			tot, _ := st.totals()
			win.add(c)
			run.add(tot)
			if c.Lost() > 0 {
				res.Loss.StreamsWithLoss++
			}
			kind := "audio"
			v := 0
			if st.video {
				kind, v = "video", 1
			}
			lat["all"].merge(h)
			lat[kind].merge(h)
			sock["all"].merge(k)
			sock[kind].merge(k)
			if c.Packets > 0 {
				jr := jit[kind]
				jr.Streams++
				jr.MeanMs += j
				jr.MaxMs = max(jr.MaxMs, j)
			}
			for i := range maxLayers {
				if c.LayerPkts[i] == 0 {
					continue
				}
				a := recv[[2]int{v, i}]
				if a == nil {
					a = &agg{}
					recv[[2]int{v, i}] = a
				}
				a.streams++
				a.pkts += c.LayerPkts[i]
				a.bytes += c.LayerBytes[i]
			}
		}
	}

	keys := make([][2]int, 0, len(recv))
	for k := range recv {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]int) int {
		if a[0] != b[0] {
			return b[0] - a[0] // video first
		}
		return a[1] - b[1]
	})
	for _, k := range keys {
		a := recv[k]
		lr := LayerResult{Kind: map[int]string{0: "audio", 1: "video"}[k[0]], Layer: layerName(k[0] == 1, k[1]),
			Streams: a.streams, Packets: a.pkts, Bytes: a.bytes}
		if secs > 0 {
			lr.PacketsPerS = float64(a.pkts) / secs
			lr.BitrateBps = float64(a.bytes) * 8 / secs
			lr.StreamBitrateBps = lr.BitrateBps / float64(a.streams)
			lr.StreamPacketsPS = lr.PacketsPerS / float64(a.streams)
		}
		res.Received = append(res.Received, lr)
	}

	res.Loss.Expected, res.Loss.Received, res.Loss.Lost = win.Expected, win.Received, win.Lost()
	if win.Expected > 0 {
		res.Loss.LossPct = 100 * float64(win.Lost()) / float64(win.Expected)
	}
	res.Loss.Gaps, res.Loss.Duplicates, res.Loss.Late = win.Gaps, win.Duplicates, win.Late
	res.Loss.Corrupt, res.Loss.Foreign, res.Loss.Misrouted = win.Corrupt, win.Foreign, win.Misrouted
	res.Loss.Padding = win.Padding
	res.Loss.RunLost, res.Loss.RunGaps, res.Loss.RunCorrupt = run.Lost(), run.Gaps, run.Corrupt
	if res.Server == nil && r.cfg.ServerPID > 0 {
		res.Server = &ServerResult{PID: r.cfg.ServerPID}
	}
	if res.Server != nil {
		res.Server.ForwardedPackets = win.Packets
	}

	for _, kind := range []string{"video", "audio"} {
		if jr := jit[kind]; jr.Streams > 0 {
			jr.MeanMs /= float64(jr.Streams)
			res.Jitter = append(res.Jitter, *jr)
		}
	}
	res.Latency = latencies(lat)
	res.ToSocket = latencies(sock)
	res.Join.Signal = percentiles(signal)
	res.Join.FirstMedia = percentiles(firstMedia)
	res.Join.AllTracks = percentiles(allTracks)

	type pagg struct {
		tracks  int
		sending int
		s       layerSnapshot
		run     layerSnapshot
	}
	pub := map[[2]int]*pagg{}
	for _, p := range r.pubs {
		v := 0
		if p.video {
			v = 1
		}
		tot := p.snapshot()
		for i, s := range p.window() {
			a := pub[[2]int{v, i}]
			if a == nil {
				a = &pagg{}
				pub[[2]int{v, i}] = a
			}
			a.tracks++
			if !p.layers[i].paused.Load() {
				a.sending++
			}
			a.s.Packets += s.Packets
			a.s.Bytes += s.Bytes
			a.s.Keyframes += s.Keyframes
			a.s.PLIs += s.PLIs
			a.s.FIRs += s.FIRs
			a.s.NACKs += s.NACKs
			a.run.PLIs += tot[i].PLIs
			a.run.FIRs += tot[i].FIRs
		}
	}
	pkeys := make([][2]int, 0, len(pub))
	for k := range pub {
		pkeys = append(pkeys, k)
	}
	slices.SortFunc(pkeys, func(a, b [2]int) int {
		if a[0] != b[0] {
			return b[0] - a[0]
		}
		return a[1] - b[1]
	})
	for _, k := range pkeys {
		a := pub[k]
		pl := PublishedLayer{Kind: map[int]string{0: "audio", 1: "video"}[k[0]], Layer: layerName(k[0] == 1, k[1]),
			Tracks: a.tracks, Sending: a.sending, Packets: a.s.Packets, Keyframes: a.s.Keyframes, PLIs: a.s.PLIs, FIRs: a.s.FIRs, NACKs: a.s.NACKs,
			RunPLIs: a.run.PLIs, RunFIRs: a.run.FIRs}
		if secs > 0 {
			pl.BitrateBps = float64(a.s.Bytes) * 8 / secs / float64(a.tracks)
		}
		res.Published = append(res.Published, pl)
	}
}

// latencies summarizes histograms by kind ("all", then "video" and "audio" when both exist).
func latencies(hs map[string]*histogram) []LatencyResult {
	var out []LatencyResult
	for _, kind := range []string{"all", "video", "audio"} {
		h := hs[kind]
		if h.n == 0 || (kind != "all" && h.n == hs["all"].n) {
			continue // a single kind repeats "all"
		}
		out = append(out, LatencyResult{
			Kind: kind, Samples: h.n, MeanMs: h.mean() / 1000, P50Ms: h.quantile(0.50) / 1000,
			P95Ms: h.quantile(0.95) / 1000, P99Ms: h.quantile(0.99) / 1000, MaxMs: float64(h.max) / 1000,
		})
	}
	return out
}

// setProcess fills the server, generator and host figures from /proc samples.
func (res *Result) setProcess(server *procWatch, baseline, s0, s1 procSample, srvMax int64, g0, g1 procSample,
	h0, h1 hostCPU, hostErr error, subscribers int) {
	secs := res.WindowS
	if hostErr == nil && h1.Total > h0.Total && h0.CPUs > 0 {
		total := float64(h1.Total - h0.Total)
		hr := &HostResult{CPUs: h0.CPUs, BusyPct: 100 * float64(h1.Busy-h0.Busy) / total,
			SoftIRQPct: 100 * float64(h1.SoftIRQ-h0.SoftIRQ) / total}
		cores := float64(h1.Busy-h0.Busy) / total * float64(h0.CPUs)
		cores -= (g1.CPU - g0.CPU).Seconds() / secs
		if server != nil {
			cores -= (s1.CPU - s0.CPU).Seconds() / secs
		}
		hr.OtherCores = max(cores, 0)
		res.Host = hr
	}
	if server != nil {
		sr := res.Server
		if sr == nil {
			sr = &ServerResult{}
			res.Server = sr
		}
		sr.PID = server.pid
		for _, e := range []error{baseline.Err, s0.Err, s1.Err} {
			if e != nil {
				sr.Error = e.Error()
			}
		}
		sr.CPUSeconds = (s1.CPU - s0.CPU).Seconds()
		if secs > 0 {
			sr.CPUPercent = 100 * sr.CPUSeconds / secs
		}
		if sr.ForwardedPackets > 0 {
			sr.CPUUsPerPacket = sr.CPUSeconds * 1e6 / float64(sr.ForwardedPackets)
		}
		if res.Floor != nil && res.Floor.TotalUs > 0 && sr.CPUUsPerPacket > 0 {
			sr.RatioToFloor = sr.CPUUsPerPacket / res.Floor.TotalUs
		}
		sr.RSSBaselineKiB = baseline.Mem.RSS
		sr.RSSWindowMaxKiB = max(srvMax, s1.Mem.RSS)
		sr.PeakRSSKiB = max(s1.Mem.Peak, sr.RSSWindowMaxKiB)
		if subscribers > 0 && baseline.Mem.RSS > 0 {
			sr.RSSPerSubscriberKiB = float64(sr.RSSWindowMaxKiB-baseline.Mem.RSS) / float64(subscribers)
		}
		sr.UDPDrops = s1.Drops - s0.Drops
	}
	if g1.Err == nil {
		gr := &ProcessResult{CPUSeconds: (g1.CPU - g0.CPU).Seconds(), PeakRSSKiB: g1.Mem.Peak, UDPDrops: g1.Drops - g0.Drops}
		if secs > 0 {
			gr.CPUPercent = 100 * gr.CPUSeconds / secs
		}
		res.Generator = gr
	}
}

// percentiles summarizes ds (nearest-rank).
func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(q*float64(len(s))+0.999999) - 1
		i = min(max(i, 0), len(s)-1)
		return float64(s[i]) / float64(time.Millisecond)
	}
	return Percentiles{N: len(s), P50Ms: at(0.50), P95Ms: at(0.95), P99Ms: at(0.99), MaxMs: float64(s[len(s)-1]) / float64(time.Millisecond)}
}

// WriteJSON writes the result as indented JSON.
func (res *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// WriteTable writes the human-readable report.
func (res *Result) WriteTable(w io.Writer) error {
	var b strings.Builder
	c := res.Config
	fmt.Fprintf(&b, "sanke loadtest: %s room %q: %d video publishers (VP8 simulcast %s), %d audio publishers, %d subscribers, layout %s\n",
		c.URL, c.Room, c.VideoPublishers, layerList(c.Layers), c.AudioPublishers, c.Subscribers, c.Layout)
	pacing := "frames sent as bursts"
	if c.Pacing > 0 {
		pacing = fmt.Sprintf("video paced at %.1fx its bitrate", c.Pacing)
	}
	ice := "subscribers over ICE-UDP"
	if c.ICETransport == ICETransportTCP {
		ice = "subscribers over ICE-TCP (publishers over UDP)"
	}
	fmt.Fprintf(&b, "window %.1f s after a %.1f s ramp-up; SRTP %s; %s; %s\n\n", res.WindowS, c.RampUpS, c.SRTP, pacing, ice)

	t := res.Tracks
	fmt.Fprintf(&b, "Tracks      expected %d (%d per subscriber), received %d; subscribers joined %d/%d, with every track %d",
		t.Expected, t.PerSubscriber, t.Received, t.SubscribersJoined, c.Subscribers, t.SubscribersComplete)
	if t.Unexpected > 0 {
		fmt.Fprintf(&b, "; %d unexpected tracks", t.Unexpected)
	}
	fmt.Fprintf(&b, "; connected over UDP %d, TCP %d", t.OverUDP, t.OverTCP)
	b.WriteString("\n\n")

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "Received\tlayer\tstreams\tpackets\tpkt/s\tbitrate\tper stream\tpkt/s/stream\t")
	for _, l := range res.Received {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%s\t%s\t%.1f\t\n", l.Kind, l.Layer, l.Streams, l.Packets, l.PacketsPerS,
			bps(l.BitrateBps), bps(l.StreamBitrateBps), l.StreamPacketsPS)
	}
	fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t\t")
	fmt.Fprintln(tw, "Published\tlayer\tsending/tracks\tpackets\tbitrate/track\tkeyframes\tPLI/FIR\tNACKed\tPLI/FIR (run)\t")
	for _, l := range res.Published {
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d\t%s\t%d\t%d/%d\t%d\t%d/%d\t\n", l.Kind, l.Layer, l.Sending, l.Tracks, l.Packets,
			bps(l.BitrateBps), l.Keyframes, l.PLIs, l.FIRs, l.NACKs, l.RunPLIs, l.RunFIRs)
	}
	_ = tw.Flush()

	l := res.Loss
	fmt.Fprintf(&b, "\nLoss        %d lost of %d expected (%.3f%%), %d gaps, %d streams with loss; duplicates %d, late %d, corrupt %d, foreign %d, misrouted %d, padding %d\n",
		l.Lost, l.Expected, l.LossPct, l.Gaps, l.StreamsWithLoss, l.Duplicates, l.Late, l.Corrupt, l.Foreign, l.Misrouted, l.Padding)
	fmt.Fprintf(&b, "            whole run (joins included): %d lost, %d gaps, %d corrupt\n", l.RunLost, l.RunGaps, l.RunCorrupt)
	for _, j := range res.Jitter {
		fmt.Fprintf(&b, "Jitter      %-5s mean %.3f ms, max %.3f ms over %d streams (RFC 3550, at window end)\n", j.Kind, j.MeanMs, j.MaxMs, j.Streams)
	}
	name := "Latency"
	if len(res.ToSocket) == 0 && len(res.Latency) > 0 {
		fmt.Fprintf(&b, "%-11s to the socket not measured (%s); to the reader only, pion's receive path included\n",
			name, noSocketReason(c.ICETransport))
		name = ""
	}
	for _, l := range []struct {
		what string
		xs   []LatencyResult
	}{{"publish -> subscriber's socket", res.ToSocket}, {"publish -> read by subscriber", res.Latency}} {
		for _, x := range l.xs {
			fmt.Fprintf(&b, "%-11s %-5s p50 %.3f ms, p95 %.3f ms, p99 %.3f ms, max %.3f ms, mean %.3f ms (%d packets, %s)\n",
				name, x.Kind, x.P50Ms, x.P95Ms, x.P99Ms, x.MaxMs, x.MeanMs, x.Samples, l.what)
			name = ""
		}
	}
	var timed uint64
	for _, e := range res.Timeline {
		timed += e.Timed
	}
	if len(res.Timeline) > 0 && timed == 0 {
		fmt.Fprintf(&b, "Stalls      not measured: no packet had a time at the socket (%s)\n", noSocketReason(c.ICETransport))
	} else if len(res.Timeline) > 0 {
		var slowSecs int
		worst := res.Timeline[0]
		for _, e := range res.Timeline {
			if e.Slow > 0 {
				slowSecs++
			}
			if e.MaxSockMs > worst.MaxSockMs {
				worst = e
			}
		}
		fmt.Fprintf(&b, "Stalls      %d of %d seconds had packets over %v to the socket; worst at t=%ds: %.1f ms (%d slow packets)\n",
			slowSecs, len(res.Timeline), slowThreshold, worst.Second, worst.MaxSockMs, worst.Slow)
	}
	j := res.Join
	fmt.Fprintf(&b, "Join        %d/%d joined, %d failed (from websocket open)\n", j.Joined, j.Attempted, j.Failed)
	for _, p := range []struct {
		name string
		p    Percentiles
	}{{"join response", j.Signal}, {"first media", j.FirstMedia}, {"every track", j.AllTracks}} {
		fmt.Fprintf(&b, "            %-13s p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms (n=%d)\n",
			p.name, p.p.P50Ms, p.p.P95Ms, p.p.P99Ms, p.p.MaxMs, p.p.N)
	}
	e := res.Errors
	fmt.Fprintf(&b, "Errors      %d", e.Total)
	if e.Total > 0 {
		kinds := make([]string, 0, len(e.ByKind))
		for k, v := range e.ByKind {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, v))
		}
		slices.Sort(kinds)
		fmt.Fprintf(&b, " (%s)", strings.Join(kinds, ", "))
		for _, s := range e.Samples {
			fmt.Fprintf(&b, "\n            %s", s)
		}
	}
	b.WriteString("\n")
	if s := res.Server; s != nil {
		fmt.Fprintf(&b, "Server      pid %d: CPU %.2f s in %.1f s (%.0f%% of a core); %.2f µs per forwarded packet (%d packets)",
			s.PID, s.CPUSeconds, res.WindowS, s.CPUPercent, s.CPUUsPerPacket, s.ForwardedPackets)
		if s.RatioToFloor > 0 {
			fmt.Fprintf(&b, " = %.1fx the floor", s.RatioToFloor)
		}
		fmt.Fprintf(&b, "\n            RSS %s before subscribers, %s max in window, %s peak (VmHWM); %.0f KiB per subscriber; UDP drops %d\n",
			kib(s.RSSBaselineKiB), kib(s.RSSWindowMaxKiB), kib(s.PeakRSSKiB), s.RSSPerSubscriberKiB, s.UDPDrops)
		if s.Error != "" {
			fmt.Fprintf(&b, "            (error reading /proc: %s)\n", s.Error)
		}
	}
	if g := res.Generator; g != nil {
		fmt.Fprintf(&b, "Generator   CPU %.2f s (%.0f%% of a core), peak RSS %s, UDP drops %d\n", g.CPUSeconds, g.CPUPercent, kib(g.PeakRSSKiB), g.UDPDrops)
	}
	if h := res.Host; h != nil {
		fmt.Fprintf(&b, "Host        %d CPUs %.0f%% busy (softirq %.0f%%); other processes used %.2f cores\n",
			h.CPUs, h.BusyPct, h.SoftIRQPct, h.OtherCores)
	}
	if f := res.Floor; f != nil {
		fmt.Fprintf(&b, "Floor       %.2f µs per %d-byte packet: AES-GCM SRTP encrypt %.2f µs + sendmmsg (batch %d) %.2f µs\n",
			f.TotalUs, f.PacketBytes, f.EncryptUs, f.Batch, f.SendUs)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// noSocketReason explains missing latency-to-socket figures.
func noSocketReason(ice string) string {
	if ice == ICETransportTCP {
		return "ICE-TCP: pion reads the TCP stream itself"
	}
	return "no arrival times recorded"
}

func layerList(ls []LayerSpec) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("%s %dx%d@%d %s", l.RID, l.Width, l.Height, l.FPS, bps(float64(l.Bitrate)))
	}
	return strings.Join(parts, ", ")
}

func bps(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2f Gbps", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2f Mbps", v/1e6)
	default:
		return fmt.Sprintf("%.0f kbps", v/1e3)
	}
}

func kib(v int64) string {
	if v >= 10<<10 {
		return fmt.Sprintf("%.1f MiB", float64(v)/1024)
	}
	return fmt.Sprintf("%d KiB", v)
}
