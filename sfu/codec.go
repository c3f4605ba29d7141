package sfu

import (
	"strings"

	"github.com/pion/webrtc/v4"
)

// codecType is a codec the data path knows how to inspect. It is resolved
// once per track from the MIME type, so the per-packet path never compares
// strings.
type codecType uint8

const (
	codecOther codecType = iota
	codecVP8
	codecVP9
	codecH264
	codecH265
	codecAV1
)

// codecTypeOf resolves a MIME type such as "video/VP8" (case-insensitive).
func codecTypeOf(mimeType string) codecType {
	for _, c := range []struct {
		mime string
		typ  codecType
	}{
		{webrtc.MimeTypeVP8, codecVP8},
		{webrtc.MimeTypeVP9, codecVP9},
		{webrtc.MimeTypeH264, codecH264},
		{webrtc.MimeTypeH265, codecH265},
		{webrtc.MimeTypeAV1, codecAV1},
	} {
		if strings.EqualFold(mimeType, c.mime) {
			return c.typ
		}
	}
	return codecOther
}

// IsKeyframe reports whether payload, the payload of one RTP packet of the
// given codec, starts a keyframe: a point where a decoder can begin, so a
// forwarder can switch to that stream there. VP8, VP9, H.264, H.265 and AV1
// (best effort) are understood; any other MIME type gives false.
func IsKeyframe(mimeType string, payload []byte) bool {
	return isKeyframe(codecTypeOf(mimeType), payload)
}

// isKeyframe is IsKeyframe with the codec already resolved.
func isKeyframe(c codecType, payload []byte) bool {
	switch c {
	case codecVP8:
		d, ok := parseVP8Descriptor(payload)
		return ok && d.isKeyframe(payload)
	case codecVP9:
		return vp9IsKeyframe(payload)
	case codecH264:
		return h264IsKeyframe(payload)
	case codecH265:
		return h265IsKeyframe(payload)
	case codecAV1:
		return av1IsKeyframe(payload)
	}
	return false
}

// vp9IsKeyframe reads the VP9 payload descriptor (RFC 9628): a keyframe
// packet starts a frame (B), is not inter-predicted (P clear) and belongs to
// spatial layer 0.
func vp9IsKeyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	const (
		flagI = 0x80 // picture id present
		flagP = 0x40 // inter-picture predicted
		flagL = 0x20 // layer indices present
		flagB = 0x08 // start of frame
	)
	b := p[0]
	if b&flagP != 0 || b&flagB == 0 {
		return false
	}
	i := 1
	if b&flagI != 0 {
		if i >= len(p) {
			return false
		}
		if p[i]&0x80 != 0 { // 15-bit picture id
			i++
		}
		i++
	}
	if b&flagL != 0 {
		if i >= len(p) {
			return false
		}
		if sid := (p[i] >> 1) & 0x07; sid != 0 {
			return false
		}
	}
	return true
}

// H.264 NAL unit types that matter here (RFC 6184).
const (
	h264NALIDR   = 5
	h264NALSPS   = 7
	h264NALSTAPA = 24
	h264NALFUA   = 28
)

// h264IsKeyframe finds an IDR slice or an SPS (which precedes the IDR) in a
// single NAL unit packet, a STAP-A aggregate, or the first fragment of an
// FU-A.
func h264IsKeyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	isKey := func(t byte) bool { return t == h264NALIDR || t == h264NALSPS }
	switch t := p[0] & 0x1f; t {
	case h264NALSTAPA:
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			i += 2
			if size == 0 || i+size > len(p) {
				return false
			}
			if isKey(p[i] & 0x1f) {
				return true
			}
			i += size
		}
		return false
	case h264NALFUA:
		return len(p) >= 2 && p[1]&0x80 != 0 && isKey(p[1]&0x1f)
	default:
		return isKey(t)
	}
}

// H.265 NAL unit types that matter here (RFC 7798).
const (
	h265NALIRAPFirst = 16 // BLA_W_LP
	h265NALIRAPLast  = 21 // CRA_NUT
	h265NALVPS       = 32
	h265NALSPS       = 33
	h265NALAP        = 48
	h265NALFU        = 49
)

// h265IsKeyframe finds an IRAP picture or its VPS/SPS in a single NAL unit
// packet, an aggregation packet (without DONL) or the first fragment of a
// fragmentation unit.
func h265IsKeyframe(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	isKey := func(t byte) bool {
		return (t >= h265NALIRAPFirst && t <= h265NALIRAPLast) || t == h265NALVPS || t == h265NALSPS
	}
	switch t := (p[0] >> 1) & 0x3f; t {
	case h265NALAP:
		for i := 2; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			i += 2
			if size == 0 || i+size > len(p) {
				return false
			}
			if isKey((p[i] >> 1) & 0x3f) {
				return true
			}
			i += size
		}
		return false
	case h265NALFU:
		return len(p) >= 3 && p[2]&0x80 != 0 && isKey(p[2]&0x3f)
	default:
		return isKey(t)
	}
}

// av1SequenceHeaderOBU is the OBU type of a sequence header, which every
// AV1 keyframe sent by WebRTC encoders is preceded by.
const av1SequenceHeaderOBU = 1

// av1IsKeyframe reads the AV1 aggregation header (AV1 RTP payload format
// section 4.4): N marks the first packet of a new coded video sequence. As a
// best effort it also accepts a packet whose first OBU element is a sequence
// header.
func av1IsKeyframe(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	const (
		flagZ = 0x80 // first OBU element continues one from the last packet
		flagN = 0x08 // new coded video sequence
	)
	agg := p[0]
	if agg&flagN != 0 {
		return true
	}
	if agg&flagZ != 0 {
		return false
	}
	i := 1
	if w := (agg >> 4) & 0x03; w != 1 {
		// Every element but the last of a W-counted packet, and every
		// element when W is 0, starts with its LEB128 length.
		_, n := leb128(p[i:])
		if n == 0 {
			return false
		}
		i += n
	}
	if i >= len(p) {
		return false
	}
	return (p[i]>>3)&0x0f == av1SequenceHeaderOBU
}

// leb128 decodes an unsigned LEB128 value and returns it with the number of
// bytes read, 0 if b holds no complete value.
func leb128(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 8; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}
