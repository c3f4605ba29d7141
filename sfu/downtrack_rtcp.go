package sfu

import (
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/sfu/bwe"
	"github.com/sanke-edu/sanke/sfu/packetcache"
)

const (
	// senderReportInterval is how often a video down track sends a sender report, and
	// audioReportInterval an audio one (libwebrtc's intervals: audio needs them only for
	// lip sync and round-trip time, and a grid subscriber has many audio tracks).
	senderReportInterval = time.Second
	audioReportInterval  = 5 * time.Second
	// minResendInterval stops answering repeated NACKs for one packet
	// faster than a retransmission can arrive (three quarters of the
	// round-trip time, when longer, decides: the subscriber asks again one
	// round trip after it asked, so its next NACK comes about one round
	// trip after our answer, and a full round trip as the bar dropped
	// about half of them, each a round trip more of freeze).
	minResendInterval = 40 * time.Millisecond
	// maxResends is how many times one packet is sent again at most: a
	// rural radio link losing 20% at random loses a packet seven times in a
	// row once in 80,000; congestion is the estimator's and the byte
	// budget's to bound, not this count's.
	maxResends = 6
	// Retransmissions draw on a byte budget that forwarding fills by half
	// of each packet's payload, up to rtxBurst: on a congested line a
	// subscriber NACKs most of what it is sent, and answering all of it
	// (Chromium re-asks every round trip) multiplied the traffic by 20.
	rtxBurst = 128 << 10
	// srHistory is how many sent sender reports are remembered to compute
	// the round-trip time from receiver reports.
	srHistory = 8
	// ntpEpochOffset is the number of seconds from 1900 (NTP) to 1970 (Unix).
	ntpEpochOffset = 2208988800
)

// retransmitScratch is where a DownTrack rebuilds NACKed packets.
type retransmitScratch struct {
	buf [packetcache.MaxPacketSize]byte
	pkt rtp.Packet
	hdr rtp.Header
}

// sentSR remembers one sender report for round-trip time measurement.
type sentSR struct {
	ntpMid uint32 // middle 32 bits of its NTP time, as echoed in LSR
	at     int64  // receiver clock when sent
}

// reportState is what a DownTrack keeps from and for RTCP reports.
type reportState struct {
	srs          [srHistory]sentSR
	next         int
	fractionLost uint8
	totalLost    uint32
	jitter       uint32 // RTP clock units
	rtt          time.Duration
}

// fill copies the report-derived statistics into s.
func (r *reportState) fill(s *DownTrackStats, clockRate uint32) {
	s.FractionLost = float64(r.fractionLost) / 256
	s.TotalLost = r.totalLost
	if clockRate > 0 {
		s.Jitter = time.Duration(uint64(r.jitter) * uint64(time.Second) / uint64(clockRate))
	}
	s.RTT = r.rtt
}

// StartRTCP starts the down track's RTCP work on sender, the RTPSender
// that AddTrack returned for it: a goroutine reads the subscriber's RTCP
// (NACKs are answered from the receiver's packet cache, PLI/FIR become
// throttled keyframe requests to the publisher, receiver reports feed
// Stats), and its Reporter (DownTrackParams.Reports or WriteRTCP) starts
// sending its sender reports. Only the first call has an effect.
func (d *DownTrack) StartRTCP(sender *webrtc.RTPSender) {
	if d.rtcpStarted.Swap(true) {
		return
	}
	go d.readRTCP(sender)
	if d.reporter != nil && !d.closed.Load() {
		d.reporter.add(d)
	}
}

// readRTCP reads RTCP from sender until it stops or the down track closes.
func (d *DownTrack) readRTCP(sender *webrtc.RTPSender) {
	buf := make([]byte, packetcache.MaxPacketSize)
	for {
		n, _, err := sender.Read(buf)
		if err != nil || d.closed.Load() {
			return
		}
		d.rtcpReads.Add(1)
		if n = d.takeTWCC(buf[:n]); n == 0 {
			continue
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		d.handleRTCP(pkts)
	}
}

// takeTWCC hands the TWCC feedback in the compound packet buf to the PeerConnection's
// estimator, without pion's parser (which allocates for every packet the feedback names),
// and moves the other packets to the front of buf. It returns their length.
func (d *DownTrack) takeTWCC(buf []byte) int {
	if d.cc == nil {
		return len(buf)
	}
	kept, rest := 0, buf
	for {
		pt, fmtType, pkt, next, ok := bwe.NextRTCP(rest)
		if !ok {
			break
		}
		if bwe.IsTWCC(pt, fmtType) {
			if err := d.cc.OnTWCC(pkt, d.receiver.now()+d.ccOffset); err != nil {
				d.logger.Debug("bad TWCC feedback", "err", err)
			}
		} else {
			kept += copy(buf[kept:], pkt) // never ahead of what is read: pkt is at or after kept
		}
		rest = next
	}
	return kept
}

// handleRTCP processes RTCP from the subscriber.
func (d *DownTrack) handleRTCP(pkts []rtcp.Packet) {
	keyframe := false
	for _, pkt := range pkts {
		switch p := pkt.(type) {
		case *rtcp.TransportLayerNack:
			d.handleNACK(p)
		case *rtcp.PictureLossIndication:
			d.mu.Lock()
			d.counters.plis++
			d.mu.Unlock()
			keyframe = true
		case *rtcp.FullIntraRequest:
			d.mu.Lock()
			d.counters.firs++
			d.mu.Unlock()
			keyframe = true
		case *rtcp.ReceiverEstimatedMaximumBitrate:
			if d.cc != nil {
				d.cc.OnREMB(uint64(p.Bitrate), d.receiver.now()+d.ccOffset)
			}
		case *rtcp.ReceiverReport:
			d.handleReports(p.Reports)
		case *rtcp.SenderReport:
			d.handleReports(p.Reports)
		}
	}
	if keyframe {
		d.mu.Lock()
		layer := d.fwd.current
		if layer == LayerNone {
			layer = d.fwd.target
		}
		// The subscriber's first request says its first keyframe did not make it (it came
		// before the subscriber could take it: a server's answer still on its way); its
		// first picture waits on this one, so it is urgent.
		first := d.counters.plis+d.counters.firs == 1
		d.mu.Unlock()
		sent := d.receiver.requestKeyframe(layer, first)
		if first {
			d.logger.Debug("ttff: subscriber's first keyframe request", "layer", layer, "sent", sent)
		}
	}
}

// handleNACK retransmits every packet n names that is still known.
func (d *DownTrack) handleNACK(n *rtcp.TransportLayerNack) {
	now := d.receiver.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.writer == nil || n.MediaSSRC != d.ssrc {
		return
	}
	for i := range n.Nacks {
		n.Nacks[i].Range(func(seq uint16) bool {
			d.counters.nacks++
			d.resend(seq, now)
			return true
		})
	}
}

// resend sends output packet outSeq again, rebuilt from the receiver's
// cache with the header and VP8 descriptor it was first sent with. d.mu
// must be held.
func (d *DownTrack) resend(outSeq uint16, now int64) {
	e := d.sent.get(outSeq)
	if e == nil {
		d.counters.nackMisses++
		return
	}
	if e.layer == paddingLayer {
		return // probe padding: nothing lost that matters
	}
	if d.fwd.stopped() {
		// Paused (by the subscriber or for lack of downlink) or muted: the subscriber
		// starts again on a keyframe, so old packets are of no use, and on a line too
		// narrow for the video their resends would crowd out the voice.
		d.counters.rtxLimited++
		return
	}
	if e.resentAt != 0 && now-e.resentAt < int64(max(minResendInterval, d.reports.rtt*3/4)) {
		return
	}
	if e.resends >= maxResends {
		d.counters.rtxLimited++
		return
	}
	l := d.receiver.layer(int(e.layer))
	if l == nil {
		d.counters.nackMisses++
		return
	}
	if d.rtx == nil {
		d.rtx = new(retransmitScratch)
	}
	s := d.rtx
	n, ok := l.cache.Get(e.inSeq, s.buf[:])
	if !ok || s.pkt.Unmarshal(s.buf[:n]) != nil {
		d.counters.nackMisses++
		return
	}
	h := &s.hdr
	h.Version = 2
	h.Padding = s.pkt.Padding
	h.PaddingSize = s.pkt.Header.PaddingSize
	h.Marker = s.pkt.Marker
	h.PayloadType = d.payloadType
	h.SequenceNumber = outSeq
	h.Timestamp = e.outTS
	h.SSRC = d.ssrc
	h.CSRC = h.CSRC[:0]
	d.setExtensions(h)
	payload := s.pkt.Payload // points into s.buf: ours to patch
	if d.receiver.audio != nil {
		h.Padding, h.PaddingSize = false, 0
		off := s.pkt.Header.MarshalSize()
		if payload, ok = d.audioResendPayload(s.buf[:n], off, s.pkt.PayloadType, payload); !ok {
			d.counters.nackMisses++
			return
		}
	}
	if e.mungeVP8 {
		if desc, ok := parseVP8Descriptor(payload); ok {
			desc.patch(payload, e.vp8)
		}
	}
	if d.rtxTokens < int64(len(payload)) {
		d.counters.rtxLimited++
		return
	}
	d.rtxTokens -= int64(len(payload))
	d.write(h, payload, d.stamp(now, bwe.FlagRetransmit))
	e.resentAt = now
	e.resends++
	d.counters.retransmits++
	d.counters.retransmitBytes += uint64(len(payload))
}

// handleReports keeps the statistics of the report blocks about this down
// track and measures the round-trip time from their LSR/DLSR.
func (d *DownTrack) handleReports(reports []rtcp.ReceptionReport) {
	now := d.receiver.now()
	d.mu.Lock()
	var mine *rtcp.ReceptionReport
	for i, rr := range reports {
		if rr.SSRC != d.ssrc || d.writer == nil {
			continue
		}
		mine = &reports[i]
		r := &d.reports
		r.fractionLost = rr.FractionLost
		d.adaptRED(float64(rr.FractionLost)/256, now)
		r.totalLost = rr.TotalLost
		r.jitter = rr.Jitter
		if rr.LastSenderReport == 0 {
			continue
		}
		for _, sr := range r.srs {
			if sr.at == 0 || sr.ntpMid != rr.LastSenderReport {
				continue
			}
			// DLSR is in 1/65536 s.
			delay := int64(rr.Delay) * int64(time.Second) / 65536
			if rtt := now - sr.at - delay; rtt >= 0 {
				r.rtt = time.Duration(rtt)
			}
			break
		}
	}
	sent := d.counters.packets + d.counters.retransmits // a retransmission that arrives counts as received
	rtt := d.reports.rtt
	if mine != nil && d.fwd.started {
		// Packets sent after the newest one the report covers were still on their way when it
		// left: as far as this report goes they are not sent yet (a keyframe's burst just
		// before a report would otherwise count as lost, a large share at a low layer's rate).
		if ahead := int16(d.fwd.lastSeq - uint16(mine.LastSequenceNumber)); ahead > 0 {
			sent -= min(sent, uint64(ahead))
		}
	}
	playout := mine != nil && d.playout.id != 0
	d.mu.Unlock()
	if mine != nil && d.cc != nil && rtt > 0 {
		d.cc.OnReport(rtt)
	}
	if playout {
		loss := -1.0 // no estimator: the reports' own loss
		if d.cc != nil {
			loss = d.cc.Estimate(now).Baseline
		}
		d.mu.Lock()
		d.adaptPlayout(loss, float64(mine.FractionLost)/256, rtt, uint16(mine.LastSequenceNumber))
		d.mu.Unlock()
	}
	if mine != nil && d.alloc != nil {
		d.alloc.report(d, mine.LastSequenceNumber, lost24(mine.TotalLost), sent, now)
	}
}

// lost24 sign-extends a report block's 24-bit cumulative loss (negative with duplicates).
func lost24(v uint32) int32 {
	return int32(v<<8) >> 8
}

// senderReport builds the down track's sender report at wall time wall,
// nil before anything was sent. Lip sync needs the subscriber to map this
// track's RTP clock to the same wall clock as the publisher's other tracks,
// so the publisher's last sender report on the forwarded layer is carried
// over through the timestamp offset and advanced by the time elapsed since
// it arrived. Without one, the local wall clock and the last timestamp sent
// are used.
func (d *DownTrack) senderReport(wall time.Time) *rtcp.SenderReport {
	now := d.receiver.now()
	clockRate := d.receiver.Codec().ClockRate
	d.mu.Lock()
	defer d.mu.Unlock()
	f := &d.fwd
	if d.writer == nil || !f.started {
		return nil
	}
	if last := d.reports.srs[(d.reports.next+srHistory-1)%srHistory].at; !f.video && last != 0 &&
		now-last < int64(audioReportInterval-senderReportInterval/2) {
		return nil // not due yet (the Reporter ticks every senderReportInterval)
	}
	var ntp uint64
	var ts uint32
	if sr := d.receiver.senderReport(f.last); sr != nil {
		elapsed := now - sr.at
		ntp = sr.ntp + nanosToNTP(elapsed)
		ts = sr.rtp + f.tsOffset + ticks(elapsed, clockRate)
	} else {
		ntp = toNTP(wall)
		ts = f.lastTS + ticks(now-f.lastSentAt, clockRate)
	}
	d.reports.srs[d.reports.next] = sentSR{ntpMid: uint32(ntp >> 16), at: now}
	d.reports.next = (d.reports.next + 1) % srHistory
	return &rtcp.SenderReport{
		SSRC:        d.ssrc,
		NTPTime:     ntp,
		RTPTime:     ts,
		PacketCount: uint32(d.counters.packets),
		OctetCount:  uint32(d.counters.bytes),
	}
}

// toNTP converts a wall clock time to a 64-bit NTP timestamp.
func toNTP(t time.Time) uint64 {
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return secs<<32 | frac
}

// nanosToNTP converts a duration in nanoseconds to NTP units (2^-32 s).
func nanosToNTP(ns int64) uint64 {
	if ns <= 0 {
		return 0
	}
	secs, rem := uint64(ns)/uint64(time.Second), uint64(ns)%uint64(time.Second)
	return secs<<32 + rem<<32/uint64(time.Second)
}
