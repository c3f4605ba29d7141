package sfu

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// reportLog records what a Reporter writes.
type reportLog struct {
	mu     sync.Mutex
	writes [][]rtcp.Packet
}

func (l *reportLog) write(pkts []rtcp.Packet) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes = append(l.writes, append([]rtcp.Packet(nil), pkts...))
	return nil
}

func (l *reportLog) ssrcs() [][]uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]uint32
	for _, w := range l.writes {
		var s []uint32
		for _, p := range w {
			s = append(s, p.(*rtcp.SenderReport).SSRC)
		}
		out = append(out, s)
	}
	return out
}

// One Reporter sends the sender reports of all its down tracks that have sent something,
// in one compound packet (chunks of maxReportsPerPacket), and forgets removed ones.
func TestReporterCompound(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0)
	log := &reportLog{}
	r := NewReporter(log.write, nil)
	defer r.Close()
	var tracks []*DownTrack
	for i := range maxReportsPerPacket + 2 {
		d := rig.bindTo(vp8Codec, &recordWriter{})
		d.mu.Lock()
		d.ssrc = uint32(100 + i)
		d.mu.Unlock()
		tracks = append(tracks, d)
	}
	idle, err := NewDownTrack(DownTrackParams{Receiver: rig.r, StreamID: "PA_pub|TR_test"}) // sends nothing: no report
	if err != nil {
		t.Fatal(err)
	}
	tracks = append(tracks, idle)
	rig.feed(0, rtp.Header{SequenceNumber: 1, Timestamp: 100}, vp8Payload(true, 1, 0, 1, true))

	r.report(time.Now(), tracks, nil)
	got := log.ssrcs()
	if len(got) != 2 || len(got[0]) != maxReportsPerPacket || len(got[1]) != 2 || got[0][0] != 100 || got[1][1] != 100+maxReportsPerPacket+1 {
		t.Fatalf("writes %v", got)
	}
}

// The reporting goroutine runs while the Reporter has down tracks: it reports every
// interval, drops closed down tracks, stops when none is left and starts again on add.
func TestReporterLoop(t *testing.T) {
	rig := newTestRig(t, vp8Codec, 0)
	log := &reportLog{}
	r := NewReporter(log.write, nil)
	r.interval = 5 * time.Millisecond
	defer r.Close()
	d := rig.bindTo(vp8Codec, &recordWriter{})
	rig.feed(0, rtp.Header{SequenceNumber: 1, Timestamp: 100}, vp8Payload(true, 1, 0, 1, true))
	running := func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.running }

	r.add(d)
	waitFor(t, func() bool { return len(log.ssrcs()) >= 2 })
	d.Close() // removes itself
	waitFor(t, func() bool { return !running() })
	n := len(log.ssrcs())

	d2 := rig.bindTo(vp8Codec, &recordWriter{})
	rig.feed(0, rtp.Header{SequenceNumber: 2, Timestamp: 200}, vp8Payload(true, 2, 0, 1, true))
	r.add(d2)
	waitFor(t, func() bool { return len(log.ssrcs()) > n })
	d2.closed.Store(true) // closed without remove (a close racing an add)
	waitFor(t, func() bool { return !running() })

	r.Close()
	r.add(d2)
	if running() {
		t.Fatal("a closed Reporter started reporting")
	}
}
