package loadtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// LayerSpec describes one simulcast layer a video publisher sends.
type LayerSpec struct {
	RID     string // q, h, f
	Width   int
	Height  int
	FPS     int // a divisor of the highest layer's rate
	Bitrate int // bits per second, keyframes included
}

// DefaultLayers is a 720p camera published with LiveKit's usual three simulcast layers.
func DefaultLayers() []LayerSpec {
	return []LayerSpec{
		{RID: "q", Width: 320, Height: 180, FPS: 15, Bitrate: 150_000},
		{RID: "h", Width: 640, Height: 360, FPS: 30, Bitrate: 500_000},
		{RID: "f", Width: 1280, Height: 720, FPS: 30, Bitrate: 1_700_000},
	}
}

// keyframeWeight is how many times larger than an average inter frame a keyframe is.
const keyframeWeight = 8

// maxAudioCatchUp is how many missed 20 ms audio frames a late tick sends at once.
const maxAudioCatchUp = 50

// keyframeMinGap bounds how often a publisher honours keyframe requests (PLI/FIR) per layer.
const keyframeMinGap = 200 * time.Millisecond

// layerCounters are one published layer's totals (updated by the media loop and the RTCP
// reader, read by the reporter).
type layerCounters struct {
	packets, bytes, keyframes, plis, firs, nacks atomic.Uint64
}

type layerSnapshot struct {
	Packets, Bytes, Keyframes, PLIs, FIRs, NACKs uint64
}

func (l *layerCounters) snapshot() layerSnapshot {
	return layerSnapshot{l.packets.Load(), l.bytes.Load(), l.keyframes.Load(), l.plis.Load(), l.firs.Load(), l.nacks.Load()}
}

func (s layerSnapshot) sub(o layerSnapshot) layerSnapshot {
	return layerSnapshot{s.Packets - o.Packets, s.Bytes - o.Bytes, s.Keyframes - o.Keyframes, s.PLIs - o.PLIs, s.FIRs - o.FIRs, s.NACKs - o.NACKs}
}

// pubLayer is one RTP stream of a publisher: a simulcast layer, or the audio stream.
type pubLayer struct {
	index   int
	spec    LayerSpec
	track   *localTrack
	pkt     *vp8Packetizer
	seq     uint16
	count   uint32 // packets sent (trailer numbering)
	tsBase  uint32
	lastKey time.Duration // run clock of the last keyframe, <0 before the first
	wantKey atomic.Bool
	paused  atomic.Bool // dynacast: the server said nobody watches this quality
	c       layerCounters
}

// publisher is one participant publishing one track (VP8 simulcast or Opus).
type publisher struct {
	r      *runner
	index  int // generator track index
	video  bool
	cl     *client
	sid    string
	layers []*pubLayer
	rng    *rand.Rand
	start  atomic.Int64 // run clock when the media loop started: audio timestamp 0
	pacer  *pacer       // video only, unless pacing is off

	mu   sync.Mutex
	win0 []layerSnapshot
	win1 []layerSnapshot
}

// startPublisher joins as a publisher and publishes its track; media flows once it returns.
func (r *runner) startPublisher(ctx context.Context, index int, video bool) (*publisher, error) {
	kind := "audio"
	if video {
		kind = "video"
	}
	identity := fmt.Sprintf("lt-pub-%s-%03d", kind, index)
	p := &publisher{r: r, index: index, video: video, rng: rand.New(rand.NewPCG(uint64(index), 7))}
	var setup func(*client)
	if !r.cfg.IgnoreDynacast {
		setup = func(c *client) { c.onQuality = p.onQuality }
	}
	cl, err := r.connect(ctx, identity, true, setup)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", identity, err)
	}
	p.cl = cl
	if err := p.publish(ctx); err != nil {
		cl.close()
		return nil, fmt.Errorf("%s: %w", identity, err)
	}
	return p, nil
}

func (p *publisher) publish(ctx context.Context) error {
	cid := fmt.Sprintf("TR_lt%04d", p.index)
	stream := fmt.Sprintf("lt-stream-%04d", p.index)
	req := &livekit.AddTrackRequest{Cid: cid, DisableRed: true}
	var codec webrtc.RTPCodecCapability
	if p.video {
		codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
		req.Type, req.Name, req.Source = livekit.TrackType_VIDEO, "camera", livekit.TrackSource_CAMERA
		var layers []*livekit.VideoLayer
		for i, s := range p.r.cfg.Layers {
			layers = append(layers, &livekit.VideoLayer{
				Quality: livekit.VideoQuality(i), Width: uint32(s.Width), Height: uint32(s.Height),
				Bitrate: uint32(s.Bitrate), Rid: s.RID,
			})
			p.layers = append(p.layers, &pubLayer{
				index: i,
				spec:  s,
				track: newLocalTrack(codec, cid, stream, s.RID),
				pkt:   &vp8Packetizer{width: s.Width, height: s.Height, pictureID: uint16(p.rng.IntN(1 << 15)), fill: p.r.fill},
			})
		}
		top := p.r.cfg.Layers[len(p.r.cfg.Layers)-1]
		req.Width, req.Height, req.Layers = uint32(top.Width), uint32(top.Height), layers
		req.SimulcastCodecs = []*livekit.SimulcastCodec{{Codec: codec.MimeType, Cid: cid, Layers: layers,
			VideoLayerMode: livekit.VideoLayer_ONE_SPATIAL_LAYER_PER_STREAM}}
	} else {
		codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
		req.Type, req.Name, req.Source = livekit.TrackType_AUDIO, "microphone", livekit.TrackSource_MICROPHONE
		p.layers = []*pubLayer{{spec: LayerSpec{FPS: 50, Bitrate: p.r.cfg.AudioBitrate}, track: newLocalTrack(codec, cid, stream, "")}}
	}
	for _, l := range p.layers {
		l.seq = uint16(p.rng.Uint32())
		l.tsBase = p.rng.Uint32()
		l.lastKey = -time.Hour
	}
	info, err := p.cl.addTrack(ctx, req)
	if err != nil {
		return err
	}
	p.sid = info.Sid

	tr, err := p.cl.pub.AddTransceiverFromTrack(p.layers[0].track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return err
	}
	for _, l := range p.layers[1:] {
		if err := tr.Sender().AddEncoding(l.track); err != nil {
			return err
		}
	}
	if err := p.cl.negotiatePublisher(ctx); err != nil {
		return err
	}
	for _, l := range p.layers {
		l.track.setMid(tr.Mid())
		go p.readRTCP(tr.Sender(), l)
	}
	return nil
}

// onQuality applies a dynacast update (subscribed_quality_update): like a browser, the
// publisher stops sending the qualities nobody watches and restarts a quality with a keyframe.
func (p *publisher) onQuality(u *livekit.SubscribedQualityUpdate) {
	if !p.video {
		return
	}
	qs := u.SubscribedQualities //nolint:staticcheck // LiveKit protocol: older clients read it
	for _, c := range u.SubscribedCodecs {
		if strings.EqualFold(c.Codec, "vp8") && len(c.Qualities) > 0 {
			qs = c.Qualities
		}
	}
	for _, q := range qs {
		i := int(q.Quality)
		if i < 0 || i >= len(p.layers) {
			continue
		}
		l := p.layers[i]
		if was := l.paused.Swap(!q.Enabled); was && q.Enabled {
			l.wantKey.Store(true)
		}
	}
}

// readRTCP reads the server's feedback for one layer: keyframe requests are honoured, NACKs
// only counted (the generator does not retransmit, so any upstream loss stays visible).
func (p *publisher) readRTCP(s *webrtc.RTPSender, l *pubLayer) {
	for {
		var pkts []rtcp.Packet
		var err error
		if l.track.RID() != "" {
			pkts, _, err = s.ReadSimulcastRTCP(l.track.RID())
		} else {
			pkts, _, err = s.ReadRTCP()
		}
		if err != nil {
			return
		}
		for _, pk := range pkts {
			switch pk := pk.(type) {
			case *rtcp.PictureLossIndication:
				l.c.plis.Add(1)
				l.wantKey.Store(true)
			case *rtcp.FullIntraRequest:
				l.c.firs.Add(1)
				l.wantKey.Store(true)
			case *rtcp.TransportLayerNack:
				for _, n := range pk.Nacks {
					l.c.nacks.Add(uint64(len(n.PacketList())))
				}
			}
		}
	}
}

// run sends media until ctx ends: video frames at the top layer's rate (lower rates on every
// n-th tick), or a 20 ms Opus frame per tick.
func (p *publisher) run(ctx context.Context) {
	fps := 50
	if p.video {
		fps = 0
		for _, l := range p.layers {
			fps = max(fps, l.spec.FPS)
		}
	}
	interval := time.Second / time.Duration(fps)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var audioBuf [1500]byte
	if p.video && p.r.cfg.Pacing > 0 {
		var rate float64
		for _, l := range p.layers {
			rate += float64(l.spec.Bitrate)
		}
		p.pacer = newPacer(rate*p.r.cfg.Pacing, p.writePacket)
		go p.pacer.run(ctx)
	}
	start := p.r.now()
	p.start.Store(int64(start))
	lastAudio := int64(-1)
	nextSR := start + time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := p.r.now()
		// Ticks come at start + k*interval give or take scheduling delays: rounding recovers k
		// (a floor would skip or repeat frames when the phase is near a boundary).
		frame := int64((now - start + interval/2) / interval)
		if p.video {
			for _, l := range p.layers {
				every := int64(max(1, fps/max(1, l.spec.FPS)))
				if frame%every == 0 && !l.paused.Load() {
					p.sendVideoFrame(l, now)
				}
			}
		} else {
			// An audio device delivers every frame: after a late tick, send the missed ones
			// (up to a second's worth) instead of skipping them.
			for f := max(lastAudio+1, frame-maxAudioCatchUp); f <= frame; f++ {
				p.sendAudioFrame(p.layers[0], f, audioBuf[:])
			}
			lastAudio = frame
		}
		if now >= nextSR {
			nextSR = now + time.Second
			p.sendSenderReports(now)
		}
	}
}

// sendVideoFrame sends one frame of layer l, sized so that the layer averages its bitrate
// over a keyframe interval, with ±15% variation.
func (p *publisher) sendVideoFrame(l *pubLayer, now time.Duration) {
	key := now-l.lastKey >= p.r.cfg.KeyframeInterval ||
		(l.wantKey.Load() && now-l.lastKey >= keyframeMinGap)
	gopFrames := max(1, int(p.r.cfg.KeyframeInterval.Seconds()*float64(l.spec.FPS)))
	inter := float64(l.spec.Bitrate) / 8 * p.r.cfg.KeyframeInterval.Seconds() / float64(gopFrames-1+keyframeWeight)
	size := inter * (0.85 + 0.3*p.rng.Float64())
	if key {
		size *= keyframeWeight
		l.lastKey = now
		l.wantKey.Store(false)
		l.c.keyframes.Add(1)
	}
	ts := l.tsBase + uint32(now.Microseconds()*9/100)
	var flags uint8
	if key {
		flags = flagKeyframe
	}
	l.pkt.frame(key, int(size), func(payload []byte, marker bool) {
		if p.pacer != nil {
			p.pacer.enqueue(l, ts, marker, flags, payload)
		} else {
			p.writePacket(l, ts, marker, 0, flags, payload)
		}
		flags = 0
	})
}

// sendAudioFrame sends one Opus frame; the audio level varies so speaker detection has work.
func (p *publisher) sendAudioFrame(l *pubLayer, frame int64, buf []byte) {
	size := max(trailerSize+2, p.r.cfg.AudioBitrate/8/50)
	payload := opusPayload(buf, size, p.r.fill, uint32(frame))
	level := uint8(30 + (frame/25+int64(p.index))%4*15) // 30..75 -dBov, changing every 0.5 s
	p.writePacket(l, l.tsBase+uint32(frame*960), false, level, 0, payload)
}

// writePacket stamps the trailer and sends one packet of layer l. It runs in one goroutine per
// publisher (the media loop, or the pacer when pacing).
func (p *publisher) writePacket(l *pubLayer, ts uint32, marker bool, level, flags uint8, payload []byte) {
	stampTrailer(payload[len(payload)-trailerSize:], trailer{
		sendNs: int64(p.r.now()), seq: l.count, track: uint16(p.index), layer: uint8(l.index), flags: flags,
	})
	sent, err := l.track.write(l.seq, ts, marker, level, payload)
	if err != nil {
		p.r.errs.add("publish", fmt.Errorf("track %d write: %w", p.index, err))
	}
	if !sent {
		return
	}
	l.seq++
	l.count++
	l.c.packets.Add(1)
	l.c.bytes.Add(uint64(len(payload)))
}

// sendSenderReports sends an RTCP sender report per stream, as browsers do about once a second;
// the server uses them for lip sync.
func (p *publisher) sendSenderReports(now time.Duration) {
	var pkts []rtcp.Packet
	wall := time.Now()
	for _, l := range p.layers {
		l.track.mu.Lock()
		ssrc := l.track.ssrc
		l.track.mu.Unlock()
		if ssrc == 0 || l.paused.Load() {
			continue
		}
		rtpTS := l.tsBase + uint32(now.Microseconds()*9/100)
		if !p.video {
			rtpTS = l.tsBase + uint32((now-time.Duration(p.start.Load())).Microseconds()*48/1000)
		}
		pkts = append(pkts, &rtcp.SenderReport{SSRC: ssrc, NTPTime: ntpTime(wall), RTPTime: rtpTS,
			PacketCount: uint32(l.c.packets.Load()), OctetCount: uint32(l.c.bytes.Load())})
	}
	if len(pkts) > 0 {
		_ = p.cl.pub.WriteRTCP(pkts)
	}
}

// ntpTime converts t to the 64-bit NTP format.
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / 1_000_000_000
	return secs<<32 | frac
}

// startWindow and endWindow snapshot the layers' counters.
func (p *publisher) startWindow() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.win0 = p.snapshot()
}

func (p *publisher) endWindow() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.win1 = p.snapshot()
}

func (p *publisher) snapshot() []layerSnapshot {
	s := make([]layerSnapshot, len(p.layers))
	for i, l := range p.layers {
		s[i] = l.c.snapshot()
	}
	return s
}

// window returns each layer's counters during the measurement window.
func (p *publisher) window() []layerSnapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]layerSnapshot, len(p.layers))
	for i := range out {
		var a, b layerSnapshot
		if i < len(p.win0) {
			a = p.win0[i]
		}
		if i < len(p.win1) {
			b = p.win1[i]
		}
		out[i] = b.sub(a)
	}
	return out
}
