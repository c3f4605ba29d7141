package bwe

import (
	"encoding/binary"
	"errors"
)

// RTCP packet types and formats of the feedback this package reads.
const (
	rtcpRTPFB   = 205 // transport layer feedback
	rtcpPSFB    = 206 // payload-specific feedback
	fmtTWCC     = 15  // RTPFB: transport-wide congestion control feedback
	fmtAFB      = 15  // PSFB: application layer feedback (REMB)
	twccHdrSize = 20  // RTCP header, sender and media SSRC, base, count, reference time, fb count
)

// TWCC packet status symbols.
const (
	statusNotReceived uint8 = iota
	statusSmallDelta
	statusLargeDelta
)

// deltaUnit is the resolution of TWCC receive deltas and refUnit of its reference time.
const (
	deltaUnit = 250_000    // ns
	refUnit   = 64_000_000 // ns
)

// ErrMalformed is returned for feedback that is not well formed.
var ErrMalformed = errors.New("bwe: malformed feedback")

// NextRTCP splits the first packet off a compound RTCP packet: it returns its payload type,
// its feedback message type (the header's count field), the packet and the rest. ok is
// false when buf holds no further well-formed packet.
func NextRTCP(buf []byte) (pt, fmtType uint8, pkt, rest []byte, ok bool) {
	if len(buf) < 4 || buf[0]>>6 != 2 {
		return 0, 0, nil, nil, false
	}
	n := (int(binary.BigEndian.Uint16(buf[2:])) + 1) * 4
	if n > len(buf) {
		return 0, 0, nil, nil, false
	}
	return buf[1], buf[0] & 0x1f, buf[:n], buf[n:], true
}

// IsTWCC reports whether the RTCP packet pkt (as NextRTCP returns it) is TWCC feedback.
func IsTWCC(pt, fmtType uint8) bool { return pt == rtcpRTPFB && fmtType == fmtTWCC }

// TWCCReader walks the packet statuses of one TWCC feedback packet
// (draft-holmer-rmcat-transport-wide-cc-extensions-01) without allocating: run-length
// and status vector chunks, one-byte and two-byte receive deltas.
type TWCCReader struct {
	// From the header.
	MediaSSRC uint32
	BaseSeq   uint16
	Count     uint16
	RefTime   uint32 // 24 bits, in 64 ms units
	FbCount   uint8

	chunks, deltas []byte
	seq            uint16
	left           int // statuses still to read
	// The chunk being read.
	chunk    uint16
	inChunk  int // statuses left in it
	vector   bool
	twoBit   bool
	position int
}

// Reset starts reading the TWCC packet pkt (one RTCP packet, header included).
func (r *TWCCReader) Reset(pkt []byte) error {
	*r = TWCCReader{}
	if len(pkt) < twccHdrSize || pkt[0]>>6 != 2 || pkt[1] != rtcpRTPFB || pkt[0]&0x1f != fmtTWCC {
		return ErrMalformed
	}
	if n := (int(binary.BigEndian.Uint16(pkt[2:])) + 1) * 4; n <= len(pkt) {
		pkt = pkt[:n]
		if pkt[0]&0x20 != 0 { // padding
			pad := int(pkt[n-1])
			if pad == 0 || pad > n-twccHdrSize {
				return ErrMalformed
			}
			pkt = pkt[:n-pad]
		}
	} else {
		return ErrMalformed
	}
	r.MediaSSRC = binary.BigEndian.Uint32(pkt[8:])
	r.BaseSeq = binary.BigEndian.Uint16(pkt[12:])
	r.Count = binary.BigEndian.Uint16(pkt[14:])
	r.RefTime = uint32(pkt[16])<<16 | uint32(pkt[17])<<8 | uint32(pkt[18])
	r.FbCount = pkt[19]
	// The receive deltas follow the chunks that cover Count statuses.
	body := pkt[twccHdrSize:]
	covered, i := 0, 0
	for covered < int(r.Count) {
		if i+2 > len(body) {
			return ErrMalformed
		}
		covered += chunkLen(binary.BigEndian.Uint16(body[i:]))
		i += 2
	}
	r.chunks, r.deltas = body[:i], body[i:]
	r.seq, r.left = r.BaseSeq, int(r.Count)
	return nil
}

// chunkLen returns how many statuses a packet status chunk holds.
func chunkLen(c uint16) int {
	switch {
	case c&0x8000 == 0:
		return int(c & 0x1fff) // run length
	case c&0x4000 == 0:
		return 14 // fourteen one-bit symbols
	default:
		return 7 // seven two-bit symbols
	}
}

// Next returns the next packet's sequence number, its status and, when received, its
// receive delta from the previous received packet (the first: from the reference time) in
// nanoseconds. ok is false after the last status; err is set if the packet ends early.
func (r *TWCCReader) Next() (seq uint16, received bool, delta int64, ok bool, err error) {
	if r.left == 0 {
		return 0, false, 0, false, nil
	}
	for r.inChunk == 0 {
		if len(r.chunks) < 2 {
			return 0, false, 0, false, ErrMalformed
		}
		r.chunk = binary.BigEndian.Uint16(r.chunks)
		r.chunks = r.chunks[2:]
		r.inChunk = chunkLen(r.chunk)
		r.vector, r.twoBit, r.position = r.chunk&0x8000 != 0, r.chunk&0x4000 != 0, 0
	}
	var sym uint8
	switch {
	case !r.vector:
		sym = uint8(r.chunk>>13) & 3
	case r.twoBit:
		sym = uint8(r.chunk>>(12-2*r.position)) & 3
	default:
		sym = uint8(r.chunk>>(13-r.position)) & 1
	}
	r.position++
	r.inChunk--
	r.left--
	seq = r.seq
	r.seq++
	switch sym {
	case statusSmallDelta:
		if len(r.deltas) < 1 {
			return 0, false, 0, false, ErrMalformed
		}
		delta = int64(r.deltas[0]) * deltaUnit
		r.deltas = r.deltas[1:]
		return seq, true, delta, true, nil
	case statusLargeDelta:
		if len(r.deltas) < 2 {
			return 0, false, 0, false, ErrMalformed
		}
		delta = int64(int16(binary.BigEndian.Uint16(r.deltas))) * deltaUnit
		r.deltas = r.deltas[2:]
		return seq, true, delta, true, nil
	}
	return seq, false, 0, true, nil
}

// ParseREMB returns the bitrate of a REMB packet (one RTCP packet, header included).
func ParseREMB(pkt []byte) (bps uint64, ok bool) {
	if len(pkt) < 20 || pkt[1] != rtcpPSFB || pkt[0]&0x1f != fmtAFB || string(pkt[12:16]) != "REMB" {
		return 0, false
	}
	exp := pkt[17] >> 2
	mantissa := uint64(pkt[17]&3)<<16 | uint64(pkt[18])<<8 | uint64(pkt[19])
	if exp > 46 {
		return 0, false
	}
	return mantissa << exp, true
}
