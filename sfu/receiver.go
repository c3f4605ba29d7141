package sfu

import (
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/sfu/packetcache"
)

const (
	// DefaultPLIThrottle is the minimum interval between keyframe requests
	// per layer when ReceiverParams.PLIThrottle is zero.
	DefaultPLIThrottle = 500 * time.Millisecond
	// DefaultPacketCacheSize is the number of packets cached per layer for
	// NACKs when ReceiverParams.PacketCacheSize is zero.
	DefaultPacketCacheSize = 512
	// audioCacheSize caps an audio layer's cache: Opus is rarely NACKed and
	// 128 packets are over two seconds of it.
	audioCacheSize = 128
	// maxReadErrors is how many consecutive read errors end a receive loop.
	maxReadErrors = 100
	// urgentPLIGap is the least time between an urgent keyframe request (a subscriber
	// that just became able to receive) and the request before it: a class joining at
	// once asks the publisher for at most ten keyframes a second.
	urgentPLIGap = 100 * time.Millisecond
)

// ReceiverParams configures a Receiver.
type ReceiverParams struct {
	// TrackID is the published track's id ("TR_xxx"), for logs and stats.
	TrackID string
	// Kind is audio or video.
	Kind webrtc.RTPCodecType
	// Codec is the codec negotiated with the publisher.
	Codec webrtc.RTPCodecParameters
	// WriteRTCP sends RTCP (keyframe requests) to the publisher's
	// PeerConnection, typically its WriteRTCP method. Nil disables them.
	WriteRTCP func([]rtcp.Packet) error
	// PLIThrottle is the minimum interval between keyframe requests per
	// layer; 0 means DefaultPLIThrottle.
	PLIThrottle time.Duration
	// PacketCacheSize is the number of packets cached per layer to answer
	// NACKs, rounded up to a power of two; 0 means DefaultPacketCacheSize.
	PacketCacheSize int
	// AudioLevelExtID is the negotiated id of the
	// urn:ietf:params:rtp-hdrext:ssrc-audio-level extension, 0 if none.
	AudioLevelExtID int
	// Logger receives the receiver's logs; nil discards them.
	Logger *slog.Logger
	// Capture, when set, is given every packet as read, before anything else (a test aid:
	// captures of what browsers send). The slice is only valid during the call.
	Capture func(pkt []byte)
}

// Receiver is one published track: it reads RTP from every layer the
// publisher sends, caches it for retransmission, and hands each packet to
// the track's down tracks, one per subscriber. Its methods are safe for
// concurrent use.
type Receiver struct {
	trackID         string
	kind            webrtc.RTPCodecType
	codec           webrtc.RTPCodecParameters
	codecType       codecType
	writeRTCP       func([]rtcp.Packet) error
	pliThrottle     time.Duration
	cacheSize       int
	audioLevelExtID uint8
	capture         func(pkt []byte)
	logger          *slog.Logger
	epoch           time.Time
	clock           func() int64 // tests replace the clock

	layers     [NumLayers]atomic.Pointer[upLayer]
	downTracks atomic.Pointer[[]*DownTrack] // copy-on-write, read without locks
	dtMu       sync.Mutex                   // serializes writers of downTracks
	muted      atomic.Bool
	closed     atomic.Bool
	level      audioLevel
	audio      *redUplink // Opus and RED tracks only

	mu      sync.Mutex // guards the fields below
	running int        // receive loops still running
	onClose []func()
}

// NewReceiver returns a receiver for one published track. Attach its
// streams with AddLayer.
func NewReceiver(p ReceiverParams) *Receiver {
	logger := p.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{
		trackID:     p.TrackID,
		kind:        p.Kind,
		codec:       p.Codec,
		codecType:   codecTypeOf(p.Codec.MimeType),
		writeRTCP:   p.WriteRTCP,
		pliThrottle: p.PLIThrottle,
		cacheSize:   p.PacketCacheSize,
		capture:     p.Capture,
		logger:      logger.With("track", p.TrackID),
		epoch:       time.Now(),
	}
	if r.pliThrottle <= 0 {
		r.pliThrottle = DefaultPLIThrottle
	}
	if r.cacheSize <= 0 {
		r.cacheSize = DefaultPacketCacheSize
	}
	if p.Kind == webrtc.RTPCodecTypeAudio {
		r.cacheSize = min(r.cacheSize, audioCacheSize)
	}
	if p.AudioLevelExtID > 0 && p.AudioLevelExtID < 256 {
		r.audioLevelExtID = uint8(p.AudioLevelExtID)
	}
	if p.Kind == webrtc.RTPCodecTypeAudio && (isRED(p.Codec) || strings.EqualFold(p.Codec.MimeType, webrtc.MimeTypeOpus)) {
		r.audio = newRedUplink(isRED(p.Codec), uint8(p.Codec.PayloadType))
	}
	r.downTracks.Store(&[]*DownTrack{})
	return r
}

// TrackID returns the published track's id.
func (r *Receiver) TrackID() string { return r.trackID }

// Kind returns whether the track is audio or video.
func (r *Receiver) Kind() webrtc.RTPCodecType { return r.kind }

// Codec returns the codec negotiated with the publisher.
func (r *Receiver) Codec() webrtc.RTPCodecParameters { return r.codec }

// now returns the receiver clock: monotonic nanoseconds, never 0.
func (r *Receiver) now() int64 {
	if r.clock != nil {
		return r.clock()
	}
	return max(int64(time.Since(r.epoch)), 1)
}

// video reports whether the track is video.
func (r *Receiver) video() bool {
	return r.kind == webrtc.RTPCodecTypeVideo
}

// AddLayer attaches one incoming stream: a simulcast layer, or the only
// stream of the track. The layer comes from the track's RID (see
// LayerForRID); streams with another RID, or a second stream for a layer
// already attached, are ignored. AddLayer starts a goroutine that reads RTP
// until the track ends or the receiver closes; when the last such goroutine
// ends because its track ended, the receiver closes itself.
//
// Publisher RTCP (sender reports) is not read here: see StartRTCP.
func (r *Receiver) AddLayer(track *webrtc.TrackRemote) {
	layer, ok := LayerForRID(track.RID())
	if !ok {
		r.logger.Warn("ignoring stream with unknown RID", "rid", track.RID(), "ssrc", uint32(track.SSRC()))
		return
	}
	r.addLayer(layer, track.RID(), uint32(track.SSRC()), track)
}

// addLayer attaches src as layer and starts reading it.
func (r *Receiver) addLayer(layer int, rid string, ssrc uint32, src packetSource) *upLayer {
	l := newUpLayer(layer, rid, ssrc, src, r.cacheSize)
	r.mu.Lock()
	if r.closed.Load() {
		r.mu.Unlock()
		return nil
	}
	if !r.layers[layer].CompareAndSwap(nil, l) {
		r.mu.Unlock()
		r.logger.Warn("ignoring second stream for a layer", "layer", layer, "rid", rid, "ssrc", ssrc)
		return nil
	}
	r.running++
	r.mu.Unlock()
	r.logger.Debug("layer added", "layer", layer, "rid", rid, "ssrc", ssrc)
	go r.readLoop(l)
	return l
}

// layer returns layer i, nil if it is not attached.
func (r *Receiver) layer(i int) *upLayer {
	if i < 0 || i >= NumLayers {
		return nil
	}
	return r.layers[i].Load()
}

// readLoop reads layer l until its source ends or the receiver closes.
func (r *Receiver) readLoop(l *upLayer) {
	defer r.readLoopDone()
	defer l.fan.stop()
	buf := make([]byte, packetcache.MaxPacketSize)
	var pkt rtp.Packet
	for errs := 0; ; {
		n, _, err := l.src.Read(buf)
		if err != nil {
			if r.closed.Load() || errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
				return
			}
			if errs++; errs >= maxReadErrors {
				r.logger.Warn("giving up reading layer", "layer", l.index, "err", err)
				return
			}
			continue
		}
		errs = 0
		if r.capture != nil {
			r.capture(buf[:n])
		}
		r.handlePacket(l, &pkt, buf[:n])
	}
}

// readLoopDone closes the receiver when its last receive loop ends.
func (r *Receiver) readLoopDone() {
	r.mu.Lock()
	r.running--
	last := r.running == 0
	r.mu.Unlock()
	if last {
		r.Close()
	}
}

// handlePacket is the receive path of one packet b of layer l: parse,
// account, cache, inspect, and fan out to every down track. pkt is scratch
// space reused across calls.
func (r *Receiver) handlePacket(l *upLayer, pkt *rtp.Packet, b []byte) {
	if err := pkt.Unmarshal(b); err != nil {
		return
	}
	now := r.now()
	l.record(&pkt.Header, len(b), len(pkt.Payload) > 0, now)
	l.cache.Add(pkt.SequenceNumber, b)

	in := inPacket{layer: l.index, header: &pkt.Header, payload: pkt.Payload, arrival: now}
	switch {
	case r.codecType == codecVP8:
		in.vp8, in.hasVP8 = parseVP8Descriptor(pkt.Payload)
		in.keyframe = in.hasVP8 && in.vp8.isKeyframe(pkt.Payload)
	case r.video():
		in.keyframe = isKeyframe(r.codecType, pkt.Payload)
	}
	if in.keyframe {
		l.keyframes.Add(1)
		l.lastKey.Store(now)
	}
	if since := l.heldSince.Load(); since != 0 {
		r.sendHeldKeyframe(l, since, now)
	}
	if r.audioLevelExtID != 0 {
		if ext := pkt.GetExtension(r.audioLevelExtID); len(ext) > 0 {
			r.level.observe(ext[0], now)
		}
	}
	if r.muted.Load() {
		return
	}
	in.available = r.availableMask(now)
	if r.audio != nil && !r.audio.handle(l, &in, func(rec *inPacket) {
		rec.available = in.available
		l.fan.write(rec, *r.downTracks.Load())
	}) {
		return
	}
	l.fan.write(&in, *r.downTracks.Load())
}

// layerBitrate returns layer i's bitrate over the last second, 0 when the layer is not
// receiving.
func (r *Receiver) layerBitrate(i int, now int64) uint64 {
	if l := r.layer(i); l != nil && l.active(now) {
		return l.bitrate.Load()
	}
	return 0
}

// availableMask returns the layers that received packets recently.
func (r *Receiver) availableMask(now int64) layerMask {
	var m layerMask
	for i := range r.layers {
		if l := r.layers[i].Load(); l != nil && l.active(now) {
			m |= 1 << i
		}
	}
	return m
}

// AvailableLayers returns, in increasing order, the layers that received
// packets within the last 1.5 s.
func (r *Receiver) AvailableLayers() []int {
	return r.availableMask(r.now()).layers()
}

// StartRTCP starts a goroutine reading the RTCP that the publisher sends
// for track (rr is the RTPReceiver that OnTrack gave with it) and passing it
// to HandleRTCP, until rr stops. Call it once per AddLayer: reading RTCP is
// what gives down tracks the publisher's sender reports for lip sync, and
// what lets pion's receive-side interceptors (receiver reports) see them.
func (r *Receiver) StartRTCP(rr *webrtc.RTPReceiver, track *webrtc.TrackRemote) {
	rid := track.RID()
	go func() {
		buf := make([]byte, packetcache.MaxPacketSize)
		for {
			n, _, err := rr.ReadSimulcast(buf, rid)
			if err != nil {
				return
			}
			pkts, err := rtcp.Unmarshal(buf[:n])
			if err != nil {
				continue
			}
			r.HandleRTCP(pkts)
		}
	}()
}

// HandleRTCP processes RTCP received from the publisher: sender reports are
// remembered per layer (matched by SSRC), anything else is ignored. Use it
// instead of StartRTCP to feed RTCP read elsewhere.
func (r *Receiver) HandleRTCP(pkts []rtcp.Packet) {
	now := r.now()
	for _, p := range pkts {
		sr, ok := p.(*rtcp.SenderReport)
		if !ok {
			continue
		}
		for i := range r.layers {
			if l := r.layers[i].Load(); l != nil && l.ssrc == sr.SSRC {
				l.sr.Store(&senderReport{ntp: sr.NTPTime, rtp: sr.RTPTime, at: now})
			}
		}
	}
}

// senderReport returns the last sender report of layer i, nil if none.
func (r *Receiver) senderReport(i int) *senderReport {
	if l := r.layer(i); l != nil {
		return l.sr.Load()
	}
	return nil
}

// AddDownTrack starts forwarding to d. Adding a down track twice has no
// effect; adding one to a closed receiver closes it.
func (r *Receiver) AddDownTrack(d *DownTrack) {
	r.dtMu.Lock()
	if r.closed.Load() {
		r.dtMu.Unlock()
		d.Close()
		return
	}
	old := *r.downTracks.Load()
	if slices.Contains(old, d) {
		r.dtMu.Unlock()
		return
	}
	d.setSourceMuted(r.muted.Load())
	next := append(slices.Clip(old), d)
	r.downTracks.Store(&next)
	r.dtMu.Unlock()
}

// RemoveDownTrack stops forwarding to d. It does not close d.
func (r *Receiver) RemoveDownTrack(d *DownTrack) {
	r.dtMu.Lock()
	defer r.dtMu.Unlock()
	old := *r.downTracks.Load()
	i := slices.Index(old, d)
	if i < 0 {
		return
	}
	next := slices.Delete(slices.Clone(old), i, i+1)
	r.downTracks.Store(&next)
}

// DownTracks returns the down tracks currently attached.
func (r *Receiver) DownTracks() []*DownTrack {
	return slices.Clone(*r.downTracks.Load())
}

// RequestKeyframe asks the publisher for a keyframe on layer (a PLI to
// that layer's SSRC), at most once per PLIThrottle per layer. It does
// nothing for audio or for a layer not attached.
func (r *Receiver) RequestKeyframe(layer int) {
	r.requestKeyframe(layer, false)
}

// requestKeyframe is RequestKeyframe; urgent (a down track that just became able to
// receive, or a subscriber's first request: its first picture waits on it) bypasses
// PLIThrottle unless the keyframe asked for last has not arrived yet (it is on its way,
// and reaches this subscriber too). One asked for less than urgentPLIGap after the last
// request is held back, not dropped: the receive path sends it when the gap has passed
// (sendHeldKeyframe). It reports whether a request was sent now.
func (r *Receiver) requestKeyframe(layer int, urgent bool) bool {
	l := r.layer(layer)
	if l == nil || !r.video() || r.writeRTCP == nil || r.closed.Load() {
		return false
	}
	now := r.now()
	last := l.lastPLI.Load()
	if last != 0 {
		wait := int64(r.pliThrottle)
		missed := urgent && l.lastKey.Load() >= last
		if missed {
			// The keyframe asked for last came already: this subscriber missed it.
			wait = min(wait, int64(urgentPLIGap))
		}
		if now-last < wait {
			if missed {
				l.heldSince.CompareAndSwap(0, now)
			}
			return false
		}
	}
	if !l.lastPLI.CompareAndSwap(last, now) {
		return false // another goroutine sent one just now
	}
	l.heldSince.Store(0) // this request's keyframe serves a held one too
	l.plis.Add(1)
	if err := r.writeRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: l.ssrc}}); err != nil {
		r.logger.Debug("keyframe request failed", "layer", layer, "err", err)
	}
	return true
}

// sendHeldKeyframe sends the urgent keyframe request held back since since (receiver
// clock) once urgentPLIGap has passed after the last request, and forgets it when a
// keyframe came after it was held (that keyframe reached the subscriber waiting for it).
// Without it the subscriber waited for the next request past PLIThrottle, or for the
// publisher's next keyframe: half a second and more before its first picture.
func (r *Receiver) sendHeldKeyframe(l *upLayer, since, now int64) {
	if l.lastKey.Load() >= since {
		l.heldSince.CompareAndSwap(since, 0)
		return
	}
	if now-l.lastPLI.Load() < min(int64(r.pliThrottle), int64(urgentPLIGap)) {
		return
	}
	if l.heldSince.CompareAndSwap(since, 0) {
		sent := r.requestKeyframe(l.index, true)
		r.logger.Debug("held keyframe request", "layer", l.index, "sent", sent)
	}
}

// AudioLevel returns the track's smoothed audio level in [0,1] (1 is the
// loudest, from the ssrc-audio-level extension: 10^(-dBov/20)) and whether
// it counts as speaking (louder than AudioActiveDBov). It returns 0, false
// without the extension, while muted, or when no level arrived for a
// second.
func (r *Receiver) AudioLevel() (level float64, active bool) {
	if r.muted.Load() {
		return 0, false
	}
	return r.level.get(r.now())
}

// SetMuted follows the publisher's mute state: while muted nothing is
// forwarded; when video is unmuted, down tracks wait for a keyframe, which
// is requested on every layer.
func (r *Receiver) SetMuted(muted bool) {
	r.dtMu.Lock() // a down track added meanwhile must not miss the change
	if r.muted.Swap(muted) == muted {
		r.dtMu.Unlock()
		return
	}
	for _, d := range *r.downTracks.Load() {
		d.setSourceMuted(muted)
	}
	r.dtMu.Unlock()
	if !muted {
		for i := range NumLayers {
			r.RequestKeyframe(i)
		}
	}
}

// Muted reports whether the publisher muted the track.
func (r *Receiver) Muted() bool {
	return r.muted.Load()
}

// OnClose registers f to run once when the receiver closes; if it is
// already closed, f runs now.
func (r *Receiver) OnClose(f func()) {
	r.mu.Lock()
	if !r.closed.Load() {
		r.onClose = append(r.onClose, f)
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	f()
}

// Close stops the receiver: the receive loops end, every down track is
// closed, and the OnClose callbacks run. It is safe to call more than once.
func (r *Receiver) Close() {
	r.mu.Lock()
	if r.closed.Swap(true) {
		r.mu.Unlock()
		return
	}
	callbacks := r.onClose
	r.onClose = nil
	r.mu.Unlock()

	// Unblock receive loops still waiting for packets.
	for i := range r.layers {
		if l := r.layers[i].Load(); l != nil {
			_ = l.src.SetReadDeadline(time.Now())
		}
	}
	r.dtMu.Lock()
	downTracks := *r.downTracks.Swap(&[]*DownTrack{})
	r.dtMu.Unlock()
	for _, d := range downTracks {
		d.Close()
	}
	for _, f := range callbacks {
		f()
	}
	r.logger.Debug("receiver closed")
}

// Closed reports whether the receiver is closed.
func (r *Receiver) Closed() bool {
	return r.closed.Load()
}

// Stats returns the receiver's statistics.
func (r *Receiver) Stats() ReceiverStats {
	now := r.now()
	s := ReceiverStats{TrackID: r.trackID, MimeType: r.codec.MimeType}
	for i := range r.layers {
		l := r.layers[i].Load()
		if l == nil {
			continue
		}
		ls := l.stats(now)
		s.Packets += ls.Packets
		s.Bytes += ls.Bytes
		s.Lost += ls.Lost
		s.Bitrate += ls.Bitrate
		s.Layers = append(s.Layers, ls)
	}
	return s
}
