package loadtest

import (
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/net/ipv4"
)

// The floor is the work no SFU can avoid per forwarded packet: SRTP-encrypt it for the
// subscriber (AES-128-GCM, pion/srtp) and hand it to the kernel, in batches (sendmmsg) on one
// UDP socket. Load-test results are stated as a ratio to it. It is measured on loopback
// towards an undrained socket (see floorSender): receiver wake-ups, which a server on the same
// host as its subscribers also pays, are not part of it.

// FloorPacketSize is the RTP packet size (header + payload, before SRTP) the floor is measured
// with.
const FloorPacketSize = 1200

// FloorBatch is the number of packets per sendmmsg call.
const FloorBatch = 32

// FloorResult is the measured floor: CPU time per packet of each step.
type FloorResult struct {
	PacketBytes int     `json:"packet_bytes"`
	Batch       int     `json:"batch"`
	EncryptUs   float64 `json:"encrypt_us"` // AES-128-GCM SRTP encrypt, per packet
	SendUs      float64 `json:"send_us"`    // batched UDP send on loopback, per packet
	TotalUs     float64 `json:"total_us"`
}

// floorEncryptor encrypts a fixed RTP packet with a fresh sequence number each time.
type floorEncryptor struct {
	ctx   *srtp.Context
	plain []byte
	out   []byte
	hdr   rtp.Header
	seq   uint16
}

func newFloorEncryptor() (*floorEncryptor, error) {
	profile := srtp.ProtectionProfileAeadAes128Gcm
	keyLen, err := profile.KeyLen()
	if err != nil {
		return nil, err
	}
	saltLen, err := profile.SaltLen()
	if err != nil {
		return nil, err
	}
	key := make([]byte, keyLen)
	salt := make([]byte, saltLen)
	for i := range key {
		key[i] = byte(i * 7)
	}
	ctx, err := srtp.CreateContext(key, salt, profile)
	if err != nil {
		return nil, err
	}
	plain := make([]byte, FloorPacketSize)
	plain[0] = 0x80
	plain[1] = ptVP8
	binary.BigEndian.PutUint32(plain[8:12], 0x1234abcd)
	for i := 12; i < len(plain); i++ {
		plain[i] = byte(i)
	}
	return &floorEncryptor{ctx: ctx, plain: plain, out: make([]byte, 0, FloorPacketSize+64)}, nil
}

// encrypt encrypts the next packet; the result is valid until the next call.
func (e *floorEncryptor) encrypt() ([]byte, error) {
	e.seq++
	binary.BigEndian.PutUint16(e.plain[2:4], e.seq)
	out, err := e.ctx.EncryptRTP(e.out[:0], e.plain, &e.hdr)
	if err != nil {
		return nil, err
	}
	e.out = out
	return out, nil
}

// floorSender writes batches of packets from one unconnected UDP socket (as an SFU's shared
// socket is) to a loopback sink. Undrained, the sink's receive buffer fills and the kernel
// drops at the socket: the sender pays the whole transmit path and the loopback delivery up to
// the socket queue, but no receiver wake-ups, which is the closest loopback gets to a NIC.
// Drained, a goroutine reads everything (recvmmsg), as the load generator's subscribers do.
type floorSender struct {
	conn *net.UDPConn
	pc   *ipv4.PacketConn
	sink *net.UDPConn
	msgs []ipv4.Message
	done chan struct{}
}

func newFloorSender(batch int, drain bool) (*floorSender, error) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		_ = sink.Close()
		return nil, err
	}
	_ = conn.SetWriteBuffer(4 << 20)
	s := &floorSender{conn: conn, pc: ipv4.NewPacketConn(conn), sink: sink, done: make(chan struct{})}
	to := sink.LocalAddr()
	s.msgs = make([]ipv4.Message, batch)
	for i := range s.msgs {
		s.msgs[i] = ipv4.Message{Buffers: [][]byte{nil}, Addr: to}
	}
	if !drain {
		close(s.done)
		return s, nil
	}
	_ = sink.SetReadBuffer(4 << 20)
	go func() {
		defer close(s.done)
		rp := ipv4.NewPacketConn(sink)
		ms := make([]ipv4.Message, 64)
		for i := range ms {
			ms[i].Buffers = [][]byte{make([]byte, 1500)}
		}
		for {
			if _, err := rp.ReadBatch(ms, 0); err != nil {
				return
			}
		}
	}()
	return s, nil
}

// send writes len(pkts) packets (at most the batch size) in one sendmmsg.
func (s *floorSender) send(pkts [][]byte) error {
	ms := s.msgs[:len(pkts)]
	for i, p := range pkts {
		ms[i].Buffers[0] = p
	}
	for len(ms) > 0 {
		n, err := s.pc.WriteBatch(ms, 0)
		if err != nil {
			return err
		}
		ms = ms[n:]
	}
	return nil
}

func (s *floorSender) close() {
	_ = s.conn.Close()
	_ = s.sink.Close()
	<-s.done
}

// MeasureFloor measures the floor on this machine, spending about d in total. It runs on one
// locked OS thread and reports that thread's CPU time (user + system) per packet.
func MeasureFloor(d time.Duration) (FloorResult, error) {
	if d <= 0 {
		return FloorResult{}, errors.New("floor: duration must be positive")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	enc, err := newFloorEncryptor()
	if err != nil {
		return FloorResult{}, err
	}
	snd, err := newFloorSender(FloorBatch, false)
	if err != nil {
		return FloorResult{}, err
	}
	defer snd.close()

	measure := func(step func() error) (float64, error) {
		deadline := time.Now().Add(d / 2)
		c0, err := threadCPU()
		if err != nil {
			return 0, err
		}
		n := 0
		for time.Now().Before(deadline) {
			for range 256 {
				if err := step(); err != nil {
					return 0, err
				}
			}
			n += 256
		}
		c1, err := threadCPU()
		if err != nil {
			return 0, err
		}
		return float64(c1-c0) / float64(n) / 1000, nil
	}

	encUs, err := measure(func() error { _, err := enc.encrypt(); return err })
	if err != nil {
		return FloorResult{}, err
	}
	pkt, err := enc.encrypt()
	if err != nil {
		return FloorResult{}, err
	}
	batch := make([][]byte, FloorBatch)
	for i := range batch {
		batch[i] = pkt
	}
	var i int
	sendUs, err := measure(func() error {
		i++
		if i%FloorBatch != 0 {
			return nil
		}
		return snd.send(batch)
	})
	if err != nil {
		return FloorResult{}, err
	}
	return FloorResult{PacketBytes: FloorPacketSize, Batch: FloorBatch, EncryptUs: encUs, SendUs: sendUs, TotalUs: encUs + sendUs}, nil
}
