package sfu

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/sfu/srtpout"
)

// vp8Codec is the publisher's negotiated VP8, with NACK as browsers negotiate it.
var vp8Codec = webrtc.RTPCodecParameters{
	RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
		RTCPFeedback: []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBNACK}, {Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"}}},
	PayloadType: 96,
}

// opusCodec is the publisher's negotiated Opus.
var opusCodec = webrtc.RTPCodecParameters{
	RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
	PayloadType:        111,
}

// fakeClock is a settable receiver clock.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() int64              { return c.ns.Load() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// rtcpRecorder collects what a WriteRTCP function was given.
type rtcpRecorder struct {
	mu   sync.Mutex
	pkts []rtcp.Packet
}

func (r *rtcpRecorder) write(pkts []rtcp.Packet) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pkts = append(r.pkts, pkts...)
	return nil
}

// plis returns the media SSRCs of the PLIs written so far.
func (r *rtcpRecorder) plis() []uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint32
	for _, p := range r.pkts {
		if pli, ok := p.(*rtcp.PictureLossIndication); ok {
			out = append(out, pli.MediaSSRC)
		}
	}
	return out
}

// recordWriter is a webrtc.TrackLocalWriter keeping copies of what it got.
type recordWriter struct {
	mu   sync.Mutex
	pkts []rtp.Packet
}

func (w *recordWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := rtp.Packet{Header: h.Clone(), Payload: append([]byte(nil), payload...)}
	w.pkts = append(w.pkts, p)
	return len(payload), nil
}

func (w *recordWriter) Write(b []byte) (int, error) {
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil {
		return 0, err
	}
	return w.WriteRTP(&p.Header, p.Payload)
}

// packets returns a copy of what was written.
func (w *recordWriter) packets() []rtp.Packet {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]rtp.Packet(nil), w.pkts...)
}

// discardWriter is a webrtc.TrackLocalWriter dropping everything.
type discardWriter struct{}

func (discardWriter) WriteRTP(_ *rtp.Header, p []byte) (int, error) { return len(p), nil }
func (discardWriter) Write(b []byte) (int, error)                   { return len(b), nil }

// fakeContext is the webrtc.TrackLocalContext pion would pass to Bind.
type fakeContext struct {
	codecs []webrtc.RTPCodecParameters
	ssrc   webrtc.SSRC
	writer webrtc.TrackLocalWriter
	exts   []webrtc.RTPHeaderExtensionParameter
}

func (c *fakeContext) CodecParameters() []webrtc.RTPCodecParameters { return c.codecs }
func (c *fakeContext) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter {
	return c.exts
}
func (c *fakeContext) SSRC() webrtc.SSRC                                 { return c.ssrc }
func (c *fakeContext) SSRCRetransmission() webrtc.SSRC                   { return 0 }
func (c *fakeContext) SSRCForwardErrorCorrection() webrtc.SSRC           { return 0 }
func (c *fakeContext) WriteStream() webrtc.TrackLocalWriter              { return c.writer }
func (c *fakeContext) ID() string                                        { return "fake" }
func (c *fakeContext) RTCPReader() interceptor.RTCPReader                { return nil }
func (c *fakeContext) withWriter(w webrtc.TrackLocalWriter) *fakeContext { c.writer = w; return c }

// chanSource is a packetSource fed through a channel; closing the channel
// ends the stream with io.EOF.
type chanSource struct {
	ch       chan []byte
	deadline chan struct{}
	once     sync.Once
}

func newChanSource() *chanSource {
	return &chanSource{ch: make(chan []byte, 64), deadline: make(chan struct{})}
}

func (s *chanSource) Read(b []byte) (int, interceptor.Attributes, error) {
	select {
	case p, ok := <-s.ch:
		if !ok {
			return 0, nil, io.EOF
		}
		return copy(b, p), nil, nil
	case <-s.deadline:
		return 0, nil, errors.New("deadline exceeded")
	}
}

func (s *chanSource) SetReadDeadline(time.Time) error {
	s.once.Do(func() { close(s.deadline) })
	return nil
}

// rtpBytes marshals a packet.
func rtpBytes(t testing.TB, h rtp.Header, payload []byte) []byte {
	t.Helper()
	h.Version = 2
	b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testRig is a Receiver with layers fed by hand and a fake clock.
type testRig struct {
	t      testing.TB
	r      *Receiver
	clock  *fakeClock
	rtcp   *rtcpRecorder
	layers [NumLayers]*upLayer
	pkt    rtp.Packet
}

// newTestRig returns a receiver of codec with the given layers attached
// (SSRC 1000+layer), none of them read by a goroutine.
func newTestRig(t testing.TB, codec webrtc.RTPCodecParameters, layers ...int) *testRig {
	kind := webrtc.RTPCodecTypeVideo
	if codec.MimeType == webrtc.MimeTypeOpus || isRED(codec) {
		kind = webrtc.RTPCodecTypeAudio
	}
	rig := &testRig{t: t, clock: &fakeClock{}, rtcp: &rtcpRecorder{}}
	rig.clock.advance(time.Second)
	rig.r = NewReceiver(ReceiverParams{
		TrackID:         "TR_test",
		Kind:            kind,
		Codec:           codec,
		WriteRTCP:       rig.rtcp.write,
		AudioLevelExtID: 1,
		PacketCacheSize: 64,
	})
	rig.r.clock = rig.clock.now
	for _, l := range layers {
		rig.layers[l] = newUpLayer(l, "", uint32(1000+l), newChanSource(), rig.r.cacheSize)
		rig.r.layers[l].Store(rig.layers[l])
	}
	return rig
}

// feed hands one packet to layer as if read from the network.
func (rig *testRig) feed(layer int, h rtp.Header, payload []byte) {
	h.SSRC = uint32(1000 + layer)
	h.PayloadType = 96
	rig.r.handlePacket(rig.layers[layer], &rig.pkt, rtpBytes(rig.t, h, payload))
}

// bind returns a down track of the rig's receiver bound to a recordWriter
// with SSRC 5555 and payload type 100.
func (rig *testRig) bind(codec webrtc.RTPCodecParameters) (*DownTrack, *recordWriter) {
	rig.t.Helper()
	w := &recordWriter{}
	return rig.bindTo(codec, w), w
}

// bindTo returns a down track of the rig's receiver bound to w with SSRC
// 5555 and payload type 100.
func (rig *testRig) bindTo(codec webrtc.RTPCodecParameters, w webrtc.TrackLocalWriter) *DownTrack {
	rig.t.Helper()
	return rig.bindOut(codec, w, nil)
}

// bindOut is bindTo with a direct output (nil: none).
func (rig *testRig) bindOut(codec webrtc.RTPCodecParameters, w webrtc.TrackLocalWriter, out *srtpout.Sender) *DownTrack {
	rig.t.Helper()
	return rig.bindParams(codec, w, DownTrackParams{Output: out})
}

// bindParams is bindTo with the down track made from p (its receiver and ids are the rig's).
func (rig *testRig) bindParams(codec webrtc.RTPCodecParameters, w webrtc.TrackLocalWriter, p DownTrackParams) *DownTrack {
	rig.t.Helper()
	p.Receiver, p.StreamID, p.SubscriberID = rig.r, "PA_pub|TR_test", "PA_sub"
	d, err := NewDownTrack(p)
	if err != nil {
		rig.t.Fatal(err)
	}
	codec.PayloadType = 100
	if _, err := d.Bind((&fakeContext{codecs: []webrtc.RTPCodecParameters{codec}, ssrc: 5555}).withWriter(w)); err != nil {
		rig.t.Fatal(err)
	}
	rig.r.AddDownTrack(d)
	return d
}
