package sfu

import (
	"testing"
	"unsafe"
)

// A sentPacket stays 24 bytes: every video subscriber holds sentRingVideo of them.
func TestSentPacketSize(t *testing.T) {
	if size := unsafe.Sizeof(sentPacket{}); size > 24 {
		t.Fatalf("sentPacket is %d bytes", size)
	}
}

func TestSentRing(t *testing.T) {
	r := newSentRing(8)
	for _, seq := range []uint16{65533, 65534, 65535, 0, 1, 4} { // wraps, skips 2 and 3
		r.put(sentPacket{outSeq: seq, inSeq: seq + 100})
	}
	for _, tc := range []struct {
		seq   uint16
		found bool
	}{
		{65533, true}, {65535, true}, {0, true}, {1, true}, {4, true},
		{2, false}, {3, false}, // never sent
		{5, false},     // ahead of the highest
		{65532, false}, // never put
	} {
		e := r.get(tc.seq)
		if (e != nil) != tc.found || (e != nil && e.inSeq != tc.seq+100) {
			t.Errorf("get(%d) = %+v, want found %v", tc.seq, e, tc.found)
		}
	}
	r.put(sentPacket{outSeq: 12}) // 65533..4 fall out of the 8-entry window
	if r.get(4) != nil || r.get(65533) != nil || r.get(12) == nil {
		t.Fatal("window not moved")
	}
	r.put(sentPacket{outSeq: 3}) // older than the window: ignored
	if r.get(3) != nil {
		t.Fatal("stale packet stored")
	}
}
