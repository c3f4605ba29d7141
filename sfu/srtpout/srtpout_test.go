package srtpout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// runHandshake runs a real pion DTLS handshake on loopback with a KeyCapture on the server and
// returns the capture and the client's connection state.
func runHandshake(t *testing.T, suite dtls.CipherSuiteID, profile dtls.SRTPProtectionProfile) (*KeyCapture, dtls.State) {
	t.Helper()
	cert, err := selfsign.GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	capture := NewKeyCapture(nil)
	common := []dtls.Option{
		dtls.WithCertificates(cert), dtls.WithInsecureSkipVerify(true),
		dtls.WithCipherSuites(suite),
		dtls.WithSRTPProtectionProfiles(profile),
		dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret),
	}
	var sopts []dtls.ServerOption
	for _, o := range common {
		sopts = append(sopts, o)
	}
	sopts = append(sopts, dtls.WithServerHelloMessageHook(capture.ServerHelloHook), dtls.WithKeyLogWriter(capture))
	server, err := dtls.ServerWithOptions(sc, cc.LocalAddr(), sopts...)
	if err != nil {
		t.Fatal(err)
	}
	var copts []dtls.ClientOption
	for _, o := range common {
		copts = append(copts, o)
	}
	client, err := dtls.ClientWithOptions(cc, sc.LocalAddr(), copts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- server.HandshakeContext(ctx) }()
	if err := client.HandshakeContext(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	st, ok := client.ConnectionState()
	if !ok {
		t.Fatal("no client connection state")
	}
	return capture, st
}

// The keys derived from the hook and the key log equal what pion's own exporter gives the
// other end, for every SRTP profile and both PRF hashes.
func TestKeysMatchExporter(t *testing.T) {
	cases := []struct {
		name    string
		suite   dtls.CipherSuiteID
		profile dtls.SRTPProtectionProfile
	}{
		{"gcm128/sha256", dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.SRTP_AEAD_AES_128_GCM},
		{"gcm256/sha384", dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.SRTP_AEAD_AES_256_GCM},
		{"cm128/cbc", dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, dtls.SRTP_AES128_CM_HMAC_SHA1_80},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			capture, st := runHandshake(t, c.suite, c.profile)
			keys, err := capture.Keys()
			if err != nil {
				t.Fatal(err)
			}
			p := srtp.ProtectionProfile(c.profile)
			kl, _ := p.KeyLen()
			sl, _ := p.SaltLen()
			want, err := st.ExportKeyingMaterial(exporterLabel, nil, 2*(kl+sl))
			if err != nil {
				t.Fatal(err)
			}
			got := bytes.Join([][]byte{keys.RemoteKey, keys.LocalKey, keys.RemoteSalt, keys.LocalSalt}, nil)
			if !bytes.Equal(got, want) || keys.Profile != p {
				t.Fatalf("derived keys differ from the exporter:\n got %x\nwant %x", got, want)
			}
		})
	}
}

func TestKeyCaptureRejects(t *testing.T) {
	cases := []struct {
		name  string
		hello bool
		line  string
	}{
		{"no server hello (client role)", false, "CLIENT_RANDOM 00 00\n"},
		{"wrong label", true, "SERVER_RANDOM 00 00\n"},
		{"bad hex", true, "CLIENT_RANDOM zz 00\n"},
		{"empty", true, ""},
		{"unknown suite and profile", true, "CLIENT_RANDOM 0011 0022\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			called := false
			k := NewKeyCapture(func(Keys) { called = true })
			if c.hello {
				k.ServerHelloHook(handshakeServerHello())
			}
			if n, err := k.Write([]byte(c.line)); n != len(c.line) || err != nil {
				t.Fatalf("Write = %d, %v; a key log writer must not fail the handshake", n, err)
			}
			if _, err := k.Keys(); err == nil || called {
				t.Fatal("keys from a bad input")
			}
		})
	}
}

// testKeys returns fixed keys of profile, as a handshake would derive them.
func testKeys(profile srtp.ProtectionProfile) Keys {
	kl, _ := profile.KeyLen()
	sl, _ := profile.SaltLen()
	return Keys{Profile: profile,
		LocalKey: bytes.Repeat([]byte{1}, kl), LocalSalt: bytes.Repeat([]byte{2}, sl),
		RemoteKey: bytes.Repeat([]byte{3}, kl), RemoteSalt: bytes.Repeat([]byte{4}, sl)}
}

const gcm = srtp.ProtectionProfileAeadAes128Gcm

// peer is the receiving end: a UDP socket and the SRTP context a browser would use.
type peer struct {
	conn *net.UDPConn
	ctx  *srtp.Context
}

// listenLoopback opens a UDP socket on 127.0.0.1, closed when the test ends.
func listenLoopback(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newPeer(t *testing.T, profile srtp.ProtectionProfile) *peer {
	t.Helper()
	c := listenLoopback(t)
	k := testKeys(profile)
	ctx, err := srtp.CreateContext(k.LocalKey, k.LocalSalt, k.Profile)
	if err != nil {
		t.Fatal(err)
	}
	return &peer{conn: c, ctx: ctx}
}

func (p *peer) read(t *testing.T) *rtp.Packet {
	t.Helper()
	buf := make([]byte, 2000)
	_ = p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := p.conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := p.ctx.DecryptRTP(nil, buf[:n], nil)
	if err != nil {
		t.Fatalf("peer cannot decrypt: %v", err)
	}
	var pkt rtp.Packet
	if err := pkt.Unmarshal(plain); err != nil {
		t.Fatal(err)
	}
	return &pkt
}

func newTestSender(t *testing.T, to *peer, profile srtp.ProtectionProfile) *Sender {
	t.Helper()
	s := NewSender(listenLoopback(t))
	if s.Ready() {
		t.Fatal("ready without keys")
	}
	if err := s.SetKeys(testKeys(profile)); err != nil {
		t.Fatal(err)
	}
	if s.Ready() {
		t.Fatal("ready without an address")
	}
	s.SetRemote(to.conn.LocalAddr().(*net.UDPAddr))
	if !s.Ready() {
		t.Fatalf("not ready: %v", s.Err())
	}
	return s
}

// Packets sent through a Batch (encrypted in place) and directly arrive decryptable, in
// order, intact, across several batch flushes and two peers sharing the batch, for AES-GCM
// and AES-CM.
func TestBatchDelivers(t *testing.T) {
	for _, profile := range []srtp.ProtectionProfile{gcm, srtp.ProtectionProfileAes128CmHmacSha1_80} {
		t.Run(profile.String(), func(t *testing.T) { batchDelivers(t, profile) })
	}
}

func batchDelivers(t *testing.T, profile srtp.ProtectionProfile) {
	a, b := newPeer(t, profile), newPeer(t, profile)
	sa, sb := newTestSender(t, a, profile), newTestSender(t, b, profile)
	batch := NewBatch(4)
	payload := bytes.Repeat([]byte{0xab}, 1100)
	const n = 10
	for i := range n {
		for _, s := range []*Sender{sa, sb} {
			h := &rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(65530 + i), Timestamp: 1000, SSRC: 42}
			if err := batch.Add(s, h, payload, Stamp{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	batch.Flush()
	if sent, dropped := batch.Stats(); sent != 2*n || dropped != 0 {
		t.Fatalf("sent %d dropped %d, want %d 0", sent, dropped, 2*n)
	}
	for _, p := range []*peer{a, b} {
		for i := range n {
			pkt := p.read(t)
			if pkt.SequenceNumber != uint16(65530+i) || !bytes.Equal(pkt.Payload, payload) {
				t.Fatalf("packet %d: seq %d, %d payload bytes", i, pkt.SequenceNumber, len(pkt.Payload))
			}
		}
	}
	// A retransmission outside the fan-out uses the same SRTP state (rollover included).
	if _, err := sa.WriteRTP(&rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 3, SSRC: 42}, payload, Stamp{}); err != nil {
		t.Fatal(err)
	}
	if pkt := a.read(t); pkt.SequenceNumber != 3 {
		t.Fatalf("retransmission seq %d", pkt.SequenceNumber)
	}
}

func TestSenderNotReady(t *testing.T) {
	p := newPeer(t, gcm)
	s := newTestSender(t, p, gcm)
	s.SetRemote(nil)
	batch := NewBatch(0)
	h := &rtp.Header{Version: 2, SSRC: 1}
	if err := batch.Add(s, h, nil, Stamp{}); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Add without address: %v", err)
	}
	s.SetRemote(p.conn.LocalAddr().(*net.UDPAddr))
	s.Close()
	if _, err := s.WriteRTP(h, nil, Stamp{}); !errors.Is(err, ErrNotReady) {
		t.Fatalf("WriteRTP after Close: %v", err)
	}
	s2 := newTestSender(t, p, gcm)
	if err := batch.Add(s2, h, make([]byte, 2000), Stamp{}); err == nil || batch.Len() != 0 {
		t.Fatal("an oversized packet was queued")
	}
}

// BenchmarkBatch is the direct path's cost per 1200-byte packet: marshal, AES-GCM encrypt in
// place and sendmmsg to a loopback socket, by batch size (a fan-out flushes when a batch is
// full and at its end).
func BenchmarkBatch(b *testing.B) {
	for _, size := range []int{1, 8, 16, 32, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			t := &testing.T{}
			p := newPeer(t, gcm)
			s := newTestSender(t, p, gcm)
			batch := NewBatch(size)
			payload := make([]byte, 1200-12)
			h := &rtp.Header{Version: 2, PayloadType: 96, SSRC: 42}
			b.SetBytes(1200)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				h.SequenceNumber = uint16(i)
				if err := batch.Add(s, h, payload, Stamp{}); err != nil {
					b.Fatal(err)
				}
			}
			batch.Flush()
		})
	}
}

// handshakeServerHello is a server hello with an unknown cipher suite and no SRTP profile.
func handshakeServerHello() handshake.MessageServerHello {
	id := uint16(0xffff)
	return handshake.MessageServerHello{CipherSuiteID: &id}
}

// A packet the kernel refuses (here: to UDP port 0, EINVAL) is dropped and counted; the
// packets queued after it in the same sendmmsg still go out.
func TestBatchSkipsRefused(t *testing.T) {
	a, b := newPeer(t, gcm), newPeer(t, gcm)
	sa, sb := newTestSender(t, a, gcm), newTestSender(t, b, gcm)
	bad := newTestSender(t, a, gcm)
	bad.SetRemote(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 0})
	batch := NewBatch(8)
	payload := []byte("payload")
	for i, s := range []*Sender{sa, bad, sb, bad, sa} {
		h := &rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i), SSRC: 42}
		if err := batch.Add(s, h, payload, Stamp{}); err != nil {
			t.Fatal(err)
		}
	}
	batch.Flush()
	if sent, dropped := batch.Stats(); sent != 3 || dropped != 2 {
		t.Fatalf("sent %d dropped %d, want 3 2", sent, dropped)
	}
	for _, want := range []struct {
		p   *peer
		seq uint16
	}{{a, 0}, {b, 2}, {a, 4}} {
		if pkt := want.p.read(t); pkt.SequenceNumber != want.seq {
			t.Fatalf("got seq %d, want %d", pkt.SequenceNumber, want.seq)
		}
	}
}

// A packet with padding (a publisher's bandwidth probe: padding only, or media with padding)
// arrives with its padding, through a Batch and directly, so the receiver's parse gives back
// the payload as sent; before, the header said "padding" and none followed, and pion's
// Unmarshal refused the packet ("buffer too small").
func TestPaddingDelivered(t *testing.T) {
	a := newPeer(t, gcm)
	s := newTestSender(t, a, gcm)
	batch := NewBatch(4)
	for i, payload := range [][]byte{nil, bytes.Repeat([]byte{0xcd}, 300)} {
		h := &rtp.Header{Version: 2, Padding: true, PaddingSize: 224, PayloadType: 96, SequenceNumber: uint16(10 + 2*i), SSRC: 42}
		if err := batch.Add(s, h, payload, Stamp{}); err != nil {
			t.Fatal(err)
		}
		batch.Flush()
		h.SequenceNumber++
		if _, err := s.WriteRTP(h, payload, Stamp{}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			pkt := a.read(t)
			if !pkt.Padding || pkt.PaddingSize != 224 || !bytes.Equal(pkt.Payload, payload) {
				t.Fatalf("packet %d: padding %v %d, %d payload bytes, want 224 and %d", pkt.SequenceNumber, pkt.Padding, pkt.PaddingSize, len(pkt.Payload), len(payload))
			}
		}
	}
	if _, err := s.WriteRTP(&rtp.Header{Version: 2, Padding: true, SSRC: 42}, nil, Stamp{}); err == nil {
		t.Fatal("a padding flag without padding was sent")
	}
}
