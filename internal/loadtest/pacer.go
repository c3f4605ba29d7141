package loadtest

import (
	"context"
	"sync"
	"time"
)

// DefaultPacing is the factor of the publisher's total bitrate its packets are paced at, like
// the WebRTC pacer in browsers (2.5 times the target rate): a frame's packets are spread out
// instead of leaving in one burst, so that publish -> receive latency measures the server,
// not a queue of packets sent back to back.
const DefaultPacing = 2.5

// pacerBurst is how far behind schedule the pacer may send immediately (an idle pacer lets
// this much through at once).
const pacerBurst = 5 * time.Millisecond

// pacedPacket is a packet waiting in the pacer.
type pacedPacket struct {
	l      *pubLayer
	ts     uint32
	marker bool
	flags  uint8
	buf    *[maxPayload]byte
	n      int
}

// pacer sends a publisher's video packets at a fixed rate from its own goroutine.
type pacer struct {
	bytesPerSec float64
	write       func(l *pubLayer, ts uint32, marker bool, level, flags uint8, payload []byte)
	q           chan pacedPacket
	pool        sync.Pool
}

func newPacer(bitsPerSec float64, write func(*pubLayer, uint32, bool, uint8, uint8, []byte)) *pacer {
	return &pacer{
		bytesPerSec: bitsPerSec / 8,
		write:       write,
		q:           make(chan pacedPacket, 1024),
		pool:        sync.Pool{New: func() any { return new([maxPayload]byte) }},
	}
}

// enqueue copies payload into the queue (blocking when the queue is full).
func (pc *pacer) enqueue(l *pubLayer, ts uint32, marker bool, flags uint8, payload []byte) {
	buf := pc.pool.Get().(*[maxPayload]byte)
	n := copy(buf[:], payload)
	pc.q <- pacedPacket{l: l, ts: ts, marker: marker, flags: flags, buf: buf, n: n}
}

// run sends queued packets no faster than the rate, until ctx ends.
func (pc *pacer) run(ctx context.Context) {
	var next time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var pk pacedPacket
		select {
		case <-ctx.Done():
			return
		case pk = <-pc.q:
		}
		now := time.Now()
		if next.Before(now.Add(-pacerBurst)) {
			next = now.Add(-pacerBurst)
		}
		if wait := next.Sub(now); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		pc.write(pk.l, pk.ts, pk.marker, 0, pk.flags, pk.buf[:pk.n])
		pc.pool.Put(pk.buf)
		next = next.Add(time.Duration(float64(pk.n) / pc.bytesPerSec * float64(time.Second)))
	}
}
