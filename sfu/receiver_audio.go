package sfu

import (
	"sync/atomic"

	"github.com/pion/rtp"

	"github.com/sanke-edu/sanke/sfu/packetcache"
)

// audioHistory is how many upstream Opus frames a receiver keeps to wrap into RED (a power of
// two above maxREDDistance).
const audioHistory = 4

// audioFrame is one upstream Opus frame kept for RED.
type audioFrame struct {
	seq   uint16
	ts    uint32
	valid bool
	n     int
	data  [redMaxLength]byte // longer frames are never redundant blocks
}

// redUplink is an audio receiver's RED work, done once per upstream packet before the
// fan-out so that every down track only picks a slice: the primary Opus frame of a
// publisher's RED packet (and the frames its redundancy recovers when upstream lost some),
// and the RED payloads of each distance some down track wraps at. Only the receive loop of
// the track's one layer touches it, except want.
type redUplink struct {
	red    bool  // the publisher sends RED
	opusPT uint8 // the publisher's Opus payload type (inner blocks of its RED)
	// want counts the down tracks wrapping at each distance (atomic: they change it).
	want [maxREDDistance + 1]atomic.Int32

	started  bool
	highest  uint16
	received uint64 // bit k: upstream packet highest-k was received or recovered
	hist     [audioHistory]audioFrame
	earlier  [maxREDDistance]redFrame
	blocks   [MaxREDBlocks]REDBlock
	out      [maxREDDistance + 1][packetcache.MaxPacketSize]byte
	recHdr   rtp.Header
	recBuf   [packetcache.MaxPacketSize]byte
	recStats struct{ recovered, duplicates atomic.Uint64 }
}

// newRedUplink returns the RED state of an audio receiver whose publisher sends RED (red) or
// Opus with payload type pt.
func newRedUplink(red bool, pt uint8) *redUplink {
	a := &redUplink{red: red, opusPT: pt}
	if red {
		a.opusPT = 111 // until the first packet says
	}
	return a
}

// wantDistance moves one down track's wrapping distance from old to d (-1: none).
func (a *redUplink) wantDistance(old, d int) {
	if old >= 0 {
		a.want[old].Add(-1)
	}
	if d >= 0 {
		a.want[d].Add(1)
	}
}

// handle is the audio part of the receive path of one upstream packet in: it finds the
// primary, fans out first the frames RED recovers for packets upstream lost (fan), keeps the
// history and builds the RED payloads down tracks want. It returns false when in must not be
// forwarded (malformed RED, a duplicate of what was received or recovered).
func (a *redUplink) handle(l *upLayer, in *inPacket, fan func(*inPacket)) bool {
	seq := in.header.SequenceNumber
	nblocks := 1
	in.primary = in.payload
	in.redPT = a.opusPT
	if a.red {
		n, err := ParseRED(in.payload, a.blocks[:])
		if err != nil {
			return false
		}
		nblocks = n
		in.primary = a.blocks[n-1].Data
		a.opusPT = a.blocks[n-1].PayloadType
		in.redPT = a.opusPT
	}
	newest := !a.started || int16(seq-a.highest) > 0
	switch {
	case !a.started:
		a.started, a.highest, a.received = true, seq, 1
	case newest:
		gap := int(seq - a.highest)
		var recovered uint64
		if a.red && gap > 1 {
			recovered = a.recover(l, in, nblocks, fan)
		}
		if gap >= 64 {
			a.received = 0
		} else {
			a.received <<= gap
		}
		a.received |= 1 | recovered
		a.highest = seq
	default:
		behind := uint(a.highest - seq)
		if behind >= 64 || a.received&(1<<behind) != 0 {
			a.recStats.duplicates.Add(1)
			return false
		}
		a.received |= 1 << behind
	}
	a.keep(seq, in.header.Timestamp, in.primary)
	a.build(in, newest)
	return true
}

// recover fans out the frames the redundant blocks of in (a RED packet after a gap) carry for
// the packets lost just before it, oldest first, and caches them as RED packets of their own.
// Block k back from the primary is the frame of sequence number seq-k. It returns the
// recovered packets as bits k.
func (a *redUplink) recover(l *upLayer, in *inPacket, nblocks int, fan func(*inPacket)) (recovered uint64) {
	seq := in.header.SequenceNumber
	for k := min(int(seq-a.highest)-1, nblocks-1); k >= 1; k-- {
		b := a.blocks[nblocks-1-k]
		if b.TSOffset == 0 || len(b.Data) == 0 {
			continue
		}
		h := &a.recHdr
		*h = rtp.Header{Version: 2, PayloadType: in.header.PayloadType, SequenceNumber: seq - uint16(k),
			Timestamp: in.header.Timestamp - uint32(b.TSOffset), SSRC: in.header.SSRC, CSRC: h.CSRC[:0],
			Extensions: h.Extensions[:0]}
		hn, err := h.MarshalTo(a.recBuf[:])
		if err != nil || hn+1+len(b.Data) > len(a.recBuf) {
			continue
		}
		a.recBuf[hn] = b.PayloadType & 0x7f // a RED packet with only a primary, like the cache's others
		n := hn + 1 + copy(a.recBuf[hn+1:], b.Data)
		l.cache.Add(h.SequenceNumber, a.recBuf[:n])
		a.recStats.recovered.Add(1)
		rec := inPacket{layer: in.layer, header: h, payload: a.recBuf[hn:n], primary: a.recBuf[hn+1 : n],
			redPT: b.PayloadType, arrival: in.arrival, recovered: true}
		a.keep(rec.header.SequenceNumber, rec.header.Timestamp, rec.primary)
		a.build(&rec, false)
		fan(&rec)
		recovered |= 1 << k
	}
	return recovered
}

// keep remembers frame data of upstream packet seq for later redundancy.
func (a *redUplink) keep(seq uint16, ts uint32, data []byte) {
	f := &a.hist[seq%audioHistory]
	f.seq, f.ts = seq, ts
	f.valid = len(data) <= redMaxLength
	if f.valid {
		f.n = copy(f.data[:], data)
	}
}

// frame returns the kept frame of seq, nil if it is not kept.
func (a *redUplink) frame(seq uint16) *audioFrame {
	f := &a.hist[seq%audioHistory]
	if !f.valid || f.seq != seq {
		return nil
	}
	return f
}

// build fills in.red with the RED payloads of the distances some down track wants: the newest
// packet carries the frames before it that are kept; a late or recovered one goes alone (its
// successors may have gone out already).
func (a *redUplink) build(in *inPacket, newest bool) {
	in.red = [maxREDDistance + 1][]byte{}
	seq, ts := in.header.SequenceNumber, in.header.Timestamp
	for d := range a.want {
		if a.want[d].Load() <= 0 {
			continue
		}
		earlier := a.earlier[:0]
		if newest {
			for k := d; k >= 1; k-- {
				if f := a.frame(seq - uint16(k)); f != nil {
					earlier = append(earlier, redFrame{ts: f.ts, data: f.data[:f.n]})
				}
			}
		}
		if n, _ := encodeRED(a.out[d][:], a.opusPT, ts, in.primary, earlier); n > 0 {
			in.red[d] = a.out[d][:n]
		}
	}
}

// primaryOf returns the Opus frame of a cached packet's payload: the payload itself, or its
// primary block when the publisher sends RED.
func (a *redUplink) primaryOf(payload []byte) ([]byte, bool) {
	if !a.red {
		return payload, true
	}
	data, _, ok := redPrimary(payload)
	return data, ok
}
