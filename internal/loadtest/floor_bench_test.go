package loadtest

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/test/prereq"

	"github.com/pion/srtp/v3"
	"golang.org/x/net/ipv4"
)

// The floor on this machine: what an SFU cannot avoid per forwarded 1200-byte packet.
//
//	go test ./loadtest -run '^$' -bench Floor -benchtime 2s
//
// ns/op is per packet in every benchmark.

func BenchmarkFloorEncrypt(b *testing.B) {
	for _, profile := range []struct {
		name string
		p    srtp.ProtectionProfile
	}{
		{"aes-128-gcm", srtp.ProtectionProfileAeadAes128Gcm},
		{"aes-128-cm-hmac-sha1-80", srtp.ProtectionProfileAes128CmHmacSha1_80},
	} {
		b.Run(profile.name, func(b *testing.B) {
			enc, err := newFloorEncryptor()
			if err != nil {
				b.Fatal(err)
			}
			if profile.p != srtp.ProtectionProfileAeadAes128Gcm {
				key := make([]byte, 16)
				salt := make([]byte, 14)
				if enc.ctx, err = srtp.CreateContext(key, salt, profile.p); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(FloorPacketSize)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := enc.encrypt(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFloorSend(b *testing.B) {
	enc, err := newFloorEncryptor()
	if err != nil {
		b.Fatal(err)
	}
	pkt, err := enc.encrypt()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("sendto", func(b *testing.B) {
		s, err := newFloorSender(1, false)
		if err != nil {
			b.Fatal(err)
		}
		defer s.close()
		to := s.sink.LocalAddr()
		b.SetBytes(int64(len(pkt)))
		for b.Loop() {
			if _, err := s.conn.WriteTo(pkt, to); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, drain := range []bool{false, true} {
		for _, batch := range []int{8, 32, 64} {
			name := fmt.Sprintf("sendmmsg-%d", batch)
			if drain {
				name += "-drained"
			}
			b.Run(name, func(b *testing.B) {
				s, err := newFloorSender(batch, drain)
				if err != nil {
					b.Fatal(err)
				}
				defer s.close()
				pkts := make([][]byte, batch)
				for i := range pkts {
					pkts[i] = pkt
				}
				b.SetBytes(int64(len(pkt)))
				n := 0
				for b.Loop() {
					if n++; n%batch == 0 {
						if err := s.send(pkts); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

// BenchmarkFloor is the floor itself: encrypt every packet, send them in batches of FloorBatch.
func BenchmarkFloor(b *testing.B) {
	enc, err := newFloorEncryptor()
	if err != nil {
		b.Fatal(err)
	}
	s, err := newFloorSender(FloorBatch, false)
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	bufs := make([][]byte, FloorBatch)
	for i := range bufs {
		bufs[i] = make([]byte, 0, FloorPacketSize+64)
	}
	pkts := make([][]byte, FloorBatch)
	b.SetBytes(FloorPacketSize)
	n := 0
	for b.Loop() {
		enc.out = bufs[n%FloorBatch][:0]
		p, err := enc.encrypt()
		if err != nil {
			b.Fatal(err)
		}
		pkts[n%FloorBatch] = p
		if n++; n%FloorBatch == 0 {
			if err := s.send(pkts); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkFloorFanout is the floor in the shape of a fan-out on loopback: every packet is
// encrypted and goes to the next of N subscriber sockets, each read by its own goroutine as
// the load generator's subscribers read theirs, in sendmmsg batches of 64. The sending
// thread's CPU time per packet (sender-cpu-ns/pkt) includes the kernel's loopback delivery
// and the wake-ups of the readers, which a server on the same host as its subscribers pays
// inside its own sendmmsg: no SFU can forward a packet to such a subscriber for less. The
// cases are the video and audio benchmarks' shapes (A100: 1,200-byte packets to 100
// subscribers; B200: 100-byte Opus packets to 200).
func BenchmarkFloorFanout(b *testing.B) {
	const batch = 64
	for _, tc := range []struct{ n, size int }{{1, FloorPacketSize}, {100, FloorPacketSize}, {200, 100}} {
		b.Run(fmt.Sprintf("subscribers=%d/bytes=%d", tc.n, tc.size), func(b *testing.B) {
			n := tc.n
			enc, err := newFloorEncryptor()
			if err != nil {
				b.Fatal(err)
			}
			enc.plain = enc.plain[:tc.size]
			conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			_ = conn.SetWriteBuffer(4 << 20)
			var readers sync.WaitGroup
			sinks := make([]*net.UDPConn, n)
			for i := range sinks {
				if sinks[i], err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
					b.Fatal(err)
				}
				readers.Go(func() {
					buf := make([]byte, 1500)
					for {
						if _, _, err := sinks[i].ReadFromUDP(buf); err != nil {
							return
						}
					}
				})
			}
			defer func() {
				for _, s := range sinks {
					_ = s.Close()
				}
				readers.Wait()
			}()
			pc := ipv4.NewPacketConn(conn)
			msgs := make([]ipv4.Message, batch)
			bufs := make([][]byte, batch)
			for i := range msgs {
				bufs[i] = make([]byte, 0, FloorPacketSize+64)
				msgs[i].Buffers = [][]byte{nil}
			}
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.SetBytes(int64(tc.size))
			c0, err := threadCPU()
			if err != nil {
				prereq.Skip(b, "per-thread CPU time: %v", err)
			}
			k := 0
			for b.Loop() {
				slot := k % batch
				enc.out = bufs[slot][:0]
				p, err := enc.encrypt()
				if err != nil {
					b.Fatal(err)
				}
				msgs[slot].Buffers[0], msgs[slot].Addr = p, sinks[k%n].LocalAddr()
				if k++; k%batch == 0 {
					for sent := 0; sent < batch; {
						m, err := pc.WriteBatch(msgs[sent:], 0)
						if err != nil {
							b.Fatal(err)
						}
						sent += m
					}
				}
			}
			c1, _ := threadCPU()
			b.ReportMetric(float64(c1-c0)/float64(k), "sender-cpu-ns/pkt")
		})
	}
}

func TestMeasureFloor(t *testing.T) {
	f, err := MeasureFloor(200 * time.Millisecond)
	if err != nil {
		prereq.Skip(t, "floor not measurable here: %v", err)
	}
	if f.EncryptUs <= 0 || f.SendUs <= 0 || f.TotalUs != f.EncryptUs+f.SendUs || f.Batch != FloorBatch {
		t.Errorf("floor %+v", f)
	}
	t.Logf("floor: %+v", f)
}
