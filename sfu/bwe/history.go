package bwe

import "sync"

// historySize is how many sent packets a SendHistory remembers (a power of two): about
// two seconds of 720p video, enough for feedback delayed by a 300 ms round trip, the
// subscriber's 100 ms feedback interval and a full bottleneck queue.
const historySize = 1024

// Packet flags recorded with each sent packet.
const (
	// FlagProbe marks a padding packet sent to probe for more capacity.
	FlagProbe uint8 = 1 << iota
	// FlagRetransmit marks a packet sent again in answer to a NACK.
	FlagRetransmit
)

// feedback states of a sent packet.
const (
	stateUnknown uint8 = iota
	stateLost          // reported lost (a later feedback may still report it received)
	stateReceived
)

// sent is one packet in a SendHistory.
type sent struct {
	at      int64 // when it was sent, monotonic ns
	size    uint16
	flags   uint8
	cluster uint8 // probe cluster id, 0 for none
	state   uint8
}

// SendHistory numbers the packets sent on one subscriber PeerConnection with transport-wide
// sequence numbers and remembers when each left and how big it was, for the TWCC feedback
// to be matched against. Its methods are safe for concurrent use; Sent is on the per-packet
// path and does not allocate.
type SendHistory struct {
	mu     sync.Mutex
	next   int64 // extended sequence number of the next packet
	ring   [historySize]sent
	lastAt int64 // when the newest packet was sent
	bytes  uint64
	// tooOld counts feedback about packets older than the ring remembers.
	tooOld uint64
	// The probe cluster packets are tagged with while it is sent, and what it sent.
	cluster                   uint8
	clusterBytes, clusterPkts uint64
	clusterFirst, clusterLast int64 // send times of its first and last packet
}

// NewSendHistory returns an empty history; numbering starts at 1.
func NewSendHistory() *SendHistory { return &SendHistory{next: 1} }

// Sent records a packet of size bytes (on the wire) sent at now and returns its
// transport-wide sequence number. flags and cluster tag probes and retransmissions.
func (h *SendHistory) Sent(now int64, size int, flags, cluster uint8) uint16 {
	h.mu.Lock()
	seq := h.next
	h.next++
	if cluster == 0 && h.cluster != 0 {
		cluster = h.cluster
	}
	if cluster != 0 && cluster == h.cluster {
		if h.clusterPkts == 0 {
			h.clusterFirst = now
		}
		h.clusterBytes += uint64(size)
		h.clusterPkts++
		h.clusterLast = now
	}
	h.ring[seq&(historySize-1)] = sent{at: now, size: uint16(min(size, 0xffff)), flags: flags, cluster: cluster}
	h.lastAt = now
	h.bytes += uint64(size)
	h.mu.Unlock()
	return uint16(seq)
}

// LastSent returns when the newest packet was sent (0 before any) and the bytes sent so
// far.
func (h *SendHistory) LastSent() (at int64, bytes uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastAt, h.bytes
}

// unwrap extends a 16-bit sequence number from feedback to the history's numbering, the
// nearest to the newest sent. h.mu must be held.
func (h *SendHistory) unwrap(seq uint16) int64 {
	newest := h.next - 1
	return newest - int64(int16(uint16(newest)-seq))
}

// lookup returns the record of extended sequence number ext, nil if it was never sent or
// is older than the ring. h.mu must be held.
func (h *SendHistory) lookup(ext int64) *sent {
	if ext >= h.next || ext < 1 {
		return nil
	}
	if h.next-ext > historySize {
		h.tooOld++
		return nil
	}
	return &h.ring[ext&(historySize-1)]
}
