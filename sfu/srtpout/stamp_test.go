package srtpout

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"

	"github.com/pion/rtp"

	"github.com/sanke-edu/sanke/sfu/bwe"
)

// twccOffset is where the value of a one-byte header extension (the first, no CSRC) sits.
const twccOffset = 12 + 4 + 1

// stampedHeader is a header with a 2-byte transport-cc extension (id 5) to stamp.
func stampedHeader(seq uint16, ssrc uint32) *rtp.Header {
	h := &rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, SSRC: ssrc}
	if err := h.SetExtension(5, []byte{0, 0}); err != nil {
		panic(err)
	}
	return h
}

// Transport-wide numbers are dense and follow the order of encryption when four fan-out
// workers (each with its own Batch) and retransmissions share one Sender; the receiver
// decrypts them from the authenticated header at the right offset. Run it with -race.
func TestStampDenseAndMonotonic(t *testing.T) {
	p := newPeer(t, gcm)
	s := newTestSender(t, p, gcm)
	hist := bwe.NewSendHistory()
	s.SetRecorder(hist)
	const workers, per = 4, 50
	payload := bytes.Repeat([]byte{1}, 100)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			batch := NewBatch(8)
			for i := range per {
				h := stampedHeader(uint16(i), uint32(100+w))
				var err error
				if i%10 == 9 {
					_, err = s.WriteRTP(h, payload, Stamp{Now: int64(i + 1), TWCC: twccOffset})
				} else {
					err = batch.Add(s, h, payload, Stamp{Now: int64(i + 1), TWCC: twccOffset})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
			batch.Flush()
		})
	}
	wg.Wait()
	seen := make(map[uint16]bool)
	numbers := make(map[uint32][]int) // per worker, by its own sequence number
	for range workers * per {
		pkt := p.read(t)
		ext := pkt.GetExtension(5)
		if len(ext) != 2 {
			t.Fatalf("packet without the extension: %v", pkt.Header)
		}
		n := binary.BigEndian.Uint16(ext)
		if seen[n] {
			t.Fatalf("number %d twice", n)
		}
		seen[n] = true
		if numbers[pkt.SSRC] == nil {
			numbers[pkt.SSRC] = make([]int, per)
		}
		numbers[pkt.SSRC][pkt.SequenceNumber] = int(n)
	}
	// Each worker encrypted its packets in order: their numbers rise (the wire order may
	// differ: retransmissions are sent at once, batches when they flush).
	for ssrc, ns := range numbers {
		for i := 1; i < per; i++ {
			if ns[i] <= ns[i-1] {
				t.Fatalf("worker %d: packet %d numbered %d after %d", ssrc, i, ns[i], ns[i-1])
			}
		}
	}
	for n := 1; n <= workers*per; n++ {
		if !seen[uint16(n)] {
			t.Fatalf("number %d missing: not dense", n)
		}
	}
	if _, bytes := hist.LastSent(); bytes != uint64(workers*per*(12+8+100+srtpOverhead+wireOverhead)) {
		t.Errorf("history recorded %d bytes", bytes)
	}
}

// Stamping adds no allocation to the direct path.
func TestStampAllocs(t *testing.T) {
	p := newPeer(t, gcm)
	s := newTestSender(t, p, gcm)
	s.SetRecorder(bwe.NewSendHistory())
	batch := NewBatch(64)
	h := stampedHeader(0, 42)
	payload := make([]byte, 1000)
	if a := testing.AllocsPerRun(500, func() {
		h.SequenceNumber++
		if err := batch.Add(s, h, payload, Stamp{Now: 1, TWCC: twccOffset}); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("stamped Add allocates %v", a)
	}
	batch.Flush()
}
