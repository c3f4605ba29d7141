package srtpout

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// tcpPath is an ICE-TCP connection as the server holds it (accepted through a StreamConns
// listener) and the client's end of it.
type tcpPath struct {
	conns  *StreamConns
	server net.Conn // what pion's TCP mux would hold
	client *net.TCPConn
}

func newTCPPath(t *testing.T, queue int) *tcpPath {
	t.Helper()
	tl, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpPath{conns: NewStreamConns(queue)}
	ln := p.conns.Listener(tl)
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	if p.client, err = net.DialTCP("tcp4", nil, tl.Addr().(*net.TCPAddr)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.client.Close() })
	if p.server = <-accepted; p.server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = p.server.Close() })
	return p
}

// stream returns the Stream registered for the client's connection.
func (p *tcpPath) stream(t *testing.T) *Stream {
	t.Helper()
	st := p.conns.Lookup(p.client.LocalAddr().(*net.TCPAddr).AddrPort())
	if st == nil {
		t.Fatal("the accepted connection is not registered")
	}
	return st
}

// readFrame returns the next RFC 4571 frame the client receives.
func readFrame(t *testing.T, c net.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatalf("frame header: %v", err)
	}
	buf := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("frame of %d bytes: %v", len(buf), err)
	}
	return buf
}

// A Sender moved from UDP to an ICE-TCP connection and back keeps one SRTP state: the
// peer's single context decrypts every packet across the sequence number wrap, which
// happens while the stream is on TCP. Batched and single writes both reach the connection,
// framed.
func TestStreamKeepsRollover(t *testing.T) {
	for _, profile := range []srtp.ProtectionProfile{gcm, srtp.ProtectionProfileAes128CmHmacSha1_80} {
		t.Run(profile.String(), func(t *testing.T) {
			udp := newPeer(t, profile)
			s := newTestSender(t, udp, profile)
			path := newTCPPath(t, 0)
			batch := NewBatch(4)
			payload := bytes.Repeat([]byte{0xcd}, 900)
			seq := uint16(65520)
			send := func(n int) {
				for range n {
					h := &rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: 9000, SSRC: 77}
					if err := batch.Add(s, h, payload, Stamp{}); err != nil {
						t.Fatal(err)
					}
					seq++
				}
				batch.Flush()
			}
			decrypt := func(b []byte, want uint16) {
				t.Helper()
				plain, err := udp.ctx.DecryptRTP(nil, b, nil)
				if err != nil {
					t.Fatalf("seq %d: the peer cannot decrypt: %v", want, err)
				}
				var pkt rtp.Packet
				if err := pkt.Unmarshal(plain); err != nil || pkt.SequenceNumber != want || !bytes.Equal(pkt.Payload, payload) {
					t.Fatalf("got seq %d (%v), want %d", pkt.SequenceNumber, err, want)
				}
			}
			send(10) // 65520..65529 over UDP
			for i := range 10 {
				if pkt := udp.read(t); pkt.SequenceNumber != uint16(65520+i) {
					t.Fatalf("udp seq %d", pkt.SequenceNumber)
				}
			}
			s.SetStream(path.stream(t))
			if !s.Ready() {
				t.Fatal("not ready on the TCP path")
			}
			first := seq
			send(20) // 65530..13: wraps on TCP
			for i := range 20 {
				decrypt(readFrame(t, path.client), first+uint16(i))
			}
			// A retransmission outside the fan-out takes the same path and state.
			if _, err := s.WriteRTP(&rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 2, SSRC: 77}, payload, Stamp{}); err != nil {
				t.Fatal(err)
			}
			decrypt(readFrame(t, path.client), 2)
			s.SetRemote(udp.conn.LocalAddr().(*net.UDPAddr))
			first = seq
			send(5)
			for i := range 5 {
				if pkt := udp.read(t); pkt.SequenceNumber != first+uint16(i) {
					t.Fatalf("udp seq %d after the return", pkt.SequenceNumber)
				}
			}
		})
	}
}

// pion writes its own frames (STUN, DTLS, RTCP) on the connection while the Stream writes
// Sanke's: every frame arrives whole, none cut into another.
func TestStreamInterleavesWholeFrames(t *testing.T) {
	path := newTCPPath(t, 0)
	st := path.stream(t)
	const n = 2000
	var wg sync.WaitGroup
	wg.Go(func() { // pion's writeStreamingPacket: one Write per frame
		frame := make([]byte, frameHeader+300)
		binary.BigEndian.PutUint16(frame, 300)
		for i := range frame[frameHeader:] {
			frame[frameHeader+i] = 'p'
		}
		for range n {
			if _, err := path.server.Write(frame); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() {
		pkt := bytes.Repeat([]byte{'s'}, 1200)
		for sent := 0; sent < n; {
			if st.enqueue(pkt) {
				sent++
			} else {
				time.Sleep(time.Millisecond) // the queue is full: let the writer drain it
			}
		}
	})
	var pion, ours int
	for pion+ours < 2*n {
		f := readFrame(t, path.client)
		switch {
		case len(f) == 300 && bytes.Count(f, []byte{'p'}) == 300:
			pion++
		case len(f) == 1200 && bytes.Count(f, []byte{'s'}) == 1200:
			ours++
		default:
			t.Fatalf("a mixed frame of %d bytes after %d of pion's and %d of ours", len(f), pion, ours)
		}
	}
	wg.Wait()
}

// A connection nobody reads fills its queue; then new packets are dropped (drop-tail) at
// once, without blocking, and what arrives later is the oldest, in order.
func TestStreamDropTail(t *testing.T) {
	server, client := net.Pipe() // writes block until the client reads
	defer func() { _ = client.Close() }()
	const limit = 10 * (frameHeader + 100)
	st := newStream(server, limit)
	go st.run()
	defer st.close()
	pkt := make([]byte, 100)
	var taken []byte // the packets enqueue accepted, in order
	start := time.Now()
	// The writer holds at most one swapped-out queue in its blocked Write, so at most two
	// queues' worth are taken. Which ones depends on when the writer first runs (the
	// first ten, then those after its swap): what is taken arrives whole and in order.
	for i := range 100 {
		pkt[0] = byte(i)
		if st.enqueue(pkt) {
			taken = append(taken, byte(i))
		}
	}
	accepted := len(taken)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("enqueue blocked for %v", took)
	}
	queued, dropped := st.Stats()
	if accepted < 10 || accepted > 20 || queued != uint64(accepted) || dropped != uint64(100-accepted) {
		t.Fatalf("accepted %d of 100 (stats: %d queued, %d dropped), want 10..20", accepted, queued, dropped)
	}
	for i, want := range taken {
		if f := readFrame(t, client); len(f) != 100 || f[0] != want {
			t.Fatalf("frame %d: %d bytes, first %d, want packet %d", i, len(f), f[0], want)
		}
	}
}

// A closed connection leaves the registry and its Stream refuses packets; a Sender on it
// reports ErrQueueFull for single writes.
func TestStreamClosed(t *testing.T) {
	path := newTCPPath(t, 0)
	st := path.stream(t)
	s := NewSender(listenLoopback(t))
	if err := s.SetKeys(testKeys(gcm)); err != nil {
		t.Fatal(err)
	}
	s.SetStream(st)
	// A v4-mapped form of the client's address (a dual-stack candidate) finds it too.
	ap := path.client.LocalAddr().(*net.TCPAddr).AddrPort()
	if path.conns.Lookup(netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())) != st {
		t.Fatal("the v4-mapped address does not find the connection")
	}
	if err := path.server.Close(); err != nil {
		t.Fatal(err)
	}
	if path.conns.Len() != 0 || path.conns.Lookup(path.client.LocalAddr().(*net.TCPAddr).AddrPort()) != nil {
		t.Fatal("a closed connection is still registered")
	}
	if _, err := s.WriteRTP(&rtp.Header{Version: 2, SSRC: 1}, []byte{1}, Stamp{}); err != ErrQueueFull {
		t.Fatalf("write on a closed stream: %v", err)
	}
	s.SetStream(nil)
	if s.Ready() {
		t.Fatal("ready without a path")
	}
}

// Queueing a packet for an ICE-TCP connection copies it into the queue: no allocation once
// the queue exists.
func BenchmarkStreamEnqueue(b *testing.B) {
	server, client := net.Pipe()
	defer func() { _ = client.Close() }()
	go func() { _, _ = io.Copy(io.Discard, client) }()
	st := newStream(server, DefaultStreamQueue)
	go st.run()
	defer st.close()
	pkt := make([]byte, 1200)
	st.enqueue(pkt)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		st.enqueue(pkt)
	}
}
