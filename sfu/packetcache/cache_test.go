package packetcache

import (
	"bytes"
	"testing"
)

// pkt returns a distinct fake packet for seq.
func pkt(seq uint16) []byte {
	return []byte{0x80, 96, byte(seq >> 8), byte(seq), 1, 2, 3, byte(seq)}
}

func TestNewRoundsSize(t *testing.T) {
	for _, tc := range []struct{ in, want int }{
		{0, 16}, {1, 16}, {16, 16}, {17, 32}, {500, 512}, {512, 512}, {1 << 20, 1 << 15},
	} {
		if got := New(tc.in).Size(); got != tc.want {
			t.Errorf("New(%d).Size() = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestCache(t *testing.T) {
	type step struct {
		add    []uint16 // added in order
		get    uint16
		wantOK bool
	}
	tests := []struct {
		name  string
		size  int
		steps []step
	}{
		{"hit", 16, []step{{add: []uint16{1, 2, 3}, get: 2, wantOK: true}}},
		{"never added", 16, []step{{add: []uint16{1, 2, 4}, get: 3}}},
		{"newer than highest", 16, []step{{add: []uint16{1}, get: 2}}},
		{"overwritten by ring", 16, []step{{add: seqs(0, 17), get: 0}, {get: 1, wantOK: true}}},
		{"wraparound", 16, []step{{add: seqs(65530, 12), get: 65535, wantOK: true}, {get: 3, wantOK: true}, {get: 65529}}},
		{"late packet within window", 16, []step{{add: []uint16{10, 12, 11}, get: 11, wantOK: true}}},
		{"late packet too old", 16, []step{{add: []uint16{100, 50}, get: 50}}},
		{"gap is a miss", 16, []step{{add: append(seqs(0, 16), 20), get: 16}, {get: 5, wantOK: true}, {get: 3}}},
		// Without clearing skipped slots, slot 5 would still hold the
		// packet numbered 5 one wraparound earlier.
		{"no stale hit across wraparound", 16, []step{{add: []uint16{5, 30005, 60005, 3, 7}, get: 5}}},
		{"big jump clears all", 16, []step{{add: append(seqs(0, 16), 1000), get: 1000, wantOK: true}, {get: 992}}},
		{"empty", 16, []step{{get: 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New(tc.size)
			for _, st := range tc.steps {
				for _, s := range st.add {
					c.Add(s, pkt(s))
				}
				buf := make([]byte, MaxPacketSize)
				n, ok := c.Get(st.get, buf)
				if ok != st.wantOK {
					t.Fatalf("Get(%d) ok = %v, want %v", st.get, ok, st.wantOK)
				}
				if ok && !bytes.Equal(buf[:n], pkt(st.get)) {
					t.Fatalf("Get(%d) = %x, want %x", st.get, buf[:n], pkt(st.get))
				}
			}
		})
	}
}

func TestCacheRejects(t *testing.T) {
	c := New(16)
	if c.Add(1, nil) {
		t.Error("empty packet stored")
	}
	if c.Add(1, make([]byte, MaxPacketSize+1)) {
		t.Error("oversized packet stored")
	}
	c.Add(1, pkt(1))
	if _, ok := c.Get(1, make([]byte, 3)); ok {
		t.Error("Get into a short buffer succeeded")
	}
}

// seqs returns n sequence numbers starting at from, wrapping.
func seqs(from uint16, n int) []uint16 {
	out := make([]uint16, n)
	for i := range out {
		out[i] = from + uint16(i)
	}
	return out
}
