package srtpout

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// newGCMPair returns this package's AES-GCM session and pion/srtp's context for one key.
func newGCMPair(t *testing.T, key, salt []byte, profile srtp.ProtectionProfile) (*gcmSession, *srtp.Context) {
	t.Helper()
	ours, err := newGCMSession(key, salt)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := srtp.CreateContext(key, salt, profile)
	if err != nil {
		t.Fatal(err)
	}
	return ours, theirs
}

// The AES-GCM encryption is pion/srtp's byte for byte: both key sizes, two streams, a
// sequence wrap, retransmissions from before and after it, CSRCs and a header extension.
func TestGCMMatchesPion(t *testing.T) {
	for _, profile := range []srtp.ProtectionProfile{srtp.ProtectionProfileAeadAes128Gcm, srtp.ProtectionProfileAeadAes256Gcm} {
		t.Run(profile.String(), func(t *testing.T) {
			keyLen, _ := profile.KeyLen()
			saltLen, _ := profile.SaltLen()
			key, salt := make([]byte, keyLen), make([]byte, saltLen)
			_, _ = rand.Read(key)
			_, _ = rand.Read(salt)
			ours, theirs := newGCMPair(t, key, salt, profile)
			type send struct {
				ssrc uint32
				seq  uint16
			}
			var sends []send
			for i := range 8 { // two streams crossing 65535 -> 0
				sends = append(sends, send{11, uint16(65532 + i)}, send{22, uint16(65534 + i)})
			}
			sends = append(sends, send{11, 65533}, send{11, 2}, send{22, 65535}, send{11, 4}, send{22, 500})
			for i, s := range sends {
				h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: s.seq, Timestamp: uint32(i) * 3000, SSRC: s.ssrc,
					Marker: i%3 == 0}
				if i%2 == 0 {
					h.CSRC = []uint32{7, 8}
				}
				if i%4 == 1 {
					if err := h.SetExtension(1, []byte{byte(i)}); err != nil {
						t.Fatal(err)
					}
				}
				payload := bytes.Repeat([]byte{byte(i)}, 100+i)
				plain, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
				if err != nil {
					t.Fatal(err)
				}
				want, err := theirs.EncryptRTP(nil, plain, nil)
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, len(plain), len(plain)+srtpOverhead)
				copy(buf, plain)
				got, err := ours.sealInPlace(buf)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("packet %d (ssrc %d seq %d) differs from pion's", i, s.ssrc, s.seq)
				}
			}
		})
	}
}

func TestGCMRejects(t *testing.T) {
	g, err := newGCMSession(make([]byte, 16), make([]byte, 12))
	if err != nil {
		t.Fatal(err)
	}
	ext := []byte{0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0, 5} // extension of 5 words, absent
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		{"empty", nil},
		{"short", []byte{0x80, 96, 0, 1}},
		{"version 1", append([]byte{0x40}, make([]byte, 20)...)},
		{"CSRCs missing", append([]byte{0x8f}, make([]byte, 20)...)},
		{"extension cut", ext},
		{"no room for the tag", make([]byte, 20)},
	} {
		pkt := tc.pkt
		if tc.name == "no room for the tag" {
			pkt[0] = 0x80
		}
		if _, err := g.sealInPlace(pkt); err == nil {
			t.Errorf("%s: sealed", tc.name)
		}
	}
	if _, err := newGCMSession(make([]byte, 20), make([]byte, 12)); err == nil {
		t.Error("20-byte key accepted")
	}
}

// A Sender forgets the state of a stream that ended and keeps the others'.
func TestSenderForget(t *testing.T) {
	s := NewSender(nil)
	if err := s.SetKeys(testKeys(gcm)); err != nil {
		t.Fatal(err)
	}
	for _, ssrc := range []uint32{1, 2, 3} {
		s.gcm.stream(ssrc).rolloverCount(100)
	}
	s.Forget(2)
	s.Forget(9) // unknown: nothing happens
	if len(s.gcm.streams) != 2 || s.gcm.streams[0].ssrc != 1 || s.gcm.streams[1].ssrc != 3 || !s.gcm.streams[1].started {
		t.Fatalf("streams after Forget: %+v", s.gcm.streams)
	}
}

// BenchmarkEncrypt compares the AES-128-GCM encryption in place of this package and of
// pion/srtp (which the AES-CM profiles still use), as a fan-out does it: one packet to each
// of many subscribers in turn, each with its own keys and state (2,000 audio subscriptions
// of 100-byte packets, 100 video ones of 1,200 bytes).
func BenchmarkEncrypt(b *testing.B) {
	for _, tc := range []struct{ subscribers, size int }{{2000, 100}, {100, 1200}} {
		plain, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 42}, Payload: make([]byte, tc.size-12)}).Marshal()
		buf := make([]byte, len(plain), len(plain)+srtpOverhead)
		keys := make([][]byte, tc.subscribers)
		for i := range keys {
			keys[i] = make([]byte, 16)
			_, _ = rand.Read(keys[i])
		}
		salt := make([]byte, 12)
		b.Run(fmt.Sprintf("sanke/%dx%d", tc.subscribers, tc.size), func(b *testing.B) {
			gs := make([]*gcmSession, tc.subscribers)
			for i := range gs {
				gs[i], _ = newGCMSession(keys[i], salt)
			}
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				copy(buf, plain)
				buf[2], buf[3] = byte(i>>8), byte(i)
				if _, err := gs[i%len(gs)].sealInPlace(buf[:len(plain)]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("pion/%dx%d", tc.subscribers, tc.size), func(b *testing.B) {
			cs := make([]*srtp.Context, tc.subscribers)
			for i := range cs {
				cs[i], _ = srtp.CreateContext(keys[i], salt, gcm)
			}
			var h rtp.Header
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				copy(buf, plain)
				buf[2], buf[3] = byte(i>>8), byte(i)
				if _, err := cs[i%len(cs)].EncryptRTP(buf[:0], buf[:len(plain)], &h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzGCMMatchesPion: any packet pion/srtp encrypts, this package encrypts to the same bytes;
// no input makes it panic. Three packets per input share the stream state, so sequence
// jumps and rollovers are exercised as well.
func FuzzGCMMatchesPion(f *testing.F) {
	f.Add([]byte{0x80, 96, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 42, 1, 2, 3}, uint16(3))
	f.Add([]byte{0x91, 96, 0, 5, 0, 0, 0, 1, 0, 0, 0, 42, 0, 0, 0, 7, 0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0, 9}, uint16(65535))
	key, salt := bytes.Repeat([]byte{7}, 16), bytes.Repeat([]byte{9}, 12)
	f.Fuzz(func(t *testing.T, pkt []byte, step uint16) {
		ours, theirs := newGCMPair(t, key, salt, gcm)
		for i := range 3 {
			if len(pkt) >= 4 {
				seq := uint16(pkt[2])<<8 | uint16(pkt[3])
				seq += uint16(i) * step
				pkt[2], pkt[3] = byte(seq>>8), byte(seq)
			}
			buf := make([]byte, len(pkt), len(pkt)+srtpOverhead)
			copy(buf, pkt)
			got, errOurs := ours.sealInPlace(buf)
			want, errTheirs := theirs.EncryptRTP(nil, pkt, nil)
			if errTheirs != nil || pkt[0]>>6 != 2 {
				// pion also checks the elements inside a header extension, and does not
				// check the RTP version, which this package refuses if not 2; the packets
				// it seals are built by rtp.Header.MarshalTo and always valid.
				continue
			}
			if errOurs != nil {
				t.Fatalf("refused a packet pion encrypts: %v", errOurs)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("packet %d differs from pion's", i)
			}
		}
	})
}
