package sfu

// sentPacket records how a down track produced one output sequence number,
// so a NACK for it can be answered from the receiver's cache with the same
// rewriting. Its fields are ordered to pack into 24 bytes (every video
// subscriber keeps sentRingVideo of them).
type sentPacket struct {
	resentAt int64 // receiver clock of the last retransmission, 0 if none
	outTS    uint32
	outSeq   uint16
	inSeq    uint16
	vp8      vp8Fields
	layer    int8
	mungeVP8 bool
	valid    bool
	resends  uint8 // how many times it was sent again
}

// sentRing maps recent output sequence numbers to sentPackets: a ring
// indexed by sequence number, like packetcache.Cache.
type sentRing struct {
	entries []sentPacket
	mask    uint16
	highest uint16
	started bool
}

// newSentRing returns a ring of size entries; size must be a power of two
// no larger than 2^15.
func newSentRing(size int) *sentRing {
	return &sentRing{entries: make([]sentPacket, size), mask: uint16(size - 1)}
}

// put records e, unless it is older than the ring's window. A nil ring records nothing.
func (r *sentRing) put(e sentPacket) {
	if r == nil {
		return
	}
	size := len(r.entries)
	if !r.started {
		r.started = true
		r.highest = e.outSeq
	} else if diff := int(int16(e.outSeq - r.highest)); diff > 0 {
		// Forget what skipped (never sent) numbers held a lap earlier.
		for k := 1; k < diff && k <= size; k++ {
			r.entries[(r.highest+uint16(k))&r.mask].valid = false
		}
		r.highest = e.outSeq
	} else if -diff >= size {
		return
	}
	e.valid = true
	r.entries[e.outSeq&r.mask] = e
}

// get returns the record of outSeq, nil if unknown, too old or the ring is nil. The pointer
// is valid until the next put.
func (r *sentRing) get(outSeq uint16) *sentPacket {
	if r == nil || !r.started {
		return nil
	}
	if behind := int(int16(r.highest - outSeq)); behind < 0 || behind >= len(r.entries) {
		return nil
	}
	e := &r.entries[outSeq&r.mask]
	if !e.valid || e.outSeq != outSeq {
		return nil
	}
	return e
}
