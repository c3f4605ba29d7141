// Package packetcache keeps the most recent RTP packets of one stream so that
// packets a subscriber reports lost (NACK) can be sent again.
//
// A Cache is a fixed ring of preallocated slots indexed by sequence number:
// adding a packet copies it into the slot seq%size, overwriting whatever
// packet was there; nothing is allocated after New.
package packetcache

import "sync"

// MaxPacketSize is the largest packet a slot holds; larger packets are not
// cached. It covers any packet that fits a 1500-byte Ethernet MTU.
const MaxPacketSize = 1500

const (
	// minSize keeps tiny configurations useful.
	minSize = 16
	// maxSize is half the sequence number space, so "how far behind the
	// newest packet" stays unambiguous with uint16 wraparound.
	maxSize = 1 << 15
)

// slot describes what one ring entry holds.
type slot struct {
	seq  uint16
	size uint16 // 0: empty
}

// Cache is a ring of recent packets of one RTP stream, indexed by sequence
// number. It is safe for concurrent use: typically one receive loop adds and
// several NACK handlers read.
type Cache struct {
	mu      sync.Mutex
	mask    uint16
	slots   []slot
	data    []byte // len(slots)*MaxPacketSize bytes, slot i at i*MaxPacketSize
	highest uint16 // newest sequence number added
	started bool
}

// New returns a cache of size packets, rounded up to a power of two and
// clamped to [16, 32768].
func New(size int) *Cache {
	n := minSize
	for n < size && n < maxSize {
		n <<= 1
	}
	return &Cache{
		mask:  uint16(n - 1),
		slots: make([]slot, n),
		data:  make([]byte, n*MaxPacketSize),
	}
}

// Size returns the number of packets the cache holds.
func (c *Cache) Size() int {
	return len(c.slots)
}

// Add copies pkt, the RTP packet with sequence number seq, into the cache.
// Packets older than the cache window, empty packets and packets larger than
// MaxPacketSize are not stored; Add reports whether pkt was stored.
func (c *Cache) Add(seq uint16, pkt []byte) bool {
	if len(pkt) == 0 || len(pkt) > MaxPacketSize {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()

	size := len(c.slots)
	switch {
	case !c.started:
		c.started = true
		c.highest = seq
	default:
		diff := int(int16(seq - c.highest))
		if diff > 0 {
			// Skipped sequence numbers (loss) must not keep the packets
			// that used their slots size, 2*size... numbers earlier.
			c.clearRange(c.highest+1, min(diff-1, size))
			c.highest = seq
		} else if -diff >= size {
			return false // older than the window
		}
	}

	i := int(seq & c.mask)
	copy(c.data[i*MaxPacketSize:], pkt)
	c.slots[i] = slot{seq: seq, size: uint16(len(pkt))}
	return true
}

// clearRange empties the slots of n sequence numbers starting at from.
func (c *Cache) clearRange(from uint16, n int) {
	for k := range n {
		c.slots[(from+uint16(k))&c.mask].size = 0
	}
}

// Get copies the packet with sequence number seq into dst and returns its
// length. It reports false if the packet is not cached (never added, already
// overwritten, or out of the window) or if dst is too small.
func (c *Cache) Get(seq uint16, dst []byte) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()

	if !c.started {
		return 0, false
	}
	if behind := int(int16(c.highest - seq)); behind < 0 || behind >= len(c.slots) {
		return 0, false
	}
	i := int(seq & c.mask)
	s := c.slots[i]
	if s.size == 0 || s.seq != seq || len(dst) < int(s.size) {
		return 0, false
	}
	off := i * MaxPacketSize
	return copy(dst, c.data[off:off+int(s.size)]), true
}
