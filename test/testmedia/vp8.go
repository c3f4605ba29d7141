package testmedia

// VP8 frame header layout (RFC 6386, section 9.1): a 3-byte little-endian frame tag whose bit 0
// is 0 for a keyframe (bits 1-3 version, bit 4 show_frame, bits 5-23 size of the first
// partition), then, for keyframes only, the start code 9d 01 2a and two little-endian 16-bit
// words whose low 14 bits are the width and the height (the top 2 bits are scaling modes).

const (
	vp8TagSize        = 3
	vp8KeyframeHeader = 10 // tag + start code + width + height
)

// IsVP8Keyframe reports whether frame (a whole VP8 frame, or the first bytes of one, such as
// the payload of the first RTP packet of a frame after its payload descriptor) is a keyframe.
func IsVP8Keyframe(frame []byte) bool {
	if len(frame) < vp8TagSize+3 {
		return false
	}
	return frame[0]&0x01 == 0 && frame[3] == 0x9d && frame[4] == 0x01 && frame[5] == 0x2a
}

// VP8FrameSize returns the frame size coded in a VP8 keyframe header. ok is false when frame
// is not a keyframe or is too short to hold the header.
func VP8FrameSize(frame []byte) (w, h int, ok bool) {
	if len(frame) < vp8KeyframeHeader || !IsVP8Keyframe(frame) {
		return 0, 0, false
	}
	w = int(uint16(frame[6])|uint16(frame[7])<<8) & 0x3fff
	h = int(uint16(frame[8])|uint16(frame[9])<<8) & 0x3fff
	if w == 0 || h == 0 {
		return 0, 0, false
	}
	return w, h, true
}
