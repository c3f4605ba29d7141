package sfu

import (
	"bytes"
	"testing"

	"github.com/pion/webrtc/v4"
)

// VP8 fixtures, shaped like Chrome's: a payload descriptor with a 15-bit
// picture id, TL0PICIDX and TID/KEYIDX, then the VP8 payload header.
var (
	// vp8KeyHeader is the start of a 640x480 keyframe: frame tag (P=0),
	// start code 9d 01 2a, width 0x0280, height 0x01e0.
	vp8KeyHeader = []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01, 0x39, 0x6b}
	// vp8InterHeader is the start of an interframe (P=1).
	vp8InterHeader = []byte{0x31, 0x05, 0x00, 0x11, 0x22}
)

// vp8Payload builds a VP8 payload: start-of-partition flag, 15-bit picture
// id, TL0PICIDX, KEYIDX, and a key or inter frame header.
func vp8Payload(start bool, pictureID uint16, tl0 uint8, keyIdx uint8, key bool) []byte {
	b0 := byte(0x80) // X
	if start {
		b0 |= 0x10 // S, PID 0
	}
	p := []byte{b0, 0xf0, 0x80 | byte(pictureID>>8), byte(pictureID), tl0, 0x20 | keyIdx&0x1f}
	if key {
		return append(p, vp8KeyHeader...)
	}
	return append(p, vp8InterHeader...)
}

func TestIsKeyframe(t *testing.T) {
	tests := []struct {
		name    string
		mime    string
		payload []byte
		want    bool
	}{
		{"vp8 keyframe", webrtc.MimeTypeVP8, vp8Payload(true, 300, 1, 1, true), true},
		{"vp8 lowercase mime", "video/vp8", vp8Payload(true, 300, 1, 1, true), true},
		{"vp8 interframe", webrtc.MimeTypeVP8, vp8Payload(true, 301, 1, 1, false), false},
		{"vp8 keyframe continuation", webrtc.MimeTypeVP8, vp8Payload(false, 300, 1, 1, true), false},
		{"vp8 minimal descriptor keyframe", webrtc.MimeTypeVP8, append([]byte{0x10}, vp8KeyHeader...), true},
		{"vp8 7-bit picture id", webrtc.MimeTypeVP8, append([]byte{0x90, 0x80, 0x12}, vp8KeyHeader...), true},
		{"vp8 truncated", webrtc.MimeTypeVP8, []byte{0x90, 0x80}, false},
		{"vp8 empty", webrtc.MimeTypeVP8, nil, false},

		{"vp9 keyframe", webrtc.MimeTypeVP9, []byte{0x8a, 0x80, 0x01, 0x18, 0x00}, true},
		{"vp9 interframe", webrtc.MimeTypeVP9, []byte{0xc8, 0x80, 0x02, 0x00}, false},
		{"vp9 not frame start", webrtc.MimeTypeVP9, []byte{0x84, 0x80, 0x01, 0x00}, false},
		{"vp9 spatial layer 0", webrtc.MimeTypeVP9, []byte{0xa8, 0x05, 0x00, 0x07, 0x00}, true},
		{"vp9 spatial layer 1", webrtc.MimeTypeVP9, []byte{0xa8, 0x05, 0x02, 0x07, 0x00}, false},
		{"vp9 truncated", webrtc.MimeTypeVP9, []byte{0xa8}, false},

		{"h264 idr", webrtc.MimeTypeH264, []byte{0x65, 0x88, 0x84, 0x00}, true},
		{"h264 sps", webrtc.MimeTypeH264, []byte{0x67, 0x42, 0xc0, 0x1f}, true},
		{"h264 non-idr slice", webrtc.MimeTypeH264, []byte{0x41, 0x9a, 0x02}, false},
		{"h264 stap-a sps pps", webrtc.MimeTypeH264, []byte{0x78, 0x00, 0x04, 0x67, 0x42, 0xc0, 0x1f, 0x00, 0x02, 0x68, 0xce}, true},
		{"h264 stap-a pps idr", webrtc.MimeTypeH264, []byte{0x78, 0x00, 0x02, 0x68, 0xce, 0x00, 0x02, 0x65, 0x88}, true},
		{"h264 stap-a pps sei", webrtc.MimeTypeH264, []byte{0x78, 0x00, 0x02, 0x68, 0xce, 0x00, 0x02, 0x06, 0x05}, false},
		{"h264 stap-a truncated", webrtc.MimeTypeH264, []byte{0x78, 0x00, 0x10, 0x67}, false},
		{"h264 fu-a idr start", webrtc.MimeTypeH264, []byte{0x7c, 0x85, 0xb8, 0x00}, true},
		{"h264 fu-a idr middle", webrtc.MimeTypeH264, []byte{0x7c, 0x05, 0xb8, 0x00}, false},
		{"h264 fu-a non-idr start", webrtc.MimeTypeH264, []byte{0x5c, 0x81, 0x9a}, false},

		{"h265 idr", webrtc.MimeTypeH265, []byte{0x26, 0x01, 0xaf}, true},
		{"h265 vps", webrtc.MimeTypeH265, []byte{0x40, 0x01, 0x0c}, true},
		{"h265 trail", webrtc.MimeTypeH265, []byte{0x02, 0x01, 0xd0}, false},
		{"h265 aggregation with vps", webrtc.MimeTypeH265, []byte{0x60, 0x01, 0x00, 0x03, 0x40, 0x01, 0x0c}, true},
		{"h265 fu idr start", webrtc.MimeTypeH265, []byte{0x62, 0x01, 0x93, 0xaf}, true},
		{"h265 fu idr middle", webrtc.MimeTypeH265, []byte{0x62, 0x01, 0x13, 0xaf}, false},

		{"av1 new coded video sequence", webrtc.MimeTypeAV1, []byte{0x18, 0x0a, 0x0b}, true},
		{"av1 sequence header, W=1", webrtc.MimeTypeAV1, []byte{0x10, 0x0a, 0x0b}, true},
		{"av1 sequence header, W=2", webrtc.MimeTypeAV1, []byte{0x20, 0x02, 0x0a, 0x0b, 0x32, 0x00}, true},
		{"av1 frame", webrtc.MimeTypeAV1, []byte{0x10, 0x32, 0x00}, false},
		{"av1 frame, W=0", webrtc.MimeTypeAV1, []byte{0x00, 0x02, 0x32, 0x00}, false},
		{"av1 continuation", webrtc.MimeTypeAV1, []byte{0x90, 0x0a, 0x0b}, false},

		{"opus", webrtc.MimeTypeOpus, []byte{0xfc, 0xff, 0xfe}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsKeyframe(tc.mime, tc.payload); got != tc.want {
				t.Errorf("IsKeyframe(%s, % x) = %v, want %v", tc.mime, tc.payload, got, tc.want)
			}
		})
	}
}

func TestVP8KeyframeSize(t *testing.T) {
	tests := []struct {
		name         string
		payload      []byte
		wantW, wantH int
		wantOK       bool
	}{
		{"640x480", vp8Payload(true, 1, 0, 0, true), 640, 480, true},
		{"scale bits ignored", append([]byte{0x10}, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x45, 0xd0, 0x82), 1280, 720, true},
		{"interframe", vp8Payload(true, 1, 0, 0, false), 0, 0, false},
		{"bad start code", append([]byte{0x10}, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2b, 0x80, 0x02, 0xe0, 0x01), 0, 0, false},
		{"truncated", append([]byte{0x10}, vp8KeyHeader[:8]...), 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, h, ok := VP8KeyframeSize(tc.payload)
			if w != tc.wantW || h != tc.wantH || ok != tc.wantOK {
				t.Errorf("VP8KeyframeSize = %d, %d, %v; want %d, %d, %v", w, h, ok, tc.wantW, tc.wantH, tc.wantOK)
			}
		})
	}
}

func TestVP8DescriptorPatch(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		f    vp8Fields
		want []byte
	}{
		{
			name: "15-bit picture id, tl0, keyidx",
			in:   vp8Payload(true, 0x1234, 7, 3, false),
			f:    vp8Fields{pictureID: 0x7fff, tl0PicIdx: 0xff, keyIdx: 31},
			want: append([]byte{0x90, 0xf0, 0xff, 0xff, 0xff, 0x3f}, vp8InterHeader...),
		},
		{
			name: "7-bit picture id stays 7-bit",
			in:   []byte{0x90, 0x80, 0x12, 0x31, 0x00},
			f:    vp8Fields{pictureID: 0x0185},
			want: []byte{0x90, 0x80, 0x05, 0x31, 0x00},
		},
		{
			name: "no extension: nothing to patch",
			in:   []byte{0x10, 0x31, 0x00},
			f:    vp8Fields{pictureID: 9, tl0PicIdx: 9, keyIdx: 9},
			want: []byte{0x10, 0x31, 0x00},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := parseVP8Descriptor(tc.in)
			if !ok {
				t.Fatal("parse failed")
			}
			got := bytes.Clone(tc.in)
			d.patch(got, tc.f)
			if !bytes.Equal(got, tc.want) {
				t.Errorf("patched % x, want % x", got, tc.want)
			}
		})
	}
}

func TestLayerForRID(t *testing.T) {
	tests := []struct {
		rid    string
		want   int
		wantOK bool
	}{
		{"", LayerLow, true}, {"q", LayerLow, true}, {"0", LayerLow, true},
		{"h", LayerMedium, true}, {"1", LayerMedium, true},
		{"f", LayerHigh, true}, {"2", LayerHigh, true},
		{"x", LayerNone, false},
	}
	for _, tc := range tests {
		if got, ok := LayerForRID(tc.rid); got != tc.want || ok != tc.wantOK {
			t.Errorf("LayerForRID(%q) = %d, %v; want %d, %v", tc.rid, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestPickLayer(t *testing.T) {
	tests := []struct {
		name      string
		max       int
		available layerMask
		fallback  int
		want      int
	}{
		{"all available, want high", LayerHigh, 0b111, 0, LayerHigh},
		{"all available, want medium", LayerMedium, 0b111, 0, LayerMedium},
		{"high missing", LayerHigh, 0b011, 0, LayerMedium},
		{"only low", LayerHigh, 0b001, 2, LayerLow},
		{"wanted low missing: next higher", LayerLow, 0b110, 0, LayerMedium},
		{"nothing available", LayerMedium, 0, 2, 2},
	}
	for _, tc := range tests {
		if got := pickLayer(tc.max, tc.available, tc.fallback); got != tc.want {
			t.Errorf("%s: pickLayer = %d, want %d", tc.name, got, tc.want)
		}
	}
}
