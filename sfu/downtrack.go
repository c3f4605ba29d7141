package sfu

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/sfu/bwe"
	"github.com/sanke-edu/sanke/sfu/packetcache"
	"github.com/sanke-edu/sanke/sfu/srtpout"
)

const (
	// sentRingVideo and sentRingAudio are how many output packets a down
	// track remembers for NACKs (powers of two).
	sentRingVideo = 512
	sentRingAudio = 128
)

// Errors returned by NewDownTrack.
var (
	ErrNoReceiver = errors.New("sfu: down track needs a receiver")
	ErrNoStreamID = errors.New("sfu: down track needs a stream id")
)

// DownTrackParams configures a DownTrack.
type DownTrackParams struct {
	// Receiver is the published track to forward.
	Receiver *Receiver
	// SubscriberID is the subscribing participant's sid, for logs.
	SubscriberID string
	// StreamID is the msid stream id the client SDKs expect:
	// "PA_xxx|TR_xxx" (publisher sid | track sid).
	StreamID string
	// TrackID is the msid track id ("TR_xxx"); empty means the
	// receiver's track id.
	TrackID string
	// Reports sends the down track's sender reports together with those of the other
	// down tracks of its PeerConnection (see Reporter).
	Reports *Reporter
	// WriteRTCP, when Reports is nil, sends the sender reports through a Reporter of the
	// down track's own: typically the subscriber PeerConnection's WriteRTCP. Without
	// either, no sender reports are sent.
	WriteRTCP func([]rtcp.Packet) error
	// Allocator, if not nil, caps the video layer to what the subscriber's downlink carries,
	// judged from the subscriber's receiver reports; it is shared by the down tracks of one
	// PeerConnection. Priority orders the tracks when it shares out the room (higher
	// first).
	Allocator *Allocator
	Priority  int
	// Output, if not nil, sends the track's RTP directly (SRTP and batched UDP sends, see
	// package srtpout) instead of through pion's write path, from the first packet it is
	// ready for; the subscriber's PeerConnection must have its KeyCapture installed. A
	// down track that has sent through pion first stays with pion, and one that sent
	// directly stays direct (one SRTP state per stream): it drops what it forwards while
	// the Sender has no path (between ICE candidate pairs).
	Output *srtpout.Sender
	// AwaitConnected holds the down track until SetConnected (the subscriber's DTLS is up):
	// it neither forwards nor asks for keyframes before. A keyframe forwarded earlier is
	// dropped by pion, or by the subscriber, while the request that brought it counts
	// against the publisher's PLI throttle; the first picture then waits for the retry.
	AwaitConnected bool
	// FirstSeq, a test hook, is the sequence number of the first packet sent (0: the
	// publisher's own numbering, shifted only at layer switches); tests start near 65535
	// to see the numbering wrap within seconds.
	FirstSeq uint16
	// RED says the subscriber decodes RED audio (RFC 2198): an audio track is then sent as
	// RED, wrapped at a distance that follows the subscriber's loss, when RED was
	// negotiated. pion binds a track to the codecs of the whole PeerConnection, which may
	// include RED for the client's own sections, so only this says what the subscriber's
	// section may carry.
	RED bool
	// Logger receives the down track's logs; nil discards them.
	Logger *slog.Logger
}

// DownTrack forwards one Receiver to one subscriber. It implements
// webrtc.TrackLocal: add it to the subscriber's PeerConnection (AddTrack or
// a transceiver's sender), then attach it with Receiver.AddDownTrack.
// Packets forwarded before pion binds it are dropped. Its methods are safe
// for concurrent use.
type DownTrack struct {
	receiver     *Receiver
	subscriberID string
	streamID     string
	trackID      string
	allowRED     bool       // DownTrackParams.RED
	reporter     *Reporter  // nil: no sender reports
	ownReporter  bool       // reporter was made for this down track alone
	alloc        *Allocator // nil: no downlink allocation
	logger       *slog.Logger

	closed      atomic.Bool
	rtcpStarted atomic.Bool
	rtcpReads   atomic.Uint64 // RTCP packets read from the subscriber (see Activity)
	// unnumbered: bound without the transport-wide sequence number while the PeerConnection
	// has an estimator (RED audio: Chromium offers transport-cc feedback for Opus only), so
	// the estimate never sees this track's packets (see allocTrack.reserve).
	unnumbered atomic.Bool
	// wrapsRED: the track is sent as RED wrapped at a distance (audioRED); redLimit mirrors
	// audio.limit for the Allocator, which sets it (see limitRED).
	wrapsRED atomic.Bool
	redLimit atomic.Int32
	done     chan struct{}

	cbMu    sync.Mutex // guards the callbacks and bound
	bound   bool
	onBind  []func()
	onClose []func()

	// mu serializes the data path: the receive loops of every layer, NACK
	// retransmissions and control calls. It is never shared with other
	// down tracks.
	mu          sync.Mutex
	fwd         forwarder               // inline: the fan-out reads it for every packet, one cache miss less
	writer      webrtc.TrackLocalWriter // nil while unbound or closed
	out         *srtpout.Sender
	outMode     outputMode
	ssrc        uint32
	payloadType uint8
	hdr         rtp.Header                       // scratch header of forwarded packets
	buf         *[packetcache.MaxPacketSize]byte // pion path's munged payload, made on first use
	rtx         *retransmitScratch               // made on the first retransmission
	sent        *sentRing                        // nil unless the subscriber negotiated NACK
	rtxTokens   int64                            // retransmission byte budget (see rtxBurst)
	reports     reportState
	audio       audioOut // audio only: Opus, RED or RED's primary
	counters    downTrackCounters
	loggedErr   bool

	// Transport-wide congestion control: twccID is the negotiated header extension id (0:
	// not negotiated, or no estimator), twccExt the one extension every packet carries and
	// ccOffset turns the receiver's clock into the PeerConnection's (see Allocator.epoch).
	cc       *bwe.Controller
	twccID   uint8
	twccExt  [1]rtp.Extension
	twccVal  [2]byte
	ccOffset int64
	playout  playoutState // video: the playout-delay extension, on lossy links

	awaitConn bool // DownTrackParams.AwaitConnected
	connected bool // forwarding may start (see DownTrackParams.AwaitConnected)
	// The first keyframe asked for and forwarded, for the connection timeline (debug logs).
	askedKey, sentKey bool

	bwResumed bool // the Allocator resumed the track; the next new lock tells it (see setBWPaused)
}

// outputMode is the path a down track's packets take; it is decided by the first packet
// that reaches the subscriber and never changes, so one SRTP context owns each stream.
type outputMode uint8

const (
	outputUndecided outputMode = iota
	outputDirect               // srtpout.Sender
	outputPion                 // pion's TrackLocalWriter
)

// downTrackCounters are the DownTrack statistics guarded by its mu.
type downTrackCounters struct {
	packets, bytes, retransmits, nacks, nackMisses uint64
	retransmitBytes, rtxLimited                    uint64
	plis, firs, writeErrors                        uint64
	paddingPackets, paddingBytes                   uint64
	directGaps                                     uint64 // direct packets dropped while the path was away
}

// NewDownTrack returns a down track forwarding p.Receiver. It forwards the
// highest available layer until SetMaxLayer says otherwise.
func NewDownTrack(p DownTrackParams) (*DownTrack, error) {
	if p.Receiver == nil {
		return nil, ErrNoReceiver
	}
	if p.StreamID == "" {
		return nil, ErrNoStreamID
	}
	r := p.Receiver
	trackID := p.TrackID
	if trackID == "" {
		trackID = r.TrackID()
	}
	logger := p.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &DownTrack{
		receiver:     r,
		subscriberID: p.SubscriberID,
		streamID:     p.StreamID,
		trackID:      trackID,
		allowRED:     p.RED,
		reporter:     p.Reports,
		alloc:        p.Allocator,
		out:          p.Output,
		logger:       logger.With("track", trackID, "subscriber", p.SubscriberID),
		done:         make(chan struct{}),
		fwd:          *newForwarder(r.video(), r.Codec().ClockRate),
		awaitConn:    p.AwaitConnected,
		connected:    !p.AwaitConnected,
		audio:        audioOut{dist: -1, limit: maxREDDistance},
	}
	d.redLimit.Store(maxREDDistance)
	d.fwd.firstSeq = p.FirstSeq
	if d.reporter == nil && p.WriteRTCP != nil {
		d.reporter, d.ownReporter = NewReporter(p.WriteRTCP, d.logger), true
	}
	if d.alloc != nil {
		d.alloc.add(d, p.Priority)
		if d.cc = d.alloc.cc; d.cc != nil && r.clock == nil {
			d.ccOffset = int64(r.epoch.Sub(d.alloc.epoch))
		}
	}
	return d, nil
}

// ID returns the track id (webrtc.TrackLocal).
func (d *DownTrack) ID() string { return d.trackID }

// RID returns "": a down track sends a single stream (webrtc.TrackLocal).
func (d *DownTrack) RID() string { return "" }

// StreamID returns the msid stream id (webrtc.TrackLocal).
func (d *DownTrack) StreamID() string { return d.streamID }

// Kind returns audio or video (webrtc.TrackLocal).
func (d *DownTrack) Kind() webrtc.RTPCodecType { return d.receiver.Kind() }

// Receiver returns the receiver this down track forwards.
func (d *DownTrack) Receiver() *Receiver { return d.receiver }

// SubscriberID returns the subscribing participant's sid.
func (d *DownTrack) SubscriberID() string { return d.subscriberID }

// Bind is called by pion when the subscriber's transceiver is negotiated
// (webrtc.TrackLocal). It picks the negotiated codec matching the
// publisher's (for audio: RED when the subscriber negotiated it, else Opus,
// whichever the publisher sends) and starts writing to the context's stream
// with its SSRC and payload type.
func (d *DownTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	d.mu.Lock()
	var codec webrtc.RTPCodecParameters
	var ok bool
	if d.receiver.audio != nil {
		codec, ok = d.bindAudio(ctx.CodecParameters())
	} else {
		codec, ok = matchCodec(d.receiver.Codec(), ctx.CodecParameters())
	}
	if !ok || d.closed.Load() {
		if d.receiver.audio != nil {
			d.releaseAudio() // Close may have run already: nothing will be sent
		}
		d.mu.Unlock()
		if !ok {
			return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
		}
		return codec, nil // pion wants a codec; nothing will be written
	}
	d.writer = ctx.WriteStream()
	d.ssrc = uint32(ctx.SSRC())
	d.payloadType = uint8(codec.PayloadType)
	if d.sent == nil && hasNACK(codec) {
		// Only a subscriber that may NACK needs the record of what was sent (audio
		// normally does not negotiate it: no ring, and no write to one per packet).
		size := sentRingVideo
		if !d.receiver.video() {
			size = sentRingAudio
		}
		d.sent = newSentRing(size)
		d.rtxTokens = rtxBurst / 4 // losses in the first second can be answered too
	}
	d.twccID = 0
	if d.cc != nil && hasFeedback(codec, webrtc.TypeRTCPFBTransportCC) {
		for _, e := range ctx.HeaderExtensions() {
			var tmpl rtp.Header // rtp.Extension's fields are unexported: let pion build it
			if e.URI == sdp.TransportCCURI && e.ID > 0 && e.ID < 15 && tmpl.SetExtension(uint8(e.ID), d.twccVal[:]) == nil {
				d.twccID = uint8(e.ID)
				d.twccExt[0] = tmpl.Extensions[0]
			}
		}
	}
	d.unnumbered.Store(d.cc != nil && d.twccID == 0)
	var playoutID uint8
	for _, e := range ctx.HeaderExtensions() {
		if e.URI == PlayoutDelayURI && e.ID > 0 {
			playoutID = uint8(e.ID)
		}
	}
	d.bindPlayout(playoutID)
	first := LayerNone
	if d.awaitConn && d.connected {
		first = d.firstKeyframeLocked() // bound after the connection came up (renegotiated)
	}
	d.mu.Unlock()
	if first != LayerNone {
		go d.askFirstKeyframe(first) // not in pion's call: it writes to the publisher's connection
	}

	d.cbMu.Lock()
	d.bound = true
	callbacks := d.onBind
	d.cbMu.Unlock()
	for _, f := range callbacks {
		go f() // pion is mid-negotiation: never run user code in its call
	}
	d.logger.Debug("down track bound", "ssrc", uint32(ctx.SSRC()), "payloadType", codec.PayloadType, "twcc", d.twccID)
	return codec, nil
}

// Unbind is called by pion when the track is removed from its sender
// (webrtc.TrackLocal); writes stop.
func (d *DownTrack) Unbind(webrtc.TrackLocalContext) error {
	d.mu.Lock()
	d.writer = nil
	c, redDist := d.counters, d.audio.dist
	if d.receiver.audio != nil {
		d.releaseAudio()
	}
	d.mu.Unlock()
	d.logger.Debug("down track unbound", "kind", d.receiver.Kind(), "packets", c.packets, "nacks", c.nacks,
		"retransmits", c.retransmits, "nack_misses", c.nackMisses, "red_distance", redDist)
	d.cbMu.Lock()
	d.bound = false
	d.cbMu.Unlock()
	return nil
}

// SetConnected tells a down track made with AwaitConnected that the subscriber's connection
// is up (DTLS connected): forwarding starts, and a video track, once also bound, asks at
// once for the keyframe its subscriber's first picture needs, past the publisher's PLI
// throttle (LiveKit's rule: a down track is writable when bound and connected). Later
// calls do nothing.
func (d *DownTrack) SetConnected() {
	d.mu.Lock()
	if d.connected {
		d.mu.Unlock()
		return
	}
	d.connected = true
	first := LayerNone
	if d.writer != nil {
		first = d.firstKeyframeLocked()
	}
	d.mu.Unlock()
	if first != LayerNone {
		d.askFirstKeyframe(first)
	}
}

// firstKeyframeLocked returns the layer whose keyframe a bound and connected video track
// waits for, LayerNone if it waits for none, and counts the request as the forwarder's own
// (its retries follow keyframeRetry from now). d.mu must be held.
func (d *DownTrack) firstKeyframeLocked() int {
	f := &d.fwd
	if !f.video || f.current != LayerNone || d.closed.Load() {
		return LayerNone
	}
	now := d.receiver.now()
	available := d.receiver.availableMask(now)
	target := f.targetFor(available)
	if target == LayerNone || !available.has(target) {
		return LayerNone // nothing to ask for yet: the forwarder asks on the first packet
	}
	f.askedOnce, f.keyReqLayer, f.lastKeyReq = true, target, now
	d.askedKey = true
	return target
}

// askFirstKeyframe sends the urgent keyframe request of a track that just became writable.
func (d *DownTrack) askFirstKeyframe(layer int) {
	sent := d.receiver.requestKeyframe(layer, true)
	d.logger.Debug("ttff: first keyframe requested", "layer", layer, "urgent", true, "sent", sent)
}

// hasNACK reports whether c negotiated generic NACK feedback.
func hasNACK(c webrtc.RTPCodecParameters) bool {
	return hasFeedback(c, webrtc.TypeRTCPFBNACK)
}

// hasFeedback reports whether c negotiated RTCP feedback of type typ (without parameter).
func hasFeedback(c webrtc.RTPCodecParameters, typ string) bool {
	for _, fb := range c.RTCPFeedback {
		if fb.Type == typ && fb.Parameter == "" {
			return true
		}
	}
	return false
}

// matchCodec finds want among the negotiated codecs: same MIME type and
// format parameters, else the first with the same MIME type.
func matchCodec(want webrtc.RTPCodecParameters, negotiated []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	var fallback *webrtc.RTPCodecParameters
	for i, c := range negotiated {
		if !strings.EqualFold(c.MimeType, want.MimeType) {
			continue
		}
		if c.SDPFmtpLine == want.SDPFmtpLine {
			return c, true
		}
		if fallback == nil {
			fallback = &negotiated[i]
		}
	}
	if fallback == nil {
		return webrtc.RTPCodecParameters{}, false
	}
	return *fallback, true
}

// OnBind registers f to run (in its own goroutine) each time pion binds
// the track; if it is bound already, f runs now.
func (d *DownTrack) OnBind(f func()) {
	d.cbMu.Lock()
	d.onBind = append(d.onBind, f)
	bound := d.bound
	d.cbMu.Unlock()
	if bound {
		go f()
	}
}

// SetMaxLayer sets the highest layer the subscriber wants (LayerLow to
// LayerHigh); LayerNone pauses forwarding. A lower layer is forwarded while
// the wanted one is not available. Changes take effect on the next keyframe
// of the new layer.
func (d *DownTrack) SetMaxLayer(layer int) {
	d.mu.Lock()
	d.fwd.setMaxLayer(layer)
	d.mu.Unlock()
}

// maxLayer returns the highest layer the subscriber wants.
func (d *DownTrack) maxLayer() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fwd.maxLayer
}

// setCapLayer sets the highest layer the subscriber's downlink has room for (Allocator).
// Like SetMaxLayer, a change takes effect on the next keyframe of the new layer.
func (d *DownTrack) setCapLayer(layer int) {
	d.mu.Lock()
	changed := d.fwd.capLayer != layer
	d.fwd.setCapLayer(layer)
	d.mu.Unlock()
	if changed {
		d.logger.Debug("downlink cap", "layer", layer)
	}
}

// sentCounters returns the packets and payload bytes sent so far, retransmissions
// included: all that went down the subscriber's link.
func (d *DownTrack) sentCounters() (packets, bytes uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.counters.packets + d.counters.retransmits, d.counters.bytes + d.counters.retransmitBytes
}

// SetPaused pauses (the subscriber disabled the track) or resumes
// forwarding. A resumed video track restarts on a keyframe, which it
// requests.
func (d *DownTrack) SetPaused(paused bool) {
	d.mu.Lock()
	d.fwd.setPaused(paused)
	d.mu.Unlock()
}

// setSourceMuted follows the publisher's mute state (see Receiver.SetMuted).
func (d *DownTrack) setSourceMuted(muted bool) {
	d.mu.Lock()
	d.fwd.setMuted(muted)
	d.mu.Unlock()
}

// CurrentLayer returns the layer being forwarded, LayerNone if none (not
// started, paused, or waiting for a keyframe).
func (d *DownTrack) CurrentLayer() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fwd.current
}

// TargetLayer returns the layer the down track wants to forward given the
// subscriber's maximum and the layers now available; LayerNone when paused.
func (d *DownTrack) TargetLayer() int {
	available := d.receiver.availableMask(d.receiver.now())
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fwd.targetFor(available)
}

// writeRTP is the forwarding hot path, called by the receiver's receive
// loops for every packet: decide, rewrite into scratch space, write. It
// allocates nothing.
func (d *DownTrack) writeRTP(p *inPacket) {
	d.mu.Lock()
	if d.writer == nil || !d.connected {
		d.mu.Unlock()
		return
	}
	res := d.fwd.forward(p)
	if res.send {
		d.send(p, &res)
	} else if d.cc != nil && p.header.Marker && p.layer == LayerLow && d.fwd.bwPausedOnly() {
		d.maybeProbe(p.batch, p.arrival) // paused: the lowest layer's frames pace the resume probe
	}
	firstAsk, firstSent := false, false
	if res.keyframe != LayerNone && !d.askedKey {
		d.askedKey, firstAsk = true, true
	}
	if res.switched && !d.sentKey {
		d.sentKey, firstSent = true, true
	}
	resumed := res.switched && d.bwResumed
	if resumed {
		d.bwResumed = false
	}
	d.mu.Unlock()
	if res.keyframe != LayerNone {
		d.receiver.RequestKeyframe(res.keyframe)
		if firstAsk {
			d.logger.Debug("ttff: first keyframe requested", "layer", res.keyframe, "urgent", false)
		}
	}
	if resumed {
		d.alloc.resumed(d)
	}
	if res.switched {
		if firstSent {
			d.logger.Debug("ttff: first packet forwarded", "layer", p.layer, "keyframe", p.keyframe)
		}
		d.logger.Debug("forwarding layer", "layer", p.layer)
	}
}

// send writes p rewritten as res says and remembers how, for NACKs. d.mu
// must be held.
func (d *DownTrack) send(p *inPacket, res *forwardResult) {
	h := &d.hdr
	h.Version = 2
	h.Padding = p.header.Padding
	h.PaddingSize = p.header.PaddingSize
	h.Marker = p.header.Marker
	h.PayloadType = d.payloadType
	h.SequenceNumber = res.seq
	h.Timestamp = res.ts
	h.SSRC = d.ssrc
	h.CSRC = h.CSRC[:0]
	d.setExtensions(h)
	st := d.stamp(p.arrival, 0)
	payload, redPT := d.payloadFor(p)
	if d.audio.mode != audioAsIs && len(p.payload) > 0 {
		// The payload is not the publisher's: its padding does not follow.
		h.Padding, h.PaddingSize = false, 0
	}

	handled := false
	if p.batch != nil && d.directReady() {
		// Built, munged and encrypted right in the batch's buffer: no copies on the way.
		switch err := d.sendBatched(p, res, payload, redPT, st); {
		case err == nil:
			handled = true
		case d.outMode == outputDirect || !errors.Is(err, srtpout.ErrNotReady):
			// A direct stream never falls back mid-packet: one SRTP state per stream.
			d.writeFailed(err)
			handled = true
		}
	}
	if !handled {
		if res.mungeVP8 || redPT != 0 {
			if d.buf == nil {
				d.buf = new([packetcache.MaxPacketSize]byte)
			}
			n := copy(d.buf[:], payload)
			if res.mungeVP8 {
				p.vp8.patch(d.buf[:n], res.vp8)
			} else {
				setREDPayloadTypes(d.buf[:n], redPT)
			}
			payload = d.buf[:n]
		}
		d.write(h, payload, st)
	}
	d.counters.packets++
	d.counters.bytes += uint64(len(payload))
	if d.sent != nil {
		d.rtxTokens = min(d.rtxTokens+int64(len(payload))/2, rtxBurst)
	}
	d.sent.put(sentPacket{
		outSeq:   res.seq,
		inSeq:    p.header.SequenceNumber,
		outTS:    res.ts,
		layer:    int8(p.layer),
		mungeVP8: res.mungeVP8,
		vp8:      res.vp8,
	})
	if p.header.Marker && d.cc != nil && res.seq == d.fwd.lastSeq {
		d.maybeProbe(p.batch, p.arrival) // the end of a frame: room for probe padding
	}
}

// setExtensions gives h the down track's header extensions: the publisher's ids mean
// nothing on this connection; ours is the transport-wide sequence number, when negotiated,
// as the first one-byte extension, so that its value sits at a constant offset
// (twccOffset) for srtpout to stamp, then the playout delay while it is being sent (see
// playoutState). h.SequenceNumber must be set. d.mu must be held.
func (d *DownTrack) setExtensions(h *rtp.Header) {
	if exts := d.playoutExtensions(h.SequenceNumber); exts != nil {
		h.Extension = true
		h.ExtensionProfile = 0xBEDE
		h.Extensions = exts
		return
	}
	if d.twccID == 0 {
		h.Extension = false
		h.ExtensionProfile = 0
		h.Extensions = h.Extensions[:0]
		return
	}
	h.Extension = true
	h.ExtensionProfile = 0xBEDE
	h.Extensions = d.twccExt[:]
}

// twccOffset is where the transport-wide sequence number's value sits in a packet whose
// header setExtensions made: 12 bytes of fixed header (no CSRC), 4 of extension header, 1
// of the element's id and length.
const twccOffset = 12 + 4 + 1

// stamp returns how a packet sent at now (receiver clock) is numbered. d.mu must be held.
func (d *DownTrack) stamp(now int64, flags uint8) srtpout.Stamp {
	if d.twccID == 0 {
		return srtpout.Stamp{}
	}
	return srtpout.Stamp{Now: now + d.ccOffset, TWCC: twccOffset, Flags: flags}
}

// directReady reports whether the packet can take the direct path. d.mu must be held.
func (d *DownTrack) directReady() bool {
	return d.out != nil && d.outMode != outputPion && d.out.Ready()
}

// sendBatched writes payload (p's, or what the down track makes of p's audio), rewritten as res
// and redPT say with the header in d.hdr, into p's batch for the direct output, stamped as st
// says. d.mu must be held.
func (d *DownTrack) sendBatched(p *inPacket, res *forwardResult, payload []byte, redPT uint8, st srtpout.Stamp) error {
	buf, err := p.batch.Buffer(d.out)
	if err != nil {
		return err
	}
	hn, n, err := srtpout.MarshalPacket(buf, &d.hdr, payload)
	if err != nil {
		return err
	}
	switch {
	case res.mungeVP8:
		p.vp8.patch(buf[hn:hn+len(payload)], res.vp8)
	case redPT != 0:
		setREDPayloadTypes(buf[hn:hn+len(payload)], redPT)
	}
	if err := p.batch.Commit(d.out, buf[:n], st); err != nil {
		return err
	}
	d.outMode = outputDirect
	return nil
}

// write hands one packet to the transport outside a fan-out batch (retransmissions, and
// packets the batch could not take): the direct output when it is ready, else pion's writer.
// Either way it is numbered as st says, from the PeerConnection's one counter. d.mu must be
// held.
func (d *DownTrack) write(h *rtp.Header, payload []byte, st srtpout.Stamp) {
	if d.directReady() {
		_, err := d.out.WriteRTP(h, payload, st)
		if err == nil {
			d.outMode = outputDirect
			return
		}
		if d.outMode == outputDirect || !errors.Is(err, srtpout.ErrNotReady) {
			d.writeFailed(err)
			return
		}
	}
	if d.outMode == outputDirect {
		// The direct path is between two ICE pairs (a restart, a move to ICE-TCP): the
		// packet is lost as it would be on the dead path. pion must never take the stream
		// over: its SRTP state would start with rollover counter 0, which the subscriber
		// cannot authenticate once the sequence numbers have wrapped.
		d.counters.directGaps++
		return
	}
	if st.TWCC != 0 && h.Extension {
		// pion's write path has no numbering of ours: stamp the extension's value here.
		size := h.MarshalSize() + len(payload) + int(h.PaddingSize) + 16 + 28
		seq := d.cc.History().Sent(st.Now, size, st.Flags, st.Cluster)
		d.twccVal[0], d.twccVal[1] = byte(seq>>8), byte(seq)
	}
	n, err := d.writer.WriteRTP(h, payload)
	if err != nil {
		d.writeFailed(err)
		return
	}
	if n > 0 && d.outMode == outputUndecided {
		d.outMode = outputPion
	}
	if n == 0 && d.fwd.video && len(payload) > 0 {
		// pion drops packets without an error until the subscriber's SRTP is up: nothing
		// reached the subscriber, so start over on the next keyframe rather than leave it
		// decoding from the middle of a picture group.
		d.fwd.current = LayerNone
	}
}

// writeFailed counts a write error, logging the first. d.mu must be held.
func (d *DownTrack) writeFailed(err error) {
	d.counters.writeErrors++
	if !d.loggedErr {
		d.loggedErr = true
		d.logger.Debug("write failed", "err", err)
	}
}

// OnClose registers f to run once when the down track closes; if it is
// closed already, f runs now.
func (d *DownTrack) OnClose(f func()) {
	d.cbMu.Lock()
	if !d.closed.Load() {
		d.onClose = append(d.onClose, f)
		d.cbMu.Unlock()
		return
	}
	d.cbMu.Unlock()
	f()
}

// Close stops forwarding: the down track leaves its receiver, stops
// writing and its RTCP goroutines end (the one reading the sender ends once
// pion stops the sender). It does not remove the track from the
// PeerConnection; do that in OnClose. Close is safe to call more than once.
func (d *DownTrack) Close() {
	d.cbMu.Lock()
	if d.closed.Swap(true) {
		d.cbMu.Unlock()
		return
	}
	callbacks := d.onClose
	d.onClose = nil
	d.cbMu.Unlock()

	d.receiver.RemoveDownTrack(d)
	if d.alloc != nil {
		d.alloc.remove(d)
	}
	if d.reporter != nil {
		d.reporter.remove(d)
		if d.ownReporter {
			d.reporter.Close()
		}
	}
	close(d.done)
	d.mu.Lock()
	d.writer = nil
	if d.receiver.audio != nil {
		d.releaseAudio()
	}
	if d.outMode == outputDirect {
		d.out.Forget(d.ssrc) // pion gives every new sender a new SSRC
	}
	d.mu.Unlock()
	for _, f := range callbacks {
		f()
	}
	d.logger.Debug("down track closed")
}

// Closed reports whether the down track is closed.
func (d *DownTrack) Closed() bool {
	return d.closed.Load()
}

// Stats returns the down track's statistics.
func (d *DownTrack) Stats() DownTrackStats {
	target := d.TargetLayer()
	var est bwe.Estimate
	if d.alloc != nil {
		est = d.alloc.Estimate() // before d.mu: the Allocator locks down tracks under its lock
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.counters
	s := DownTrackStats{
		Packets:      c.packets,
		Bytes:        c.bytes,
		Retransmits:  c.retransmits,
		NACKs:        c.nacks,
		NACKMisses:   c.nackMisses,
		RtxLimited:   c.rtxLimited,
		PLIs:         c.plis,
		FIRs:         c.firs,
		WriteErrors:  c.writeErrors,
		DirectGaps:   c.directGaps,
		Direct:       d.outMode == outputDirect,
		CurrentLayer: d.fwd.current,
		TargetLayer:  target,
		CapLayer:     d.fwd.capLayer,
		ProbePackets: c.paddingPackets,
		ProbeBytes:   c.paddingBytes,
		BWPaused:     d.fwd.bwPaused,
	}
	d.reports.fill(&s, d.receiver.Codec().ClockRate)
	if e := est; d.alloc != nil {
		s.Downlink = DownlinkStats{Source: e.Source.String(), EstimateBps: e.Target, AckedBps: e.Acked,
			Usage: e.Usage.String(), QueueDelay: e.QueueDelay, Loss: e.Loss, BaselineLoss: e.Baseline,
			FeedbackMissing: e.FeedbackMissing, Limited: e.Limited, Probes: e.Probes, ProbesOK: e.ProbesOK}
	}
	return s
}
