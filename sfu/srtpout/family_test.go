package srtpout

import (
	"bytes"
	"net"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/sanke-edu/sanke/test/prereq"
)

// listenUDP opens a UDP socket, closed when the test ends; one the host cannot open (no
// IPv6) skips the test.
func listenUDP(t testing.TB, network string, addr *net.UDPAddr) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(network, addr)
	if err != nil {
		prereq.Skip(t, "cannot listen on %s %v: %v", network, addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// One batch on a dual-stack socket reaches an IPv6 peer, an IPv4 peer named by its
// IPv4-mapped address and an IPv4 peer named plainly, interleaved in one sendmmsg, and each
// decrypts its packets; an IPv6-only socket reaches its IPv6 peer, directly too.
func TestBatchFamilies(t *testing.T) {
	mapped := func(a *net.UDPAddr) *net.UDPAddr {
		return &net.UDPAddr{IP: a.IP.To16(), Port: a.Port} // ::ffff:127.0.0.1
	}
	as6 := func(c *net.UDPConn) *net.UDPAddr { return c.LocalAddr().(*net.UDPAddr) }
	for _, tc := range []struct {
		name    string
		network string
		local   *net.UDPAddr
		peers   []func(t *testing.T) (*net.UDPConn, *net.UDPAddr) // a peer's socket and the address the sender is given
	}{
		{"dual-stack", "udp", &net.UDPAddr{}, []func(*testing.T) (*net.UDPConn, *net.UDPAddr){
			func(t *testing.T) (*net.UDPConn, *net.UDPAddr) {
				c := listenUDP(t, "udp6", &net.UDPAddr{IP: net.IPv6loopback})
				return c, as6(c)
			},
			func(t *testing.T) (*net.UDPConn, *net.UDPAddr) {
				c := listenLoopback(t)
				return c, mapped(c.LocalAddr().(*net.UDPAddr))
			},
			func(t *testing.T) (*net.UDPConn, *net.UDPAddr) {
				c := listenLoopback(t)
				return c, c.LocalAddr().(*net.UDPAddr)
			},
		}},
		{"ipv6-only", "udp6", &net.UDPAddr{IP: net.IPv6loopback}, []func(*testing.T) (*net.UDPConn, *net.UDPAddr){
			func(t *testing.T) (*net.UDPConn, *net.UDPAddr) {
				c := listenUDP(t, "udp6", &net.UDPAddr{IP: net.IPv6loopback})
				return c, as6(c)
			},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := listenUDP(t, tc.network, tc.local)
			var peers []*peer
			var senders []*Sender
			for _, mk := range tc.peers {
				c, addr := mk(t)
				p := &peer{conn: c}
				k := testKeys(gcm)
				var err error
				if p.ctx, err = srtp.CreateContext(k.LocalKey, k.LocalSalt, k.Profile); err != nil {
					t.Fatal(err)
				}
				s := NewSender(conn)
				if err := s.SetKeys(k); err != nil {
					t.Fatal(err)
				}
				s.SetRemote(addr)
				if !s.Ready() {
					t.Fatalf("sender to %v not ready", addr)
				}
				peers, senders = append(peers, p), append(senders, s)
			}
			batch := NewBatch(4) // flushes mid-way: several sendmmsg calls, mixed families in each
			payload := bytes.Repeat([]byte{0x5a}, 1000)
			const n = 5
			for i := range n {
				for _, s := range senders {
					h := &rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(100 + i), SSRC: 7}
					if err := batch.Add(s, h, payload, Stamp{}); err != nil {
						t.Fatal(err)
					}
				}
			}
			batch.Flush()
			if sent, dropped := batch.Stats(); sent != uint64(n*len(senders)) || dropped != 0 {
				t.Fatalf("sent %d dropped %d, want %d 0", sent, dropped, n*len(senders))
			}
			for j, p := range peers {
				for i := range n {
					if pkt := p.read(t); pkt.SequenceNumber != uint16(100+i) || !bytes.Equal(pkt.Payload, payload) {
						t.Fatalf("peer %d packet %d: seq %d, %d payload bytes", j, i, pkt.SequenceNumber, len(pkt.Payload))
					}
				}
				// A retransmission goes the same way.
				if _, err := senders[j].WriteRTP(&rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 99, SSRC: 7}, payload, Stamp{}); err != nil {
					t.Fatal(err)
				}
				if pkt := p.read(t); pkt.SequenceNumber != 99 {
					t.Fatalf("peer %d retransmission seq %d", j, pkt.SequenceNumber)
				}
			}
		})
	}
}

// BenchmarkBatchFamilies is BenchmarkBatch's batch of 64 from a dual-stack socket: to an
// IPv4 peer (AF_INET, the IPv4 path whatever the socket) and to an IPv6 one.
func BenchmarkBatchFamilies(b *testing.B) {
	for _, tc := range []struct{ name, network, addr string }{
		{"ipv4", "udp4", "127.0.0.1"},
		{"ipv6", "udp6", "::1"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			peerConn := listenUDP(b, tc.network, &net.UDPAddr{IP: net.ParseIP(tc.addr)})
			s := NewSender(listenUDP(b, "udp", &net.UDPAddr{}))
			if err := s.SetKeys(testKeys(gcm)); err != nil {
				b.Fatal(err)
			}
			s.SetRemote(peerConn.LocalAddr().(*net.UDPAddr))
			batch := NewBatch(64)
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
