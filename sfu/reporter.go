package sfu

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// maxReportsPerPacket bounds the sender reports in one compound RTCP packet: 28 bytes each
// (no reception blocks), so 30 stay well under any MTU.
const maxReportsPerPacket = 30

// Reporter sends the RTCP sender reports of the down tracks that share one subscriber
// PeerConnection: every senderReportInterval, all of them in one compound packet, from one
// goroutine that runs only while it has down tracks. A classroom grid subscribes each
// student to many tracks; one reporter per connection instead of a goroutine, a timer and
// a packet per track saves their memory and wake-ups. Its methods are safe for concurrent
// use.
type Reporter struct {
	write    func([]rtcp.Packet) error
	logger   *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	tracks  []*DownTrack
	running bool
	closed  bool
	done    chan struct{}
}

// NewReporter returns a Reporter that sends through write, typically the subscriber
// PeerConnection's WriteRTCP. A nil logger discards its logs.
func NewReporter(write func([]rtcp.Packet) error, logger *slog.Logger) *Reporter {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Reporter{write: write, logger: logger, interval: senderReportInterval, done: make(chan struct{})}
}

// Close stops the Reporter for good.
func (r *Reporter) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		close(r.done)
	}
}

// add starts reporting d.
func (r *Reporter) add(d *DownTrack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || slices.Contains(r.tracks, d) {
		return
	}
	r.tracks = append(r.tracks, d)
	if !r.running {
		r.running = true
		go r.loop()
	}
}

// remove stops reporting d.
func (r *Reporter) remove(d *DownTrack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := slices.Index(r.tracks, d); i >= 0 {
		r.tracks = slices.Delete(r.tracks, i, i+1)
	}
}

// loop reports every interval until the Reporter closes or has no down track left.
func (r *Reporter) loop() {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	var tracks []*DownTrack
	var pkts []rtcp.Packet
	for {
		select {
		case <-r.done:
			return
		case now := <-t.C:
			r.mu.Lock()
			// A down track closed while it was being added is dropped here.
			r.tracks = slices.DeleteFunc(r.tracks, (*DownTrack).Closed)
			if len(r.tracks) == 0 {
				r.running = false
				r.mu.Unlock()
				return
			}
			tracks = append(tracks[:0], r.tracks...)
			r.mu.Unlock()
			pkts = r.report(now, tracks, pkts[:0])
			clear(tracks)
		}
	}
}

// report sends the sender reports of tracks at wall time now (those that have sent
// something), in compound packets of at most maxReportsPerPacket. pkts is scratch space;
// report returns it for reuse.
func (r *Reporter) report(now time.Time, tracks []*DownTrack, pkts []rtcp.Packet) []rtcp.Packet {
	for _, d := range tracks {
		if sr := d.senderReport(now); sr != nil {
			pkts = append(pkts, sr)
		}
	}
	for chunk := range slices.Chunk(pkts, maxReportsPerPacket) {
		if err := r.write(chunk); err != nil {
			r.logger.Debug("sender reports failed", "reports", len(chunk), "err", err)
		}
	}
	// The estimators of the connection learn here that feedback stopped coming.
	var ticked *Allocator
	for _, d := range tracks {
		if d.alloc != nil && d.alloc != ticked {
			ticked = d.alloc
			ticked.tick()
		}
	}
	clear(pkts)
	return pkts[:0]
}
