package sfu

import (
	"sync/atomic"

	"github.com/pion/rtp"

	"github.com/sanke-edu/sanke/sfu/packetcache"
)

// audioHistory is how many upstream Opus frames a receiver keeps to wrap into RED (more than
// maxREDDistance: a late packet's frame may take a place).
const audioHistory = maxREDDistance + 2

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
	redPT  uint8 // its payload type (packets of another are Opus)
	opusPT uint8 // the publisher's Opus payload type (inner blocks of its RED)
	// want counts the down tracks wrapping at each distance (atomic: they change it).
	want [maxREDDistance + 1]atomic.Int32

	started  bool
	highest  uint16
	received uint64                   // bit k: upstream packet highest-k was received or recovered
	hist     [audioHistory]audioFrame // a ring, next is the oldest
	next     int
	earlier  [maxREDDistance]redFrame
	blocks   [MaxREDBlocks]REDBlock
	out      [maxREDDistance + 1][packetcache.MaxPacketSize]byte
	recHdr   rtp.Header
	recBuf   [packetcache.MaxPacketSize]byte
	recStats struct{ recovered, duplicates atomic.Uint64 }
	// frames and frameBytes count the upstream Opus frames and their bytes (primaries only),
	// for the Allocator to price each RED distance (see Allocator.capRED).
	frames, frameBytes atomic.Uint64
}

// newRedUplink returns the RED state of an audio receiver whose publisher sends RED (red) or
// Opus with payload type pt.
func newRedUplink(red bool, pt uint8) *redUplink {
	a := &redUplink{red: red, redPT: pt, opusPT: pt}
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
	media := len(in.payload) > 0 // else padding only: forwarded as it came
	red := media && a.isRED(in.header.PayloadType)
	if red {
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
		if red && gap > 1 {
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
	in.red = [maxREDDistance + 1][]byte{}
	if media {
		a.frames.Add(1)
		a.frameBytes.Add(uint64(len(in.primary)))
		a.keep(seq, in.header.Timestamp, in.primary)
		a.build(in, newest)
	}
	return true
}

// recover fans out the frames the redundant blocks of in (a RED packet after a gap) carry for
// the packets lost just before it, oldest first, and caches them as RED packets of their own.
// A block is a frame by its timestamp: one already kept is not recovered again (the gap may
// have been a padding-only packet). The others fill the missing sequence numbers from seq-1
// down, newest block first. It returns the recovered packets as bits k (seq-k).
func (a *redUplink) recover(l *upLayer, in *inPacket, nblocks int, fan func(*inPacket)) (recovered uint64) {
	seq := in.header.SequenceNumber
	var slots [MaxREDBlocks]struct {
		block int
		k     int
	}
	n, k := 0, 1
	for i := nblocks - 2; i >= 0 && k < int(seq-a.highest); i-- {
		b := a.blocks[i]
		if b.TSOffset == 0 || len(b.Data) == 0 || a.keptTS(in.header.Timestamp-uint32(b.TSOffset)) {
			continue
		}
		slots[n].block, slots[n].k = i, k
		n++
		k++
	}
	for j := n - 1; j >= 0; j-- {
		b, k := a.blocks[slots[j].block], slots[j].k
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

// keep remembers the frame data of upstream packet seq for later redundancy, in place of the
// oldest frame kept.
func (a *redUplink) keep(seq uint16, ts uint32, data []byte) {
	if len(data) > redMaxLength {
		return // never a redundant block
	}
	f := &a.hist[a.next]
	a.next = (a.next + 1) % audioHistory
	f.seq, f.ts, f.valid = seq, ts, true
	f.n = copy(f.data[:], data)
}

// keptTS reports whether a recent frame of timestamp ts is kept.
func (a *redUplink) keptTS(ts uint32) bool {
	for i := range a.hist {
		if f := &a.hist[i]; f.valid && f.ts == ts && uint16(a.highest-f.seq) < maxLateness {
			return true
		}
	}
	return false
}

// build fills in.red with the RED payloads of the distances some down track wants: the newest
// packet carries up to d of the kept frames before it (sequence numbers at most 64 back:
// padding-only packets hold none); a late or recovered one goes alone (its successors may
// have gone out already).
func (a *redUplink) build(in *inPacket, newest bool) {
	in.red = [maxREDDistance + 1][]byte{}
	seq, ts := in.header.SequenceNumber, in.header.Timestamp
	// The kept frames before seq, newest first.
	var back [audioHistory]*audioFrame
	m := 0
	if newest {
		for i := range a.hist {
			f := &a.hist[i]
			if behind := uint16(seq - f.seq); !f.valid || behind == 0 || behind > 64 {
				continue
			}
			j := m
			for ; j > 0 && int16(back[j-1].seq-f.seq) < 0; j-- {
				back[j] = back[j-1]
			}
			back[j] = f
			m++
		}
	}
	for d := range a.want {
		if a.want[d].Load() <= 0 {
			continue
		}
		earlier := a.earlier[:0]
		for i := min(d, m) - 1; i >= 0; i-- {
			earlier = append(earlier, redFrame{ts: back[i].ts, data: back[i].data[:back[i].n]})
		}
		if n, _ := encodeRED(a.out[d][:], a.opusPT, ts, in.primary, earlier); n > 0 {
			in.red[d] = a.out[d][:n]
		}
	}
}

// isRED reports whether a packet of payload type pt is RED. A RED publisher may send plain
// Opus packets on the same stream.
func (a *redUplink) isRED(pt uint8) bool {
	return a.red && pt == a.redPT
}

// primaryOf returns the Opus frame of a cached packet's payload (payload type pt): the
// payload itself, or its primary block when it is RED.
func (a *redUplink) primaryOf(payload []byte, pt uint8) ([]byte, bool) {
	if !a.isRED(pt) {
		return payload, true
	}
	data, _, ok := redPrimary(payload)
	return data, ok
}
