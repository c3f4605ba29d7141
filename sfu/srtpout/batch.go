package srtpout

import (
	"net"

	"github.com/pion/rtp"
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
	bufs  [][]byte    // slot buffers, MaxPacket plus the SRTP tag
	out   [][]byte    // the queued SRTP packets, in bufs
	peers []*peerAddr // where each goes
	n     int
	sys   sysBatch // the system call's arguments (batch_linux.go)

	sent, dropped uint64
}

// NewBatch returns a Batch of size packets (DefaultBatchSize if size < 1).
func NewBatch(size int) *Batch {
	if size < 1 {
		size = DefaultBatchSize
	}
	return &Batch{bufs: make([][]byte, size), out: make([][]byte, size), peers: make([]*peerAddr, size)}
}

// Add numbers (see Stamp) and encrypts one packet for s and queues it, sending the batch
// when it is full. It returns ErrNotReady if s cannot send (the caller then uses another
// path).
func (b *Batch) Add(s *Sender, h *rtp.Header, payload []byte, st Stamp) error {
	buf, err := b.Buffer(s)
	if err != nil {
		return err
	}
	_, n, err := MarshalPacket(buf, h, payload)
	if err != nil {
		return err
	}
	return b.Commit(s, buf[:n], st)
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
		if err := b.setConn(s.conn); err != nil {
			return nil, err
		}
	}
	if b.bufs[b.n] == nil {
		b.bufs[b.n] = make([]byte, maxPacket+srtpOverhead)
	}
	return b.bufs[b.n][:maxPacket], nil
}

// Commit numbers (see Stamp) and encrypts pkt, the plain RTP packet written at the start of
// the last Buffer, in place for s and queues it, sending the batch when it is full.
func (b *Batch) Commit(s *Sender, pkt []byte, st Stamp) error {
	addr := s.remote.Load()
	if addr == nil {
		return ErrNotReady
	}
	out, err := s.encryptInPlace(pkt, st)
	if err != nil {
		return err
	}
	if addr.stream != nil {
		// ICE-TCP: the connection's queue copies the packet; the slot is free again.
		if !addr.stream.enqueue(out) {
			b.dropped++
		}
		return nil
	}
	b.out[b.n], b.peers[b.n] = out, addr
	b.n++
	if b.n == len(b.out) {
		b.Flush()
	}
	return nil
}

// Len returns how many packets wait to be sent.
func (b *Batch) Len() int { return b.n }

// Flush sends the queued packets. A packet the kernel refuses is dropped (and counted), as
// a lost UDP datagram would be; the rest are still sent. A nil Batch has nothing to send.
func (b *Batch) Flush() {
	if b == nil || b.n == 0 {
		return
	}
	b.send()
	clear(b.peers[:b.n])
	b.n = 0
}

// Stats returns the packets sent and dropped (refused by the kernel, or by a full ICE-TCP
// queue) since the Batch was made.
func (b *Batch) Stats() (sent, dropped uint64) { return b.sent, b.dropped }
