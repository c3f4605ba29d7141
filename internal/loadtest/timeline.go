package loadtest

import (
	"sync/atomic"
	"time"
)

// slowThreshold marks a packet as slow in the timeline: publish -> subscriber's socket above it.
const slowThreshold = 10 * time.Millisecond

// timeline counts, per second of the run, the packets subscribers received, how many were
// slow to reach their socket and the slowest one: stalls (a server or host pausing) show up
// there, where percentiles over the window hide when they happened.
type timeline struct {
	slots []timeSlot
}

type timeSlot struct {
	packets atomic.Uint64
	timed   atomic.Uint64 // packets with a latency to the socket
	slow    atomic.Uint64
	maxSock atomic.Int64 // ns
}

func newTimeline(d time.Duration) *timeline {
	return &timeline{slots: make([]timeSlot, int(d/time.Second)+1)}
}

// add accounts one packet read at nowNs whose latency to the socket was sockNs (0: unknown).
func (t *timeline) add(nowNs, sockNs int64) {
	i := int(nowNs / int64(time.Second))
	if i < 0 || i >= len(t.slots) {
		return
	}
	s := &t.slots[i]
	s.packets.Add(1)
	if sockNs <= 0 {
		return
	}
	s.timed.Add(1)
	if sockNs > int64(slowThreshold) {
		s.slow.Add(1)
	}
	for {
		m := s.maxSock.Load()
		if sockNs <= m || s.maxSock.CompareAndSwap(m, sockNs) {
			return
		}
	}
}

// TimelineEntry is one second of the run.
type TimelineEntry struct {
	Second    int     `json:"t"` // since the generator started
	Packets   uint64  `json:"packets"`
	Timed     uint64  `json:"timed"` // packets with a latency to the socket (none over ICE-TCP)
	Slow      uint64  `json:"slow"`  // publish -> socket above 10 ms
	MaxSockMs float64 `json:"max_socket_ms"`
}

// entries returns the seconds [from, to) that saw packets.
func (t *timeline) entries(from, to time.Duration) []TimelineEntry {
	var out []TimelineEntry
	for i := int(from / time.Second); i < int(to/time.Second)+1 && i < len(t.slots); i++ {
		s := &t.slots[i]
		if n := s.packets.Load(); n > 0 {
			out = append(out, TimelineEntry{Second: i, Packets: n, Timed: s.timed.Load(), Slow: s.slow.Load(),
				MaxSockMs: float64(s.maxSock.Load()) / 1e6})
		}
	}
	return out
}
