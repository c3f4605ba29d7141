package sfu

import (
	"github.com/pion/rtp"

	"github.com/sanke-edu/sanke/sfu/bwe"
	"github.com/sanke-edu/sanke/sfu/srtpout"
)

const (
	// paddingSize is the padding of one probe packet: RTP's most (the count is a byte).
	paddingSize = 255
	// maxPaddingPackets bounds the probe packets sent at one frame boundary: 12 KB, at 30
	// frames a second room for a 3 Mbit/s probe on one track.
	maxPaddingPackets = 48
)

// maybeProbe sends the padding the estimator's probe cluster asks for, right after the
// last packet of a frame (the marker bit) so that it never splits a frame: padding-only
// packets on the media SSRC, numbered on from the stream, which decoders skip (libwebrtc
// probes this way without RTX). The packets are recorded as padding in the sent ring, and
// NACKs for them are not answered. d.mu must be held.
func (d *DownTrack) maybeProbe(batch *srtpout.Batch, now int64) {
	if d.twccID == 0 || !d.fwd.video {
		return
	}
	due := d.cc.ProbePadding(now + d.ccOffset)
	for n := 0; due > 0 && n < maxPaddingPackets; n++ {
		seq, ts, ok := d.fwd.padSeq()
		if !ok {
			return
		}
		h := &d.hdr
		h.Version = 2
		h.Padding = true
		h.PaddingSize = paddingSize
		h.Marker = false
		h.PayloadType = d.payloadType
		h.SequenceNumber = seq
		h.Timestamp = ts
		h.SSRC = d.ssrc
		h.CSRC = h.CSRC[:0]
		d.setExtensions(h)
		st := d.stamp(now, bwe.FlagProbe)
		if !d.sendPaddingBatched(batch, h, st) {
			d.write(h, nil, st)
		}
		d.sent.put(sentPacket{outSeq: seq, outTS: ts, layer: paddingLayer})
		size := h.MarshalSize() + paddingSize
		d.counters.paddingPackets++
		d.counters.paddingBytes += uint64(size)
		due -= size + 16 + 28
	}
}

// paddingLayer marks padding in the sent ring: there is nothing to send again.
const paddingLayer = -1

// sendPaddingBatched queues a padding packet in the fan-out's batch; false if it could not
// (no batch, or the direct path is not ready: the caller then writes it). d.mu must be held.
func (d *DownTrack) sendPaddingBatched(batch *srtpout.Batch, h *rtp.Header, st srtpout.Stamp) bool {
	if batch == nil || !d.directReady() {
		return false
	}
	buf, err := batch.Buffer(d.out)
	if err != nil {
		return false
	}
	_, n, err := srtpout.MarshalPacket(buf, h, nil)
	if err != nil {
		return false
	}
	if err := batch.Commit(d.out, buf[:n], st); err != nil {
		d.writeFailed(err)
		return true
	}
	d.outMode = outputDirect
	return true
}
