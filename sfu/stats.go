package sfu

import "time"

// LayerStats describes one incoming layer of a Receiver.
type LayerStats struct {
	Layer     int
	RID       string
	SSRC      uint32
	Packets   uint64 // packets received
	Bytes     uint64 // bytes received, RTP headers included
	Lost      uint64 // packets never received (expected minus received)
	Keyframes uint64 // keyframes received
	PLIs      uint64 // keyframe requests sent to the publisher
	Bitrate   uint64 // bits per second over the last second; 0 when not Active
	Active    bool   // received packets within the last 1.5 s
}

// ReceiverStats describes a Receiver; totals sum its layers.
type ReceiverStats struct {
	TrackID  string
	MimeType string
	Packets  uint64
	Bytes    uint64
	Lost     uint64
	Bitrate  uint64
	Layers   []LayerStats
}

// DownTrackStats describes a DownTrack.
type DownTrackStats struct {
	Packets     uint64 // packets forwarded, retransmissions excluded
	Bytes       uint64 // payload bytes forwarded (the SR octet count)
	Retransmits uint64 // packets sent again in answer to NACKs
	NACKs       uint64 // sequence numbers the subscriber reported lost
	NACKMisses  uint64 // NACKed packets that were no longer cached
	// RtxLimited counts NACKs left unanswered because the packet was already sent again
	// maxResends times or the retransmission budget (half the forwarded bytes) was spent.
	RtxLimited  uint64
	PLIs        uint64 // picture loss indications from the subscriber
	FIRs        uint64 // full intra requests from the subscriber
	WriteErrors uint64 // packets the transport refused
	// DirectGaps counts the packets of a direct stream dropped while its sender had no path
	// (between two ICE candidate pairs).
	DirectGaps uint64
	// Direct: the packets go through the direct SRTP sender (package srtpout), not pion's
	// write path.
	Direct bool

	// From the subscriber's last receiver report.
	FractionLost float64 // in [0,1]
	TotalLost    uint32
	Jitter       time.Duration
	RTT          time.Duration // 0 until measured

	CurrentLayer int // LayerNone if nothing is forwarded
	TargetLayer  int
	// CapLayer is the highest layer the subscriber's downlink has room for (see Allocator);
	// LayerHigh when nothing limits it.
	CapLayer int

	// BWPaused is true while the Allocator pauses the track because not even its lowest
	// layer fits the downlink (the subscriber is told: stream state PAUSED).
	BWPaused bool

	// ProbePackets and ProbeBytes count the padding this track sent to probe the downlink.
	ProbePackets, ProbeBytes uint64
	// Downlink is the estimate of the subscriber connection's downlink, shared by its down
	// tracks; zero without an estimator.
	Downlink DownlinkStats
}

// DownlinkStats is the estimate of one subscriber connection's downlink (package bwe).
type DownlinkStats struct {
	Source      string // "twcc", "remb" or "none" (receiver-report loss only)
	EstimateBps uint64 // the budget the estimate gives
	AckedBps    uint64 // what the subscriber acknowledged receiving (TWCC)
	Usage       string // what the delay says: "normal", "overusing", "underusing"
	QueueDelay  time.Duration
	// Loss over the last second of feedback and the link's usual loss.
	Loss, BaselineLoss float64
	FeedbackMissing    bool
	// Limited: congestion has shown the path's limit (until then the estimate is a guess).
	Limited bool
	// Probes counts the probe clusters sent, ProbesOK those that proved more room.
	Probes, ProbesOK uint64
}
