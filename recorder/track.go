package recorder

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
)

// pliInterval is how often a video track waiting for a keyframe asks again.
const pliInterval = time.Second

// maxRTPPacket bounds an RTP packet the recorder reads: more than a network path's MTU.
const maxRTPPacket = 4096

// trackReader reads one subscribed track, rebuilds frames and hands them to its file.
//
// Frames are checked before they are written: a video frame must be complete (its last
// packet carries the marker) and follow the previous one without a hole in the sequence
// numbers (padding aside); otherwise video waits for the next keyframe, which it asks for
// with a PLI. Loss therefore becomes a gap, never a decoder-corrupting frame.
type trackReader struct {
	f     *outFile
	ft    *fileTrack
	track *webrtc.TrackRemote
	pli   func()
	log   *slog.Logger
	video bool
	vp9   bool
	clock int64
	// h264 converts H.264 access units to AVC samples (nil for other codecs).
	h264 *avcConverter

	sb *samplebuilder.SampleBuilder

	ext      int64 // unwrapped RTP timestamp of the newest packet
	anchored bool
	anchorTS int64 // unwrapped RTP timestamp at anchorMs
	anchorMs int64 // file time (ms) of anchorTS
	lastSeq  uint16
	haveSeq  bool
	padding  [64]uint16
	padN     int
	needKey  bool
	lastPLI  time.Time

	stopped atomic.Bool
	mu      sync.Mutex
	// next is the file this track continues in (set by handOver); the reader switches to it
	// at the first frame that falls within that file.
	next atomic.Pointer[fileTarget]

	// statistics, logged when the track ends
	packets, frames, gaps, incomplete, waitKey, plis int
	late, malformed                                  int
	unparsed                                         int // packets that are not RTP, skipped
	highest                                          uint16
}

func newTrackReader(f *outFile, ft *fileTrack, track *webrtc.TrackRemote, rp *lksdk.RemoteParticipant, mime string, log *slog.Logger) *trackReader {
	ssrc := track.SSRC()
	tr := newReader(f, ft, track.Kind() == webrtc.RTPCodecTypeVideo, mime, int64(track.Codec().ClockRate),
		func() { rp.WritePLI(ssrc) }, log.With("track", track.ID()))
	tr.track = track
	return tr
}

// newReader makes a reader of RTP handed to push (run reads them from tr.track).
func newReader(f *outFile, ft *fileTrack, video bool, mime string, clock int64, pli func(), log *slog.Logger) *trackReader {
	tr := &trackReader{f: f, ft: ft, log: log, video: video, clock: clock, needKey: true, pli: pli}
	if tr.clock == 0 {
		tr.clock = 90000
	}
	var dep rtp.Depacketizer
	var maxLate uint16 = 64
	var opts []samplebuilder.Option
	switch {
	case strings.HasSuffix(mime, "vp8"):
		dep = &codecs.VP8Packet{}
		maxLate = 512
	case strings.HasSuffix(mime, "h264"):
		dep = &h264Depacketizer{}
		maxLate = 512
		tr.h264 = &avcConverter{}
	case strings.HasSuffix(mime, "vp9"):
		dep = &codecs.VP9Packet{}
		maxLate = 512
		tr.vp9 = true
		opts = append(opts, samplebuilder.WithPacketHeadHandler(func(h any) any {
			p, ok := h.(*codecs.VP9Packet)
			return ok && !p.P
		}))
	default:
		dep = &codecs.OpusPacket{}
	}
	opts = append(opts, samplebuilder.WithRTPHeaders(true), samplebuilder.WithMaxTimeDelay(time.Second))
	tr.sb = samplebuilder.New(maxLate, dep, uint32(tr.clock), opts...)
	return tr
}

// fileTarget is a file and the track of it a reader writes to.
type fileTarget struct {
	f  *outFile
	ft *fileTrack
}

func (tr *trackReader) stop() { tr.stopped.Store(true) }

// moveTo makes the reader continue in file f's track ft (safe from any goroutine).
func (tr *trackReader) moveTo(f *outFile, ft *fileTrack) { tr.next.Store(&fileTarget{f, ft}) }

// switchFile moves the reader to the file handOver gave it once pts (ms in the current
// file) falls within that file, keeping the track's timeline continuous; it returns pts in
// the file the frame goes to.
func (tr *trackReader) switchFile(pts int64) int64 {
	t := tr.next.Load()
	if t == nil {
		return pts
	}
	shift := t.f.created.Sub(tr.f.created).Milliseconds()
	if pts < shift {
		return pts // still before the new file began: it belongs to the old one
	}
	tr.next.CompareAndSwap(t, nil)
	tr.f, tr.ft = t.f, t.ft
	tr.anchorMs -= shift
	return pts - shift
}

// askKeyframe sends a PLI unless one was sent within pliInterval.
func (tr *trackReader) askKeyframe() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if time.Since(tr.lastPLI) < pliInterval {
		return
	}
	tr.lastPLI = time.Now()
	tr.plis++
	tr.pli()
}

func (tr *trackReader) run() {
	if tr.video {
		tr.askKeyframe()
	}
	var readErr error
	// pion's ReadRTP returns an error for a packet it cannot parse or that is larger than its
	// receive MTU (1460 bytes), and a loop on it would end the recording there: each packet is
	// read whole into scratch space, copied out at its size (the sample builder keeps it) and
	// parsed here, where a bad one is skipped.
	scratch := make([]byte, maxRTPPacket)
	for !tr.stopped.Load() {
		n, _, err := tr.track.Read(scratch)
		if errors.Is(err, io.ErrShortBuffer) {
			tr.unparsed++ // larger than any packet over a network path: dropped by pion
			continue
		}
		if err != nil {
			readErr = err
			break
		}
		pkt := &rtp.Packet{}
		if err := pkt.Unmarshal(append([]byte(nil), scratch[:n]...)); err != nil {
			// One bad packet is a gap, like a lost one, never the end of the recording.
			tr.unparsed++
			continue
		}
		tr.push(pkt, time.Now())
	}
	tr.sb.Flush()
	tr.drain()
	tr.mu.Lock()
	plis := tr.plis
	tr.mu.Unlock()
	tr.log.Info("track recording ended", "file", tr.f.currentName(), "packets", tr.packets, "late_packets", tr.late, "frames", tr.frames,
		"gaps", tr.gaps, "incomplete", tr.incomplete, "malformed", tr.malformed, "dropped_waiting_keyframe", tr.waitKey, "plis", plis,
		"unparsed", tr.unparsed, "stopped", tr.stopped.Load(), "read_err", readErr)
}

// push handles one received packet.
func (tr *trackReader) push(pkt *rtp.Packet, now time.Time) {
	if !tr.anchored {
		tr.ext = int64(pkt.Timestamp)
		tr.anchorTS = tr.ext
		tr.anchorMs = now.Sub(tr.f.created).Milliseconds()
		tr.anchored = true
	} else {
		tr.ext = tr.unwrap(pkt.Timestamp)
	}
	if len(pkt.Payload) == 0 {
		tr.padding[tr.padN%len(tr.padding)] = pkt.SequenceNumber
		tr.padN++
		return
	}
	tr.packets++
	if tr.packets > 1 && int16(pkt.SequenceNumber-tr.highest) < 0 {
		tr.late++
	} else {
		tr.highest = pkt.SequenceNumber
	}
	tr.sb.Push(pkt)
	tr.drain()
	if tr.video && tr.needKey {
		tr.askKeyframe()
	}
}

func (tr *trackReader) unwrap(ts uint32) int64 {
	return tr.ext + int64(int32(ts-uint32(tr.ext)))
}

func (tr *trackReader) isPadding(seq uint16) bool {
	for i := 0; i < min(tr.padN, len(tr.padding)); i++ {
		if tr.padding[i] == seq {
			return true
		}
	}
	return false
}

// contiguous reports whether first follows the previous frame with only padding between.
func (tr *trackReader) contiguous(first uint16) bool {
	if !tr.haveSeq {
		return true
	}
	gap := first - tr.lastSeq - 1
	if gap > uint16(len(tr.padding)) {
		return false
	}
	for s := tr.lastSeq + 1; s != first; s++ {
		if !tr.isPadding(s) {
			return false
		}
	}
	return true
}

func (tr *trackReader) drain() {
	for s := tr.sb.Pop(); s != nil; s = tr.sb.Pop() {
		tr.handle(s)
	}
}

func (tr *trackReader) handle(s *media.Sample) {
	if len(s.RTPHeaders) == 0 || len(s.Data) == 0 {
		return
	}
	first, last := s.RTPHeaders[0], s.RTPHeaders[len(s.RTPHeaders)-1]
	lost := !tr.contiguous(first.SequenceNumber)
	tr.lastSeq, tr.haveSeq = last.SequenceNumber, true
	key := true
	data := s.Data
	var avcAU *avcAccessUnit
	if tr.video {
		switch {
		case tr.vp9:
			key, _ = s.Metadata.(bool)
		case tr.h264 != nil:
			key = false // known once converted, below
		default:
			key = s.Data[0]&0x01 == 0
		}
		if lost {
			tr.gaps++
		}
		if lost || !last.Marker {
			tr.needKey = true
			if !last.Marker {
				tr.incomplete++
				tr.askKeyframe()
				return
			}
		}
		if tr.h264 != nil {
			au, err := tr.h264.convert(s.Data)
			if err != nil {
				// Malformed: skipped like a lost frame, until the next good keyframe.
				tr.malformed++
				if tr.malformed <= 3 || tr.malformed%100 == 0 {
					tr.log.Warn("malformed H.264 access unit skipped", "err", err, "count", tr.malformed)
				}
				tr.needKey = true
				tr.askKeyframe()
				return
			}
			key, data, avcAU = au.key, au.sample, &au
		}
		if tr.needKey && !key {
			tr.waitKey++
			tr.askKeyframe()
			return
		}
		if key {
			tr.needKey = false
		}
	}
	pts := tr.switchFile(tr.anchorMs + (tr.unwrap(s.PacketTimestamp)-tr.anchorTS)*1000/tr.clock)
	dur := s.Duration.Milliseconds()
	if dur <= 0 || dur > 1000 {
		dur = 20
		if tr.video {
			dur = 33
		}
	}
	tr.frames++
	var cfg *videoConfig
	if avcAU != nil && avcAU.key {
		cfg = &videoConfig{codecPrivate: avcAU.config, width: avcAU.width, height: avcAU.height}
	}
	tr.f.write(tr, tr.ft, pts, dur, key, data, cfg)
}
