package sfu

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/sanke-edu/sanke/sfu/srtpout"
)

// A direct stream whose UDP path dies after its sequence numbers are about to wrap (a
// subscriber whose UDP got blocked in the sixth minute of a class) never falls back to
// pion's writer, whose SRTP state would start with rollover counter 0: the packets
// forwarded while ICE has no pair are dropped, and once the pair moves to ICE-TCP the same
// SRTP state goes on over the connection, across the wrap, decryptable by the subscriber's
// single context.
func TestDirectStreamSurvivesMoveToTCP(t *testing.T) {
	rig := newTestRig(t, opusCodec, 0)
	out, peer := newDirectOutput(t, true)
	fallback := &recordWriter{}
	d := rig.bindOut(opusCodec, fallback, out)
	seq := uint16(65500) // the forwarder keeps the publisher's numbering
	feed := func(n int) {
		for range n {
			rig.clock.advance(20 * time.Millisecond)
			rig.feed(0, rtp.Header{SequenceNumber: seq, Timestamp: uint32(seq) * 960}, []byte{byte(seq), 1, 2, 3})
			seq++
		}
	}
	feed(10)
	for i, p := range peer.read(t, 10) {
		if p.SequenceNumber != uint16(65500+i) {
			t.Fatalf("udp packet %d has seq %d", i, p.SequenceNumber)
		}
	}

	out.SetRemote(nil) // UDP blocked: ICE has no pair until the restart
	feed(5)
	if n := len(fallback.packets()); n != 0 {
		t.Fatalf("%d packets of the direct stream went to pion's writer", n)
	}
	if s := d.Stats(); s.DirectGaps != 5 || !s.Direct {
		t.Fatalf("stats after the gap: %+v", s)
	}

	client := moveToTCP(t, out)
	first := seq
	feed(40) // 65515..18: wraps on TCP
	if n := len(fallback.packets()); n != 0 {
		t.Fatalf("%d packets of the direct stream went to pion's writer", n)
	}
	buf := make([]byte, 2000)
	for i := range 40 {
		_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(client, buf[:2]); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		n := int(binary.BigEndian.Uint16(buf))
		if _, err := io.ReadFull(client, buf[:n]); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		plain, err := peer.ctx.DecryptRTP(nil, buf[:n], nil)
		if err != nil {
			t.Fatalf("packet %d over TCP (seq %d): the subscriber cannot decrypt: %v", i, first+uint16(i), err)
		}
		var p rtp.Packet
		if err := p.Unmarshal(plain); err != nil || p.SequenceNumber != first+uint16(i) {
			t.Fatalf("packet %d over TCP: seq %d (%v), want %d", i, p.SequenceNumber, err, first+uint16(i))
		}
	}
}

// moveToTCP accepts an ICE-TCP connection from a local client through a StreamConns
// listener and points out at it, as the selected pair's change does; it returns the
// client's end.
func moveToTCP(t *testing.T, out *srtpout.Sender) *net.TCPConn {
	t.Helper()
	tl, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	conns := srtpout.NewStreamConns(0)
	ln := conns.Listener(tl)
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := net.DialTCP("tcp4", nil, tl.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = server.Close() })
	out.SetStream(conns.Lookup(client.LocalAddr().(*net.TCPAddr).AddrPort()))
	if !out.Ready() {
		t.Fatal("the sender is not ready on the TCP connection")
	}
	return client
}
