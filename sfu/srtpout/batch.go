package srtpout

import (
	"fmt"
	"net"

	"github.com/pion/rtp"
	"golang.org/x/net/ipv4"
)

// DefaultBatchSize is how many packets a Batch holds before it sends them. sendmmsg's cost
// per packet flattens out around 32-64 on loopback and virtual NICs.
const DefaultBatchSize = 64

// Batch collects the encrypted packets of one fan-out (one incoming packet to every
// subscriber) and sends them with one sendmmsg system call per batch. A Batch belongs to one
// goroutine: it is not safe for concurrent use. Its buffers are allocated once, when first
// used, so a Batch that never fills costs only the slots it used.
type Batch struct {
	conn  *net.UDPConn
	pc    *ipv4.PacketConn
	msgs  []ipv4.Message
	addrs []net.UDPAddr
	n     int

	sent, dropped uint64
}

// NewBatch returns a Batch of size packets (DefaultBatchSize if size < 1).
func NewBatch(size int) *Batch {
	if size < 1 {
		size = DefaultBatchSize
	}
	b := &Batch{msgs: make([]ipv4.Message, size), addrs: make([]net.UDPAddr, size)}
	for i := range b.msgs {
		b.msgs[i].Buffers = [][]byte{nil}
		b.msgs[i].Addr = &b.addrs[i]
	}
	return b
}

// Add encrypts one packet for s and queues it, sending the batch when it is full. It
// returns ErrNotReady if s cannot send (the caller then uses another path).
func (b *Batch) Add(s *Sender, h *rtp.Header, payload []byte) error {
	buf, err := b.Buffer(s)
	if err != nil {
		return err
	}
	n, err := h.MarshalTo(buf)
	if err != nil {
		return fmt.Errorf("srtpout: marshal header: %w", err)
	}
	if n+len(payload) > maxPacket {
		return fmt.Errorf("srtpout: packet of %d bytes too large", n+len(payload))
	}
	n += copy(buf[n:], payload)
	return b.Commit(s, buf[:n])
}

// Buffer returns the space for the next packet to s: the caller writes the plain RTP packet
// (at most MaxPacket bytes) at its start and passes it to Commit, which encrypts it where it
// is. Building the packet in place saves the copies a separate buffer would cost. It
// returns ErrNotReady if s cannot send.
func (b *Batch) Buffer(s *Sender) ([]byte, error) {
	if !s.ready.Load() {
		return nil, ErrNotReady
	}
	if b.conn != s.conn {
		b.Flush()
		b.conn, b.pc = s.conn, ipv4.NewPacketConn(s.conn)
	}
	m := &b.msgs[b.n]
	if m.Buffers[0] == nil {
		m.Buffers[0] = make([]byte, 0, maxPacket+srtpOverhead)
	}
	return m.Buffers[0][:maxPacket], nil
}

// Commit encrypts pkt, the plain RTP packet written at the start of the last Buffer, in
// place for s and queues it, sending the batch when it is full.
func (b *Batch) Commit(s *Sender, pkt []byte) error {
	addr := s.remote.Load()
	if addr == nil {
		return ErrNotReady
	}
	m := &b.msgs[b.n]
	out, err := s.encryptInPlace(pkt)
	if err != nil {
		return err
	}
	m.Buffers[0] = out
	b.addrs[b.n] = *addr
	b.n++
	if b.n == len(b.msgs) {
		b.Flush()
	}
	return nil
}

// Len returns how many packets wait to be sent.
func (b *Batch) Len() int { return b.n }

// Flush sends the queued packets. A packet the kernel refuses is dropped (and counted), as
// a lost UDP datagram would be; the rest are still sent. A nil Batch has nothing to send.
func (b *Batch) Flush() {
	if b == nil {
		return
	}
	for i := 0; i < b.n; {
		k, err := b.pc.WriteBatch(b.msgs[i:b.n], 0)
		b.sent += uint64(k)
		i += k
		if err != nil {
			// msgs[i] failed: skip it and go on with the rest.
			b.dropped++
			i++
		}
	}
	b.n = 0
}

// Stats returns the packets sent and dropped by the kernel since the Batch was
// made.
func (b *Batch) Stats() (sent, dropped uint64) { return b.sent, b.dropped }
