package testclient

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4/pkg/media"
)

// LayerStats counts what a publisher's sample provider handed to the SDK for one track (one
// simulcast layer), and the keyframe requests that came back.
type LayerStats struct {
	// RID is the simulcast layer id ("q", "h", "f"), "" for a single-layer track.
	RID string
	// Width and Height are the layer's frame size (0 for audio).
	Width, Height int
	// Samples counts frames (or audio packets) handed to the SDK with data; KeySamples the
	// keyframes among them. Samples are still counted when the SDK drops them because the
	// server disabled the layer (dynacast) or the track is muted.
	Samples    int
	KeySamples int
	// Paused counts the sample slots skipped while paused.
	Paused int
	// Loops counts how many times the file restarted from the beginning.
	Loops int
	// PLIs, FIRs and NACKs count RTCP feedback received for this track's SSRC;
	// ForcedKeyframes counts the jumps to a keyframe made to answer PLI/FIR.
	PLIs, FIRs, NACKs int
	ForcedKeyframes   int
	// LastPLIAt is when the newest PLI or FIR arrived.
	LastPLIAt time.Time
}

// loopProvider is an lksdk.SampleProvider (and AudioSampleProvider) that plays frames held in
// memory at their real-time pace, looping, and jumps to the next keyframe when asked to
// (PLI/FIR, resume). The SDK's write loop paces samples by their Duration.
type loopProvider struct {
	frames   [][]byte
	isKey    []bool // nil for audio
	levels   []uint8
	duration time.Duration
	loop     bool
	answerKF bool // answer PLI/FIR by jumping to a keyframe

	mu         sync.Mutex
	pos        int
	wantKey    bool
	paused     bool
	closed     bool
	level      uint8
	fixedLevel *uint8
	stats      LayerStats
}

func newLoopProvider(frames [][]byte, isKey []bool, d time.Duration, loop, answerKF bool) *loopProvider {
	return &loopProvider{frames: frames, isKey: isKey, duration: d, loop: loop, answerKF: answerKF, level: 127}
}

// NextSample returns the next frame. While paused it returns empty samples (the SDK sends
// nothing for them but keeps its clock running).
func (p *loopProvider) NextSample(ctx context.Context) (media.Sample, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || ctx.Err() != nil {
		return media.Sample{}, io.EOF
	}
	if p.pos >= len(p.frames) {
		if !p.loop {
			return media.Sample{}, io.EOF
		}
		p.pos = 0
		p.stats.Loops++
	}
	if p.paused {
		p.stats.Paused++
		p.pos++
		return media.Sample{Duration: p.duration}, nil
	}
	if p.wantKey && p.isKey != nil {
		p.wantKey = false
		if !p.isKey[p.pos] {
			p.pos = p.nextKey(p.pos)
			p.stats.ForcedKeyframes++
		}
	}
	i := p.pos
	p.pos++
	p.stats.Samples++
	if p.isKey != nil && p.isKey[i] {
		p.stats.KeySamples++
	}
	p.level = 127
	if i < len(p.levels) {
		p.level = p.levels[i]
	}
	if p.fixedLevel != nil {
		p.level = *p.fixedLevel
	}
	return media.Sample{Data: p.frames[i], Duration: p.duration}, nil
}

// nextKey returns the index of the first keyframe after i, wrapping to the start.
func (p *loopProvider) nextKey(i int) int {
	for j := i + 1; j < len(p.isKey); j++ {
		if p.isKey[j] {
			return j
		}
	}
	return 0
}

// CurrentAudioLevel is the RFC 6464 level of the newest sample (for the audio-level header
// extension the SDK writes).
func (p *loopProvider) CurrentAudioLevel() uint8 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.level
}

func (p *loopProvider) OnBind() error   { return nil }
func (p *loopProvider) OnUnbind() error { return nil }

// Close makes NextSample return io.EOF, ending the SDK's write loop.
func (p *loopProvider) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}

// setPaused pauses or resumes; resuming restarts on a keyframe so receivers can decode.
func (p *loopProvider) setPaused(paused bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused && !paused {
		p.wantKey = true
	}
	p.paused = paused
}

// onRTCP counts feedback for ssrc and answers keyframe requests.
func (p *loopProvider) onRTCP(pkt rtcp.Packet, ssrc uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch f := pkt.(type) {
	case *rtcp.PictureLossIndication:
		if f.MediaSSRC != ssrc && ssrc != 0 {
			return
		}
		p.stats.PLIs++
		p.stats.LastPLIAt = time.Now()
		p.wantKey = p.wantKey || p.answerKF
	case *rtcp.FullIntraRequest:
		p.stats.FIRs++
		p.stats.LastPLIAt = time.Now()
		p.wantKey = p.wantKey || p.answerKF
	case *rtcp.TransportLayerNack:
		if f.MediaSSRC != ssrc && ssrc != 0 {
			return
		}
		for _, n := range f.Nacks {
			p.stats.NACKs += len(n.PacketList())
		}
	}
}

func (p *loopProvider) snapshot() LayerStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}
