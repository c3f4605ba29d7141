package sfu

// vp8Descriptor is the parsed VP8 RTP payload descriptor (RFC 7741 section
// 4.2). Offsets are byte positions in the payload; 0 means the field is
// absent (offset 0 is always the mandatory first byte).
type vp8Descriptor struct {
	size      int   // descriptor length; the VP8 payload header follows
	start     bool  // S: first packet of a partition
	partition uint8 // PID

	pictureIDOff int
	pictureID    uint16
	pictureID15  bool // M: 15-bit picture id

	tl0Off    int
	tl0PicIdx uint8

	tkOff     int // the TID/Y/KEYIDX byte
	hasKeyIdx bool
	keyIdx    uint8
}

// parseVP8Descriptor parses the descriptor at the start of a VP8 payload.
// It reports false if the payload is too short to hold it, or holds nothing
// after it.
func parseVP8Descriptor(p []byte) (vp8Descriptor, bool) {
	var d vp8Descriptor
	if len(p) < 1 {
		return d, false
	}
	const (
		flagX = 0x80 // extension byte present
		flagS = 0x10
		flagI = 0x80 // in the extension byte: picture id present
		flagL = 0x40 // TL0PICIDX present
		flagT = 0x20 // TID present
		flagK = 0x10 // KEYIDX present
	)
	d.start = p[0]&flagS != 0
	d.partition = p[0] & 0x07
	i := 1
	if p[0]&flagX != 0 {
		if i >= len(p) {
			return d, false
		}
		ext := p[i]
		i++
		if ext&flagI != 0 {
			if i >= len(p) {
				return d, false
			}
			d.pictureIDOff = i
			if p[i]&0x80 != 0 {
				if i+1 >= len(p) {
					return d, false
				}
				d.pictureID15 = true
				d.pictureID = uint16(p[i]&0x7f)<<8 | uint16(p[i+1])
				i += 2
			} else {
				d.pictureID = uint16(p[i])
				i++
			}
		}
		if ext&flagL != 0 {
			if i >= len(p) {
				return d, false
			}
			d.tl0Off = i
			d.tl0PicIdx = p[i]
			i++
		}
		if ext&(flagT|flagK) != 0 {
			if i >= len(p) {
				return d, false
			}
			d.tkOff = i
			d.hasKeyIdx = ext&flagK != 0
			d.keyIdx = p[i] & 0x1f
			i++
		}
	}
	if i >= len(p) {
		return d, false
	}
	d.size = i
	return d, true
}

// isKeyframe reports whether payload (described by d) is the first packet of
// a VP8 keyframe: the start of partition 0 with the P bit of the frame tag
// clear.
func (d *vp8Descriptor) isKeyframe(payload []byte) bool {
	return d.start && d.partition == 0 && len(payload) > d.size && payload[d.size]&0x01 == 0
}

// vp8Fields are the descriptor values a forwarder rewrites.
type vp8Fields struct {
	pictureID uint16 // kept modulo 2^15
	tl0PicIdx uint8
	keyIdx    uint8 // modulo 2^5
}

// patch writes f into dst, a copy of the payload d was parsed from, in the
// same form (7- or 15-bit picture id) as the original.
func (d *vp8Descriptor) patch(dst []byte, f vp8Fields) {
	if d.pictureIDOff > 0 {
		if d.pictureID15 {
			dst[d.pictureIDOff] = 0x80 | byte(f.pictureID>>8)&0x7f
			dst[d.pictureIDOff+1] = byte(f.pictureID)
		} else {
			dst[d.pictureIDOff] = byte(f.pictureID) & 0x7f
		}
	}
	if d.tl0Off > 0 {
		dst[d.tl0Off] = f.tl0PicIdx
	}
	if d.hasKeyIdx {
		dst[d.tkOff] = dst[d.tkOff]&0xe0 | f.keyIdx&0x1f
	}
}

// VP8KeyframeSize returns the frame size coded in the first packet of a VP8
// keyframe: after the payload descriptor come the 3-byte frame tag, the start
// code 9d 01 2a and two little-endian 14-bit dimensions (RFC 6386 section
// 9.1). It reports false if payload is not such a packet.
func VP8KeyframeSize(payload []byte) (width, height int, ok bool) {
	d, ok := parseVP8Descriptor(payload)
	if !ok || !d.isKeyframe(payload) {
		return 0, 0, false
	}
	h := payload[d.size:]
	if len(h) < 10 || h[3] != 0x9d || h[4] != 0x01 || h[5] != 0x2a {
		return 0, 0, false
	}
	width = int(uint16(h[6])|uint16(h[7])<<8) & 0x3fff
	height = int(uint16(h[8])|uint16(h[9])<<8) & 0x3fff
	return width, height, true
}

// vp8Munger keeps a down track's VP8 picture id, TL0PICIDX and KEYIDX
// continuous when the forwarder switches between streams that number them
// independently: each switch moves the offsets so the first frame of the new
// stream follows the last frame sent.
type vp8Munger struct {
	pictureIDOffset uint16 // modulo 2^15
	tl0Offset       uint8
	keyIdxOffset    uint8 // modulo 2^5

	last vp8Fields // values of the newest packet sent
}

// relock moves the offsets so that d, the first packet after a switch,
// continues the numbering. first is true for the very first packet of the
// down track, which keeps its original values.
func (m *vp8Munger) relock(d *vp8Descriptor, first bool) {
	if first {
		*m = vp8Munger{}
		return
	}
	m.pictureIDOffset = (m.last.pictureID + 1 - d.pictureID) & 0x7fff
	m.tl0Offset = m.last.tl0PicIdx + 1 - d.tl0PicIdx
	m.keyIdxOffset = (m.last.keyIdx + 1 - d.keyIdx) & 0x1f
}

// identity reports whether munging currently changes nothing.
func (m *vp8Munger) identity() bool {
	return m.pictureIDOffset == 0 && m.tl0Offset == 0 && m.keyIdxOffset == 0
}

// munge returns the rewritten fields of d. newest is true for a packet that
// advances the stream (not a late one), whose values become the reference
// for the next switch.
func (m *vp8Munger) munge(d *vp8Descriptor, newest bool) vp8Fields {
	f := vp8Fields{
		pictureID: (d.pictureID + m.pictureIDOffset) & 0x7fff,
		tl0PicIdx: d.tl0PicIdx + m.tl0Offset,
		keyIdx:    (d.keyIdx + m.keyIdxOffset) & 0x1f,
	}
	if newest {
		m.last = f
	}
	return f
}
