package loadtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/srtp/v3"
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

func TestMeasureFloor(t *testing.T) {
	f, err := MeasureFloor(200 * time.Millisecond)
	if err != nil {
		t.Skipf("floor not measurable here: %v", err)
	}
	if f.EncryptUs <= 0 || f.SendUs <= 0 || f.TotalUs != f.EncryptUs+f.SendUs || f.Batch != FloorBatch {
		t.Errorf("floor %+v", f)
	}
	t.Logf("floor: %+v", f)
}
