package sfu

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/sanke-edu/sanke/sfu/srtpout"
)

// directPeer is a subscriber's end of the direct path: a UDP socket and its SRTP context.
type directPeer struct {
	conn *net.UDPConn
	ctx  *srtp.Context
}

// newDirectOutput returns a Sender keyed like a finished DTLS handshake, and the peer it
// sends to; ready tells whether the Sender gets the peer's address (is ready) at once.
func newDirectOutput(t *testing.T, ready bool) (*srtpout.Sender, *directPeer) {
	t.Helper()
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	keys := srtpout.Keys{Profile: srtp.ProtectionProfileAeadAes128Gcm,
		LocalKey: bytes.Repeat([]byte{7}, 16), LocalSalt: bytes.Repeat([]byte{8}, 12)}
	ctx, err := srtp.CreateContext(keys.LocalKey, keys.LocalSalt, keys.Profile)
	if err != nil {
		t.Fatal(err)
	}
	peer := &directPeer{conn: listen(), ctx: ctx}
	s := srtpout.NewSender(listen())
	if err := s.SetKeys(keys); err != nil {
		t.Fatal(err)
	}
	if ready {
		s.SetRemote(peer.conn.LocalAddr().(*net.UDPAddr))
	}
	return s, peer
}

// read returns the n packets the peer received, decrypted.
func (p *directPeer) read(t *testing.T, n int) []rtp.Packet {
	t.Helper()
	var out []rtp.Packet
	buf := make([]byte, 2000)
	for len(out) < n {
		_ = p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := p.conn.Read(buf)
		if err != nil {
			t.Fatalf("peer got %d packets, want %d: %v", len(out), n, err)
		}
		plain, err := p.ctx.DecryptRTP(nil, buf[:k], nil)
		if err != nil {
			t.Fatalf("peer cannot decrypt packet %d: %v", len(out), err)
		}
		var pkt rtp.Packet
		if err := pkt.Unmarshal(plain); err != nil {
			t.Fatal(err)
		}
		out = append(out, pkt)
	}
	return out
}

// The direct path sends exactly the bytes pion's path would: a layer switch with VP8
// munging and NACK retransmissions, compared packet by packet with a pion-path down track of
// the same receiver.
func TestDirectOutputMatchesPion(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0, 1)
	viaPion, w := rig.bind(vp8Codec)
	out, peer := newDirectOutput(t, true)
	fallback := &recordWriter{}
	direct := rig.bindOut(vp8Codec, fallback, out)
	for _, d := range []*DownTrack{viaPion, direct} {
		d.SetMaxLayer(LayerLow)
	}
	for i := range uint16(4) {
		rig.feed(0, rtp.Header{SequenceNumber: 10 + i, Timestamp: 100}, vp8Payload(true, 300+i, uint8(i), 1, i == 0))
	}
	for _, d := range []*DownTrack{viaPion, direct} {
		d.SetMaxLayer(LayerHigh)
	}
	rig.clock.advance(33 * time.Millisecond)
	for i := range uint16(4) {
		rig.feed(1, rtp.Header{SequenceNumber: 60000 + i, Timestamp: 9000}, vp8Payload(true, 20000+i, 90, 7, i == 0))
	}
	for _, d := range []*DownTrack{viaPion, direct} {
		d.handleRTCP([]rtcp.Packet{nack(5555, 11, 14, 16)})
	}
	want := w.packets()
	if len(want) != 11 {
		t.Fatalf("pion path wrote %d packets, want 8 + 3 retransmissions", len(want))
	}
	got := peer.read(t, len(want))
	for i := range want {
		gb, _ := got[i].Marshal()
		wb, _ := want[i].Marshal()
		if !bytes.Equal(gb, wb) {
			t.Errorf("packet %d differs:\n direct % x\n   pion % x", i, gb, wb)
		}
	}
	if n := len(fallback.packets()); n != 0 {
		t.Errorf("%d packets went to pion's writer of the direct down track", n)
	}
	if s := direct.Stats(); !s.Direct || s.WriteErrors != 0 || s.Retransmits != 3 {
		t.Errorf("direct stats: %+v", s)
	}
	if viaPion.Stats().Direct {
		t.Error("the pion down track reports the direct path")
	}
}

// A direct output that is not ready leaves the stream to pion, and the stream stays with pion
// once it has started there (one SRTP state per stream), even when the output becomes ready.
func TestDirectOutputFallback(t *testing.T) {
	rig := newTestRig(t, opusCodec, 0)
	out, peer := newDirectOutput(t, false)
	w := &recordWriter{}
	d := rig.bindOut(opusCodec, w, out)
	feed := func(from, n int) {
		for i := from; i < from+n; i++ {
			rig.clock.advance(20 * time.Millisecond)
			rig.feed(0, rtp.Header{SequenceNumber: uint16(i), Timestamp: uint32(960 * i)}, []byte{byte(i)})
		}
	}
	feed(0, 5)
	out.SetRemote(peer.conn.LocalAddr().(*net.UDPAddr))
	feed(5, 5)
	if n := len(w.packets()); n != 10 {
		t.Errorf("pion's writer got %d packets, want 10", n)
	}
	_ = peer.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := peer.conn.Read(make([]byte, 2000)); err == nil {
		t.Errorf("the direct path sent a %d-byte packet of a stream pion had started", n)
	}
	if d.Stats().Direct {
		t.Error("stats report the direct path")
	}
}
