package sfu

import (
	"errors"
	"strings"

	"github.com/pion/webrtc/v4"
)

// RED (RFC 2198) carries, in one RTP payload, the current audio frame (the primary block)
// after copies of earlier ones (redundant blocks), so a receiver recovers a lost packet from
// the next ones without a round trip. Layout: one 4-byte header per redundant block (F=1, block
// payload type, 14-bit timestamp offset back from the packet's timestamp, 10-bit length),
// one 1-byte header for the primary (F=0, payload type), then the blocks' data in the same
// order, oldest first.

// MimeTypeRED is the MIME type of RFC 2198 redundant audio.
const MimeTypeRED = "audio/red"

const (
	// MaxREDBlocks is the most blocks (redundant ones and the primary) ParseRED reads.
	MaxREDBlocks = 8
	// maxREDDistance is the most redundant blocks Sanke puts in a packet it wraps: 5 frames
	// (100 ms of Opus) cover 20% random loss to 0.01% and most of the 50 ms bursts of a
	// rural link (3 frames left 4-7% of the audio concealed at 10% loss in such bursts).
	maxREDDistance = 5
	// redMaxOffset and redMaxLength are the header fields' limits: a redundant block
	// further back than 2^14 ticks (341 ms at 48 kHz) or longer than 1023 bytes cannot be
	// described and is left out.
	redMaxOffset = 1<<14 - 1
	redMaxLength = 1<<10 - 1
	// redMaxPayload bounds the RED payloads Sanke builds, so that a packet with its RTP
	// header and SRTP tag stays within 1200 bytes (the MTU every path carries): redundant
	// blocks that do not fit are dropped, oldest first.
	redMaxPayload = 1200 - 12 - 16
)

// ErrBadRED is returned by ParseRED for a payload that is not valid RFC 2198.
var ErrBadRED = errors.New("sfu: malformed RED payload")

// REDBlock is one block of a RED payload.
type REDBlock struct {
	// PayloadType is the block's payload type (the codec's, e.g. Opus 111).
	PayloadType uint8
	// TSOffset is how many clock ticks before the packet's timestamp the block's frame
	// starts; 0 for the primary.
	TSOffset uint16
	// Data is the block's payload, a sub-slice of the parsed payload.
	Data []byte
}

// ParseRED splits a RED payload into blocks, oldest first, the primary last, without
// copying or allocating: the blocks' Data point into payload. It fills at most len(blocks)
// blocks, keeping the newest ones (the primary always) when the payload has more, and
// returns how many it filled.
func ParseRED(payload []byte, blocks []REDBlock) (int, error) {
	if len(blocks) == 0 {
		return 0, ErrBadRED
	}
	// Count the headers first: the data starts after the last one.
	nred, hdr := 0, 0
	for {
		if hdr >= len(payload) {
			return 0, ErrBadRED
		}
		if payload[hdr]&0x80 == 0 {
			break
		}
		if hdr+4 > len(payload) {
			return 0, ErrBadRED
		}
		nred++
		hdr += 4
	}
	data := hdr + 1
	skip := max(nred+1-len(blocks), 0) // oldest blocks that do not fit in blocks
	n := 0
	for i := range nred {
		h := payload[4*i : 4*i+4]
		length := int(h[2]&0x03)<<8 | int(h[3])
		if data+length > len(payload) {
			return 0, ErrBadRED
		}
		if i >= skip {
			blocks[n] = REDBlock{PayloadType: h[0] & 0x7f, TSOffset: uint16(h[1])<<6 | uint16(h[2])>>2,
				Data: payload[data : data+length : data+length]}
			n++
		}
		data += length
	}
	blocks[n] = REDBlock{PayloadType: payload[hdr] & 0x7f, Data: payload[data:len(payload):len(payload)]}
	return n + 1, nil
}

// redPrimary returns the primary block of a RED payload (its data and payload type) without
// parsing the redundant blocks' fields.
func redPrimary(payload []byte) (data []byte, pt uint8, ok bool) {
	var b [1]REDBlock
	if _, err := ParseRED(payload, b[:]); err != nil {
		return nil, 0, false
	}
	return b[0].Data, b[0].PayloadType, true
}

// redFrame is an earlier frame that may go into a RED payload as a redundant block.
type redFrame struct {
	ts   uint32 // RTP timestamp of the frame
	data []byte
}

// encodeRED writes into dst a RED payload of primary (payload type pt, timestamp ts) after as
// many of the earlier frames (oldest first) as the header limits and redMaxPayload allow:
// a frame too old (offset beyond 14 bits, or not before ts), too long (over 1023 bytes) or
// that would not fit is left out, the oldest first. It returns the payload's length and how
// many redundant blocks it holds; 0, 0 when dst cannot hold even the primary.
func encodeRED(dst []byte, pt uint8, ts uint32, primary []byte, earlier []redFrame) (n, blocks int) {
	limit := max(redMaxPayload, 1+len(primary)) // the primary alone always goes
	size := 1 + len(primary)
	first := len(earlier) // the oldest frame used
	for i := len(earlier) - 1; i >= 0; i-- {
		f := earlier[i]
		off := ts - f.ts
		if off == 0 || off > redMaxOffset || len(f.data) > redMaxLength || f.data == nil {
			break // older ones are further back still
		}
		if size+4+len(f.data) > limit {
			break
		}
		size += 4 + len(f.data)
		first = i
	}
	if size > len(dst) {
		return 0, 0
	}
	used := earlier[first:]
	w := 0
	for _, f := range used {
		off, l := ts-f.ts, len(f.data)
		dst[w] = 0x80 | pt&0x7f
		dst[w+1] = byte(off >> 6)
		dst[w+2] = byte(off<<2) | byte(l>>8)
		dst[w+3] = byte(l)
		w += 4
	}
	dst[w] = pt & 0x7f
	w++
	for _, f := range used {
		w += copy(dst[w:], f.data)
	}
	w += copy(dst[w:], primary)
	return w, len(used)
}

// setREDPayloadTypes rewrites the payload type of every block header of a RED payload in
// place (a subscriber whose Opus payload type differs from the publisher's). It stops at a
// malformed header.
func setREDPayloadTypes(payload []byte, pt uint8) {
	for i := 0; i < len(payload); i += 4 {
		f := payload[i] & 0x80
		payload[i] = f | pt&0x7f
		if f == 0 {
			return
		}
	}
}

// isRED reports whether c is RFC 2198 redundant audio.
func isRED(c webrtc.RTPCodecParameters) bool {
	return strings.EqualFold(c.MimeType, MimeTypeRED)
}
