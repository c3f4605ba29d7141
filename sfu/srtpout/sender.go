package srtpout

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// ErrNotReady is returned when a Sender has no keys or no peer address (yet).
var ErrNotReady = errors.New("srtpout: sender not ready")

// ErrQueueFull is returned when a packet for an ICE-TCP path was dropped: its connection's
// queue is full (or the connection closed).
var ErrQueueFull = errors.New("srtpout: ICE-TCP queue full")

// MaxPacket bounds one plain RTP packet (header and payload).
const MaxPacket = 1500

// maxPacket is MaxPacket for the package's own use; srtpOverhead is the most SRTP adds (the
// authentication tag: 16 bytes for AES-GCM, 10 for AES-CM-HMAC-SHA1-80).
const (
	maxPacket    = MaxPacket
	srtpOverhead = 16
	// wireOverhead is what IPv4 and UDP add to each packet on the wire.
	wireOverhead = 28
)

// Recorder numbers the packets of one PeerConnection with transport-wide sequence numbers
// and remembers them for the congestion feedback (bwe.SendHistory implements it). Sent is
// called once per stamped packet, under the Sender's lock, so numbers follow the order in
// which packets are encrypted and sent.
type Recorder interface {
	Sent(now int64, size int, flags, cluster uint8) uint16
}

// Stamp asks for a packet to be numbered: TWCC is the byte offset, in the plain packet, of
// the 2-byte transport-wide sequence number the header extension holds (0: not stamped);
// Now is the send time the Recorder records (monotonic ns); Flags and Cluster are passed
// to it. The number is written before encryption: the header is authenticated.
type Stamp struct {
	Now            int64
	TWCC           uint8
	Flags, Cluster uint8
}

// Sender sends the forwarded RTP of one PeerConnection: SRTP encryption with the keys its
// KeyCapture derived, written to the peer's selected ICE address (IPv4 or IPv6) on the node's
// shared UDP socket, or queued for its ICE-TCP connection (SetStream). Its methods are safe
// for concurrent use.
type Sender struct {
	conn    *net.UDPConn
	capture *KeyCapture

	// mu serializes encryption: the SRTP state is not safe for concurrent use. It is per
	// subscriber, so subscribers of one track never contend for it.
	mu    sync.Mutex
	gcm   *gcmSession      // AES-GCM profiles (our own, see gcm.go)
	ctx   *srtp.Context    // AES-CM profiles (pion/srtp)
	hdr   rtp.Header       // scratch: EncryptRTP parses the header into it
	plain *[maxPacket]byte // WriteRTP's scratch, made on first use (retransmissions are rare)
	out   []byte
	err   error    // why the keys could not be used
	rec   Recorder // numbers stamped packets; nil: none are

	remote atomic.Pointer[peerAddr]
	ready  atomic.Bool
	closed atomic.Bool
}

// NewSender returns a Sender writing on conn. Install its KeyCapture in the PeerConnection's
// SettingEngine and report the selected ICE address with SetRemote.
func NewSender(conn *net.UDPConn) *Sender {
	s := &Sender{conn: conn}
	s.capture = NewKeyCapture(func(k Keys) { _ = s.SetKeys(k) })
	return s
}

// KeyCapture returns the capture to install in the PeerConnection's SettingEngine.
func (s *Sender) KeyCapture() *KeyCapture { return s.capture }

// SetKeys installs the SRTP keys to encrypt with. The KeyCapture calls it when the DTLS
// handshake has produced them; call it yourself only with keys obtained elsewhere.
func (s *Sender) SetKeys(k Keys) error {
	var (
		gcm *gcmSession
		ctx *srtp.Context
		err error
	)
	if isGCM(k.Profile) {
		gcm, err = newGCMSession(k.LocalKey, k.LocalSalt)
	} else if ctx, err = srtp.CreateContext(k.LocalKey, k.LocalSalt, k.Profile); err != nil {
		err = fmt.Errorf("srtpout: SRTP context: %w", err)
	}
	s.mu.Lock()
	if err != nil {
		s.err = err
	} else {
		s.gcm, s.ctx, s.err = gcm, ctx, nil
	}
	s.mu.Unlock()
	s.update()
	return err
}

// SetRemote sets the peer's address: the remote side of the selected ICE candidate pair when
// its local side is the shared UDP socket. IPv4, IPv6 and IPv4-mapped IPv6 addresses (which
// are sent to as IPv4) are taken. nil (no pair, another socket) stops the Sender; SetStream
// sets an ICE-TCP path instead.
func (s *Sender) SetRemote(addr *net.UDPAddr) {
	var p *peerAddr
	if addr != nil && addr.IP != nil {
		ip := addr.IP
		if ip4 := ip.To4(); ip4 != nil {
			ip = ip4
		}
		p = &peerAddr{udp: net.UDPAddr{IP: ip, Port: addr.Port, Zone: addr.Zone}}
		p.raw, p.rawLen = rawSockaddr(&p.udp)
	}
	s.remote.Store(p)
	s.update()
}

// peerAddr is a subscriber's address, also in the form the batch's system call takes, or
// the ICE-TCP connection to it (stream.go). It is never changed once made: a new address is
// a new peerAddr.
type peerAddr struct {
	udp    net.UDPAddr
	raw    rawAddr
	rawLen uint32
	stream *Stream // non-nil: the path is this ICE-TCP connection, udp and raw are unset
}

// Close stops the Sender for good.
func (s *Sender) Close() {
	s.closed.Store(true)
	s.ready.Store(false)
}

func (s *Sender) update() {
	s.mu.Lock()
	haveKeys := s.ctx != nil || s.gcm != nil
	s.mu.Unlock()
	s.ready.Store(haveKeys && s.remote.Load() != nil && !s.closed.Load())
}

// SetRecorder sets the Recorder that numbers stamped packets (nil: none are numbered).
func (s *Sender) SetRecorder(r Recorder) {
	s.mu.Lock()
	s.rec = r
	s.mu.Unlock()
}

// stampLocked numbers pkt as st says. s.mu must be held.
func (s *Sender) stampLocked(pkt []byte, st Stamp) {
	if st.TWCC == 0 || s.rec == nil || int(st.TWCC)+2 > len(pkt) {
		return
	}
	seq := s.rec.Sent(st.Now, len(pkt)+srtpOverhead+wireOverhead, st.Flags, st.Cluster)
	binary.BigEndian.PutUint16(pkt[st.TWCC:], seq)
}

// Forget drops the SRTP state of a stream this Sender will not send again (its track was
// removed for good).
func (s *Sender) Forget(ssrc uint32) {
	s.mu.Lock()
	if s.gcm != nil {
		s.gcm.forget(ssrc)
	}
	s.mu.Unlock()
}

// Ready reports whether the Sender can send: it has keys and a peer address.
func (s *Sender) Ready() bool { return s.ready.Load() }

// Err returns why the derived keys could not be used, if they could not.
func (s *Sender) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	_, err := s.capture.Keys()
	return err
}

// encryptInPlace numbers (see Stamp) and encrypts the plain RTP packet pkt where it is (its
// backing array has room for the authentication tag) and returns the SRTP packet.
func (s *Sender) encryptInPlace(pkt []byte, st Stamp) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil && s.gcm == nil {
		return nil, ErrNotReady
	}
	s.stampLocked(pkt, st)
	if s.gcm != nil {
		return s.gcm.sealInPlace(pkt)
	}
	if s.ctx == nil {
		return nil, ErrNotReady
	}
	out, err := s.ctx.EncryptRTP(pkt[:0], pkt, &s.hdr)
	if err != nil {
		return nil, fmt.Errorf("srtpout: encrypt: %w", err)
	}
	return out, nil
}

// encryptLocked appends the SRTP packet of h and payload, numbered as st says, to dst. s.mu
// must be held.
func (s *Sender) encryptLocked(dst []byte, h *rtp.Header, payload []byte, st Stamp) ([]byte, error) {
	if s.ctx == nil && s.gcm == nil {
		return dst, ErrNotReady
	}
	if s.plain == nil {
		s.plain = new([maxPacket]byte)
	}
	_, n, err := MarshalPacket(s.plain[:], h, payload)
	if err != nil {
		return dst, err
	}
	s.stampLocked(s.plain[:n], st)
	if s.gcm != nil {
		return s.gcm.sealInPlace(slices.Grow(append(dst, s.plain[:n]...), srtpOverhead))
	}
	out, err := s.ctx.EncryptRTP(dst, s.plain[:n], &s.hdr)
	if err != nil {
		return dst, fmt.Errorf("srtpout: encrypt: %w", err)
	}
	return out, nil
}

// WriteRTP numbers (see Stamp), encrypts and sends one packet at once (retransmissions,
// anything outside a fan-out). It returns the bytes sent.
func (s *Sender) WriteRTP(h *rtp.Header, payload []byte, st Stamp) (int, error) {
	addr := s.remote.Load()
	if !s.ready.Load() || addr == nil {
		return 0, ErrNotReady
	}
	// Rare (retransmissions): encrypt into the Sender's own buffer and send under its lock.
	s.mu.Lock()
	defer s.mu.Unlock()
	out, err := s.encryptLocked(s.out[:0], h, payload, st)
	if err != nil {
		return 0, err
	}
	s.out = out
	if addr.stream != nil {
		if !addr.stream.enqueue(out) {
			return 0, ErrQueueFull
		}
		return len(out), nil
	}
	return s.conn.WriteToUDP(out, &addr.udp)
}
