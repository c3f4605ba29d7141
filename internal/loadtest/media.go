package loadtest

import (
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
)

// Every RTP payload the generator sends ends with a 24-byte trailer that survives any SFU
// (which rewrites headers and, for VP8, the payload descriptor, but not the rest):
//
//	[0:4)   CRC-32C of the body (the payload after the VP8 descriptor, before the trailer)
//	[4:12)  send time, nanoseconds on the generator's monotonic clock
//	[12:16) packet number within the publisher's layer
//	[16:18) generator track index
//	[18]    simulcast layer (0 = q, 1 = h, 2 = f; 0 for audio)
//	[19]    flags (bit 0: first packet of a keyframe)
//	[20:24) magic "SNKL"
//
// Subscribers in the same process read it to measure publish -> receive latency with one
// clock, to count packets by layer, and to check that the body arrived intact and on the
// right track.
const (
	trailerSize  = 24
	trailerMagic = 0x534e4b4c
	flagKeyframe = 0x01
)

// maxPayload is the RTP payload size the packetizer fills (like browsers' ~1200-byte packets).
const maxPayload = 1180

// vp8DescriptorSize is the payload descriptor the generator writes: X, I (15-bit picture
// id), L (TL0PICIDX) and T (TID 0), as Chrome does for simulcast.
const vp8DescriptorSize = 6

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// trailer is the decoded form of a payload trailer.
type trailer struct {
	sendNs int64
	seq    uint32
	track  uint16
	layer  uint8
	flags  uint8
}

// sealTrailer writes the checksum of body and the magic into t, the last trailerSize bytes
// of a payload. stampTrailer fills the rest just before sending.
func sealTrailer(t, body []byte) {
	binary.BigEndian.PutUint32(t[0:4], crc32.Checksum(body, crcTable))
	binary.BigEndian.PutUint32(t[20:24], trailerMagic)
}

// stampTrailer writes the per-send fields of tr into t.
func stampTrailer(t []byte, tr trailer) {
	binary.BigEndian.PutUint64(t[4:12], uint64(tr.sendNs))
	binary.BigEndian.PutUint32(t[12:16], tr.seq)
	binary.BigEndian.PutUint16(t[16:18], tr.track)
	t[18] = tr.layer
	t[19] = tr.flags
}

// payloadResult classifies a received payload.
type payloadResult int

const (
	payloadOK      payloadResult = iota
	payloadForeign               // no generator trailer
	payloadCorrupt               // trailer present but the body or descriptor is damaged
)

// checkPayload validates a received payload and decodes its trailer.
func checkPayload(p []byte, video bool) (trailer, payloadResult) {
	if len(p) < trailerSize || binary.BigEndian.Uint32(p[len(p)-4:]) != trailerMagic {
		return trailer{}, payloadForeign
	}
	t := p[len(p)-trailerSize:]
	start := 0
	if video {
		n, ok := vp8DescriptorLen(p)
		if !ok || n > len(p)-trailerSize {
			return trailer{}, payloadCorrupt
		}
		start = n
	}
	if crc32.Checksum(p[start:len(p)-trailerSize], crcTable) != binary.BigEndian.Uint32(t[0:4]) {
		return trailer{}, payloadCorrupt
	}
	return trailer{
		sendNs: int64(binary.BigEndian.Uint64(t[4:12])),
		seq:    binary.BigEndian.Uint32(t[12:16]),
		track:  binary.BigEndian.Uint16(t[16:18]),
		layer:  t[18],
		flags:  t[19],
	}, payloadOK
}

// vp8DescriptorLen returns the length of the VP8 payload descriptor at the start of p
// (RFC 7741 section 4.2).
func vp8DescriptorLen(p []byte) (int, bool) {
	if len(p) < 1 {
		return 0, false
	}
	n := 1
	if p[0]&0x80 == 0 {
		return n, true
	}
	if len(p) < 2 {
		return 0, false
	}
	ext := p[1]
	n = 2
	if ext&0x80 != 0 { // I: picture id, 7 or 15 bits
		if len(p) <= n {
			return 0, false
		}
		if p[n]&0x80 != 0 {
			n += 2
		} else {
			n++
		}
	}
	if ext&0x40 != 0 { // L: TL0PICIDX
		n++
	}
	if ext&0x30 != 0 { // T or K: TID/Y/KEYIDX byte
		n++
	}
	if n > len(p) {
		return 0, false
	}
	return n, true
}

// rtpInfo is what the subscriber needs from an RTP header.
type rtpInfo struct {
	seq          uint16
	ts           uint32
	ssrc         uint32
	marker       bool
	payloadStart int
	payloadEnd   int
}

// parseRTP reads the fixed header, skips CSRCs and the extension, and strips padding.
func parseRTP(b []byte) (rtpInfo, bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return rtpInfo{}, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < off+4 {
			return rtpInfo{}, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:off+4]))
	}
	end := len(b)
	if b[0]&0x20 != 0 {
		if end == 0 {
			return rtpInfo{}, false
		}
		pad := int(b[end-1])
		if pad == 0 || pad > end-off {
			return rtpInfo{}, false
		}
		end -= pad
	}
	if off > end {
		return rtpInfo{}, false
	}
	return rtpInfo{
		seq:          binary.BigEndian.Uint16(b[2:4]),
		ts:           binary.BigEndian.Uint32(b[4:8]),
		ssrc:         binary.BigEndian.Uint32(b[8:12]),
		marker:       b[1]&0x80 != 0,
		payloadStart: off,
		payloadEnd:   end,
	}, true
}

// filler is the pseudo-random content frames are cut from (the SFU does not decode, and
// random bytes keep any accidental pattern matching honest).
type filler []byte

func newFiller(seed uint64) filler {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, 64<<10)
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}

// fill copies pseudo-random bytes into dst, starting at an offset derived from salt.
func (f filler) fill(dst []byte, salt uint32) {
	off := int(salt*2654435761) % (len(f) / 2)
	for len(dst) > 0 {
		n := copy(dst, f[off:])
		dst = dst[n:]
		off = 0
	}
}

// vp8Packetizer turns synthetic VP8 frames of one simulcast layer into RTP payloads with
// valid payload descriptors (continuous picture id and TL0PICIDX) and, on keyframes, a valid
// VP8 keyframe header carrying the layer's dimensions.
type vp8Packetizer struct {
	width, height int
	pictureID     uint16 // 15 bits
	tl0           uint8
	fill          filler
	buf           [maxPayload]byte
}

// frame packetizes a frame of size bytes of VP8 data and calls emit for each payload, in
// order; the last one has marker set. The payload (trailer sealed, not stamped) is only valid
// during the call.
func (v *vp8Packetizer) frame(key bool, size int, emit func(payload []byte, marker bool)) {
	capacity := maxPayload - vp8DescriptorSize - trailerSize
	if size < 10 {
		size = 10
	}
	npkts := (size + capacity - 1) / capacity
	v.pictureID = (v.pictureID + 1) & 0x7fff
	v.tl0++
	for i := range npkts {
		chunk := size / npkts
		if i < size%npkts {
			chunk++
		}
		p := v.buf[:vp8DescriptorSize+chunk+trailerSize]
		p[0] = 0x80 // X
		if i == 0 {
			p[0] |= 0x10 // S, partition 0
		}
		p[1] = 0xe0 // I, L, T
		p[2] = 0x80 | byte(v.pictureID>>8)
		p[3] = byte(v.pictureID)
		p[4] = v.tl0
		p[5] = 0x00 // TID 0, Y 0
		body := p[vp8DescriptorSize : vp8DescriptorSize+chunk]
		v.fill.fill(body, uint32(v.pictureID)<<8|uint32(i))
		if i == 0 {
			writeVP8Header(body, key, size, v.width, v.height)
		}
		sealTrailer(p[len(p)-trailerSize:], body)
		emit(p, i == npkts-1)
	}
}

// writeVP8Header writes the frame tag (RFC 6386 section 9.1) and, for a keyframe, the start
// code and dimensions into b (at least 10 bytes).
func writeVP8Header(b []byte, key bool, size, width, height int) {
	firstPart := min(size/2, 0x7ffff)
	tag := uint32(1<<4) | uint32(firstPart)<<5 // show_frame, version 0
	if !key {
		tag |= 1 // P: inter frame
	}
	b[0], b[1], b[2] = byte(tag), byte(tag>>8), byte(tag>>16)
	if key {
		b[3], b[4], b[5] = 0x9d, 0x01, 0x2a
		binary.LittleEndian.PutUint16(b[6:8], uint16(width)&0x3fff)
		binary.LittleEndian.PutUint16(b[8:10], uint16(height)&0x3fff)
	}
}

// opusPayload builds one synthetic Opus packet of size bytes (trailer included): a TOC byte
// (config 15: hybrid fullband 20 ms, mono, one frame) and filler.
func opusPayload(dst []byte, size int, fill filler, salt uint32) []byte {
	if size < trailerSize+2 {
		size = trailerSize + 2
	}
	p := dst[:size]
	body := p[:size-trailerSize]
	fill.fill(body, salt)
	body[0] = 0x78
	sealTrailer(p[size-trailerSize:], body)
	return p
}
