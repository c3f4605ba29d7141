package testclient

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/test/testmedia"
)

// Resolution is a frame size seen in a keyframe, and when.
type Resolution struct {
	At            time.Time
	Width, Height int
}

// TrackSnapshot is a consistent copy of what a subscriber has received on one track.
type TrackSnapshot struct {
	// Identification.
	TrackSID            string
	ParticipantIdentity string
	ParticipantSID      string
	Kind                webrtc.RTPCodecType
	MimeType            string
	SSRC                uint32
	PayloadType         uint8
	SubscribedAt        time.Time

	// Counters over all received RTP packets.
	Packets       int
	Bytes         int // RTP payload bytes
	FirstPacketAt time.Time
	LastPacketAt  time.Time
	HighestSeq    uint16
	LastTimestamp uint32 // RTP timestamp of the newest in-order packet
	// Gaps counts forward jumps in sequence numbers; Missing is the sum of the numbers skipped.
	// A continuous stream has both 0. Late counts packets older than the newest one (reordered
	// or retransmitted); a retransmission can fill a gap counted earlier.
	Gaps    int
	Missing int
	Late    int
	// TimestampBackwards counts in-order packets whose RTP timestamp is older than the previous
	// packet's: a forwarder that rewrites timestamps badly on a layer switch shows up here.
	TimestampBackwards int
	// MarkerPackets counts packets with the RTP marker bit (end of a video frame).
	MarkerPackets int

	// Video.
	// Frames counts frames whose packets all arrived contiguously, start to marker;
	// BrokenFrames those that missed a packet or never saw their start (VP8 only; for other
	// codecs Frames counts marker bits).
	Frames       int
	BrokenFrames int
	// Keyframes counts keyframes started (first packet seen). For VP8, Width and Height are
	// the size in the newest keyframe and Resolutions lists every change of size.
	Keyframes       int
	FirstKeyframeAt time.Time
	LastKeyframeAt  time.Time
	Width, Height   int
	Resolutions     []Resolution
	// PictureIDJumps counts VP8 frames whose picture id does not follow the previous one.
	PictureIDJumps int

	// Audio: the newest RFC 6464 level (-dBov, 0 loudest .. 127 silent) and voice flag from
	// the audio-level header extension; AudioLevel is -1 before any.
	AudioLevel        int
	AudioVoice        bool
	AudioLevelPackets int

	// Ended is true once ReadRTP returned an error (track unsubscribed or connection gone).
	Ended  bool
	EndErr string
}

// String summarises the snapshot for failure messages.
func (s TrackSnapshot) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "track %s of %s (%s): packets=%d bytes=%d gaps=%d missing=%d late=%d tsBack=%d",
		s.TrackSID, s.ParticipantIdentity, s.MimeType, s.Packets, s.Bytes, s.Gaps, s.Missing, s.Late, s.TimestampBackwards)
	if s.Kind == webrtc.RTPCodecTypeVideo {
		fmt.Fprintf(&b, " frames=%d broken=%d keyframes=%d size=%dx%d picIDJumps=%d", s.Frames, s.BrokenFrames,
			s.Keyframes, s.Width, s.Height, s.PictureIDJumps)
	} else {
		fmt.Fprintf(&b, " audioLevel=%d", s.AudioLevel)
	}
	if !s.LastPacketAt.IsZero() {
		fmt.Fprintf(&b, " lastPacket=%s ago", time.Since(s.LastPacketAt).Round(time.Millisecond))
	}
	if s.Ended {
		fmt.Fprintf(&b, " ended(%s)", s.EndErr)
	}
	return b.String()
}

// BitrateSince returns the payload bitrate in bit/s between an earlier snapshot and s.
func (s TrackSnapshot) BitrateSince(earlier TrackSnapshot) float64 {
	dt := s.LastPacketAt.Sub(earlier.LastPacketAt).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(s.Bytes-earlier.Bytes) * 8 / dt
}

// FPSSince returns the complete frames per second received between an earlier snapshot and
// s.
func (s TrackSnapshot) FPSSince(earlier TrackSnapshot) float64 {
	dt := s.LastPacketAt.Sub(earlier.LastPacketAt).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(s.Frames-earlier.Frames) / dt
}

// HasResolution reports whether the newest keyframe was w x h.
func (s TrackSnapshot) HasResolution(w, h int) bool { return s.Width == w && s.Height == h }

// TrackStats accumulates what one subscriber receives on one remote track. It is safe for
// concurrent use.
type TrackStats struct {
	mu sync.Mutex
	s  TrackSnapshot

	haveSeq   bool
	haveTS    bool
	inFrame   bool // a VP8 frame start was seen and its marker not yet
	frameOK   bool // no packet missing so far in the current frame
	lastPicID int  // -1 unknown
	lastKeyTS uint32
	haveKeyTS bool
	levelExt  uint8 // negotiated id of the audio-level extension; 0 none
	done      chan struct{}
}

func newTrackStats(track *webrtc.TrackRemote, receiver *webrtc.RTPReceiver, identity, participantSID, trackSID string) *TrackStats {
	ts := &TrackStats{lastPicID: -1, done: make(chan struct{})}
	ts.s = TrackSnapshot{
		TrackSID:            trackSID,
		ParticipantIdentity: identity,
		ParticipantSID:      participantSID,
		Kind:                track.Kind(),
		MimeType:            track.Codec().MimeType,
		SSRC:                uint32(track.SSRC()),
		PayloadType:         uint8(track.PayloadType()),
		SubscribedAt:        time.Now(),
		AudioLevel:          -1,
	}
	if receiver != nil {
		for _, ext := range receiver.GetParameters().HeaderExtensions {
			if ext.URI == sdp.AudioLevelURI {
				ts.levelExt = uint8(ext.ID)
			}
		}
	}
	return ts
}

// Snapshot returns a copy of the statistics.
func (t *TrackStats) Snapshot() TrackSnapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.s
	s.Resolutions = append([]Resolution(nil), t.s.Resolutions...)
	return s
}

// Done is closed when the track's reader stopped (track ended).
func (t *TrackStats) Done() <-chan struct{} { return t.done }

// read consumes RTP from track until it ends, feeding the statistics and onPacket.
func (t *TrackStats) read(track *webrtc.TrackRemote, onPacket func(*TrackStats, *rtp.Packet)) {
	defer close(t.done)
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			t.mu.Lock()
			t.s.Ended = true
			if errors.Is(err, io.EOF) {
				t.s.EndErr = "EOF"
			} else {
				t.s.EndErr = err.Error()
			}
			t.mu.Unlock()
			return
		}
		t.add(pkt, time.Now())
		if onPacket != nil {
			onPacket(t, pkt)
		}
	}
}

// add accounts for one packet received at now.
func (t *TrackStats) add(pkt *rtp.Packet, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := &t.s
	s.Packets++
	s.Bytes += len(pkt.Payload)
	if s.FirstPacketAt.IsZero() {
		s.FirstPacketAt = now
	}
	s.LastPacketAt = now
	if pkt.Marker {
		s.MarkerPackets++
	}

	inOrder := true
	contiguous := true
	if t.haveSeq {
		diff := pkt.SequenceNumber - s.HighestSeq // modulo 2^16
		switch {
		case diff == 0 || diff >= 0x8000:
			s.Late++
			inOrder = false
		case diff > 1:
			s.Gaps++
			s.Missing += int(diff - 1)
			contiguous = false
		}
	}
	if inOrder {
		s.HighestSeq = pkt.SequenceNumber
		t.haveSeq = true
		if t.haveTS && int32(pkt.Timestamp-s.LastTimestamp) < 0 {
			s.TimestampBackwards++
		}
		s.LastTimestamp = pkt.Timestamp
		t.haveTS = true
	}

	if s.Kind == webrtc.RTPCodecTypeAudio {
		if t.levelExt != 0 {
			if ext := pkt.GetExtension(t.levelExt); len(ext) > 0 {
				s.AudioLevel = int(ext[0] & 0x7f)
				s.AudioVoice = ext[0]&0x80 != 0
				s.AudioLevelPackets++
			}
		}
		return
	}
	if !inOrder {
		return // a late packet cannot repair the in-order frame accounting below
	}
	switch strings.ToLower(s.MimeType) {
	case strings.ToLower(webrtc.MimeTypeVP8):
		t.addVP8(pkt, now, contiguous)
	case strings.ToLower(webrtc.MimeTypeH264):
		if h264IsKeyframePacket(pkt.Payload) && (!t.haveKeyTS || pkt.Timestamp != t.lastKeyTS) {
			t.lastKeyTS, t.haveKeyTS = pkt.Timestamp, true
			t.noteKeyframe(now, 0, 0)
		}
		if pkt.Marker {
			s.Frames++
		}
	default:
		if pkt.Marker {
			s.Frames++
		}
	}
}

// addVP8 does the VP8 frame accounting for an in-order packet.
func (t *TrackStats) addVP8(pkt *rtp.Packet, now time.Time, contiguous bool) {
	s := &t.s
	var vp8 codecs.VP8Packet
	payload, err := vp8.Unmarshal(pkt.Payload)
	if err != nil {
		return
	}
	start := vp8.S == 1 && vp8.PID == 0
	if start {
		if t.inFrame {
			s.BrokenFrames++ // previous frame never got its marker
		}
		t.inFrame, t.frameOK = true, true
		if vp8.I == 1 {
			pid := int(vp8.PictureID)
			// 15-bit ids wrap at 0x7fff, 7-bit ones at 0x7f; pion does not expose which.
			if t.lastPicID >= 0 && pid != (t.lastPicID+1)&0x7fff && pid != (t.lastPicID+1)&0x7f {
				s.PictureIDJumps++
			}
			t.lastPicID = pid
		}
		if testmedia.IsVP8Keyframe(payload) {
			w, h, _ := testmedia.VP8FrameSize(payload)
			t.noteKeyframe(now, w, h)
		}
	} else if !contiguous {
		t.frameOK = false
	}
	if pkt.Marker {
		switch {
		case t.inFrame && t.frameOK:
			s.Frames++
		default:
			s.BrokenFrames++
		}
		t.inFrame = false
	}
}

// noteKeyframe records a keyframe start; w and h are 0 when unknown.
func (t *TrackStats) noteKeyframe(now time.Time, w, h int) {
	s := &t.s
	s.Keyframes++
	if s.FirstKeyframeAt.IsZero() {
		s.FirstKeyframeAt = now
	}
	s.LastKeyframeAt = now
	if w > 0 && h > 0 {
		if w != s.Width || h != s.Height {
			s.Resolutions = append(s.Resolutions, Resolution{At: now, Width: w, Height: h})
		}
		s.Width, s.Height = w, h
	}
}

// h264IsKeyframePacket reports whether an H.264 RTP payload carries (the start of) an IDR
// slice or an SPS.
func h264IsKeyframePacket(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch typ := p[0] & 0x1f; typ {
	case 5, 7:
		return true
	case 24: // STAP-A: 16-bit sizes then NALs
		for i := 1; i+2 < len(p); {
			n := int(p[i])<<8 | int(p[i+1])
			i += 2
			if i >= len(p) {
				break
			}
			if t := p[i] & 0x1f; t == 5 || t == 7 {
				return true
			}
			i += n
		}
	case 28: // FU-A
		return len(p) > 1 && p[1]&0x80 != 0 && p[1]&0x1f == 5
	}
	return false
}
