package loadtest

import (
	"encoding/binary"
	"net"
	"sync"
	"time"

	"github.com/pion/transport/v5"
)

// Packets reach a subscriber's reader after pion's receive path (ICE, demultiplexing, SRTP,
// buffers: several goroutine hand-offs), whose delay grows with the generator's load. To tell
// the server's share of the latency from the generator's, every generator socket records when
// each RTP packet arrived in the kernel (SO_TIMESTAMPNS where available, else when it was
// read from the socket), keyed by SSRC and sequence number, both readable before decryption.
// Subscribers look their packets up and report latency to the socket besides latency to the
// reader.

// udpReadBuffer is the receive buffer of every generator socket: large enough that a
// generator briefly starved of CPU does not drop what the server sent (drops are reported).
const udpReadBuffer = 1 << 20

// arrivalSlots is the size of a socket's arrival ring (indexed by sequence number).
const arrivalSlots = 1024

type arrival struct {
	ssrc uint32
	seq  uint16
	ok   bool
	at   int64 // generator clock, ns
}

// arrivalRing holds the recent RTP arrivals of one socket.
type arrivalRing struct {
	mu    sync.Mutex
	slots [arrivalSlots]arrival
}

func (r *arrivalRing) put(ssrc uint32, seq uint16, at int64) {
	r.mu.Lock()
	r.slots[seq%arrivalSlots] = arrival{ssrc: ssrc, seq: seq, ok: true, at: at}
	r.mu.Unlock()
}

// get returns when the packet (ssrc, seq) arrived, if it is still in the ring.
func (r *arrivalRing) get(ssrc uint32, seq uint16) (int64, bool) {
	r.mu.Lock()
	a := r.slots[seq%arrivalSlots]
	r.mu.Unlock()
	if !a.ok || a.ssrc != ssrc || a.seq != seq {
		return 0, false
	}
	return a.at, true
}

// arrivals maps a generator socket's local port to its ring.
type arrivals struct {
	now   func() time.Duration
	rings sync.Map // int -> *arrivalRing
}

func (a *arrivals) ring(port int) *arrivalRing {
	if v, ok := a.rings.Load(port); ok {
		return v.(*arrivalRing)
	}
	return nil
}

// bufferedNet gives the UDP sockets pion opens a larger receive buffer and wraps them to
// record arrivals.
type bufferedNet struct {
	transport.Net
	arr *arrivals
}

// ListenUDP opens the socket, enlarges its receive buffer and asks for kernel timestamps.
func (n bufferedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return c, err
	}
	_ = c.SetReadBuffer(udpReadBuffer)
	udp, ok := c.(*net.UDPConn)
	if !ok || n.arr == nil {
		return c, nil
	}
	ring := &arrivalRing{}
	if la, ok := udp.LocalAddr().(*net.UDPAddr); ok {
		n.arr.rings.Store(la.Port, ring)
	}
	return &stampConn{UDPConn: c, udp: udp, ring: ring, now: n.arr.now, kernel: enableRxTimestamps(udp)}, nil
}

// stampConn records the arrival of every RTP packet read through ReadFrom (the method pion's
// ICE candidates read with when the socket is not a bare *net.UDPConn).
type stampConn struct {
	transport.UDPConn
	udp    *net.UDPConn
	ring   *arrivalRing
	now    func() time.Duration
	kernel bool
	oob    [128]byte
}

// ReadFrom reads one datagram and records its arrival.
func (c *stampConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, oobn, _, addr, err := c.udp.ReadMsgUDP(p, c.oob[:])
	if err != nil {
		return n, addr, err
	}
	// RTP (not RTCP) by RFC 7983 and RFC 5761: first byte 128-191, payload type outside 64-95.
	if n >= 12 && p[0] >= 128 && p[0] <= 191 && (p[1]&0x7f < 64 || p[1]&0x7f > 95) {
		at := int64(c.now())
		if c.kernel {
			if ts, ok := rxTimestamp(c.oob[:oobn]); ok {
				if d := time.Now().UnixNano() - ts; d > 0 && d < int64(10*time.Second) {
					at -= d
				}
			}
		}
		c.ring.put(binary.BigEndian.Uint32(p[8:12]), binary.BigEndian.Uint16(p[2:4]), at)
	}
	return n, addr, nil
}
