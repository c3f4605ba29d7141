package loadtest

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/pion/rtp"
)

func TestVP8Packetizer(t *testing.T) {
	v := &vp8Packetizer{width: 1280, height: 720, pictureID: 0x7ffe, tl0: 254, fill: testFill}
	type pkt struct {
		p      []byte
		marker bool
	}
	frame := func(key bool, size int) []pkt {
		var out []pkt
		v.frame(key, size, func(p []byte, m bool) { out = append(out, pkt{append([]byte(nil), p...), m}) })
		return out
	}
	key := frame(true, 20000)
	if want := (20000 + 1149) / 1150; len(key) != want {
		t.Fatalf("keyframe of 20000 bytes in %d packets, want %d", len(key), want)
	}
	total := 0
	for i, k := range key {
		if len(k.p) > maxPayload {
			t.Errorf("packet %d: %d bytes > %d", i, len(k.p), maxPayload)
		}
		if k.marker != (i == len(key)-1) {
			t.Errorf("packet %d: marker %v", i, k.marker)
		}
		n, ok := vp8DescriptorLen(k.p)
		if !ok || n != vp8DescriptorSize {
			t.Fatalf("packet %d: descriptor length %d %v", i, n, ok)
		}
		if start := k.p[0]&0x10 != 0; start != (i == 0) {
			t.Errorf("packet %d: S bit %v", i, start)
		}
		if pid := binary.BigEndian.Uint16(k.p[2:4]) & 0x7fff; pid != 0x7fff {
			t.Errorf("packet %d: picture id %#x", i, pid)
		}
		if _, res := checkPayload(k.p, true); res != payloadOK {
			t.Errorf("packet %d: check %v", i, res)
		}
		total += len(k.p) - vp8DescriptorSize - trailerSize
	}
	if total != 20000 {
		t.Errorf("frame carries %d bytes of VP8 data, want 20000", total)
	}
	// The first packet holds a VP8 keyframe header: P bit clear, start code, 1280x720.
	h := key[0].p[vp8DescriptorSize:]
	if h[0]&1 != 0 || !bytes.Equal(h[3:6], []byte{0x9d, 0x01, 0x2a}) ||
		binary.LittleEndian.Uint16(h[6:8]) != 1280 || binary.LittleEndian.Uint16(h[8:10]) != 720 {
		t.Errorf("bad keyframe header % x", h[:10])
	}
	// The next frame: inter frame, picture id wraps to 0, TL0PICIDX wraps to 0.
	inter := frame(false, 800)
	if len(inter) != 1 || !inter[0].marker {
		t.Fatalf("inter frame of 800 bytes: %d packets", len(inter))
	}
	p := inter[0].p
	if p[vp8DescriptorSize]&1 != 1 {
		t.Error("inter frame has the P bit clear")
	}
	if pid := binary.BigEndian.Uint16(p[2:4]) & 0x7fff; pid != 0 || p[4] != 0 {
		t.Errorf("picture id %d, tl0 %d after wrap", pid, p[4])
	}
	// A damaged body or descriptor is detected.
	bad := append([]byte(nil), p...)
	bad[vp8DescriptorSize+5] ^= 1
	if _, res := checkPayload(bad, true); res != payloadCorrupt {
		t.Errorf("damaged body: %v", res)
	}
	// Rewriting the picture id (as an SFU does) keeps the payload valid.
	ok := append([]byte(nil), p...)
	ok[2], ok[3] = 0x80|0x12, 0x34
	if _, res := checkPayload(ok, true); res != payloadOK {
		t.Errorf("rewritten picture id: %v", res)
	}
}

func TestVP8DescriptorLen(t *testing.T) {
	tests := []struct {
		name string
		p    []byte
		want int
		ok   bool
	}{
		{"empty", nil, 0, false},
		{"no extension", []byte{0x10, 0xaa}, 1, true},
		{"X only", []byte{0x90, 0x00, 0xaa}, 2, true},
		{"7-bit picture id", []byte{0x90, 0x80, 0x05, 0xaa}, 3, true},
		{"15-bit picture id, L, T", []byte{0x90, 0xe0, 0x81, 0x02, 0x07, 0x20, 0xaa}, 6, true},
		{"K only", []byte{0x90, 0x10, 0x03, 0xaa}, 3, true},
		{"truncated picture id", []byte{0x90, 0x80}, 0, false},
		{"truncated", []byte{0x90, 0xe0, 0x81, 0x02}, 0, false},
	}
	for _, tt := range tests {
		n, ok := vp8DescriptorLen(tt.p)
		if n != tt.want || ok != tt.ok {
			t.Errorf("%s: got %d %v, want %d %v", tt.name, n, ok, tt.want, tt.ok)
		}
	}
}

func TestParseRTP(t *testing.T) {
	p := rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, PayloadType: 111, SequenceNumber: 0xfffe,
		Timestamp: 0xdeadbeef, SSRC: 0x01020304, CSRC: []uint32{9, 10}}, Payload: []byte("payload!"), PaddingSize: 4}
	p.Padding = true
	if err := p.SetExtension(3, []byte("mid")); err != nil {
		t.Fatal(err)
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	h, ok := parseRTP(b)
	if !ok {
		t.Fatal("not parsed")
	}
	if h.seq != 0xfffe || h.ts != 0xdeadbeef || h.ssrc != 0x01020304 || !h.marker ||
		string(b[h.payloadStart:h.payloadEnd]) != "payload!" {
		t.Errorf("parsed %+v payload %q", h, b[h.payloadStart:h.payloadEnd])
	}
	for _, bad := range [][]byte{nil, b[:11], {0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, b[:14]} {
		if _, ok := parseRTP(bad); ok {
			t.Errorf("parsed % x", bad)
		}
	}
}

func TestOpusPayload(t *testing.T) {
	p := opusPayload(make([]byte, 1500), 80, testFill, 7)
	if len(p) != 80 || p[0] != 0x78 {
		t.Fatalf("len %d toc %#x", len(p), p[0])
	}
	stampTrailer(p[len(p)-trailerSize:], trailer{sendNs: 123456789, seq: 42, track: 7, layer: 0, flags: 0})
	tr, res := checkPayload(p, false)
	if res != payloadOK || tr.sendNs != 123456789 || tr.seq != 42 || tr.track != 7 {
		t.Errorf("trailer %+v %v", tr, res)
	}
	if _, res := checkPayload(p[:10], false); res != payloadForeign {
		t.Errorf("short payload: %v", res)
	}
}
