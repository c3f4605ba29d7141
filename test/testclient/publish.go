package testclient

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/test/testmedia"
)

// VideoOptions configures PublishSimulcastVP8, PublishVP8, PublishVP9 and PublishH264.
type VideoOptions struct {
	// Name is the track name (default "camera").
	Name string
	// Source defaults to CAMERA.
	Source livekit.TrackSource
	// Layers selects simulcast layers by testmedia index (Low, Medium, High); default all.
	Layers []int
	// NoLoop stops at the end of the file instead of starting over.
	NoLoop bool
	// IgnoreKeyframeRequests keeps playing the file on PLI/FIR instead of jumping to the next
	// keyframe (which is what a real encoder's fresh keyframe looks like to the SFU).
	IgnoreKeyframeRequests bool
}

// AudioOptions configures PublishOpus.
type AudioOptions struct {
	// Name is the track name (default "microphone").
	Name string
	// Source defaults to MICROPHONE.
	Source livekit.TrackSource
	// NoLoop stops at the end of the file instead of starting over.
	NoLoop bool
	// Level, when set, is the audio level (-dBov, 0 loud .. 127 silent) written in every
	// packet's audio-level extension instead of the file's measured level.
	Level *uint8
	// DisableDTX and Stereo are passed in the AddTrackRequest.
	DisableDTX, Stereo bool
}

// Publication is a track a test client publishes from a test file.
type Publication struct {
	// Pub is the SDK publication.
	Pub *lksdk.LocalTrackPublication
	// Tracks are the SDK tracks: one, or one per simulcast layer lowest first.
	Tracks []*lksdk.LocalTrack

	room      *lksdk.Room
	providers []*loopProvider
	rids      []string
	sizes     [][2]int
	mu        sync.Mutex
	unpub     bool
}

// SID returns the track sid the server assigned.
func (p *Publication) SID() string { return p.Pub.SID() }

// Stats returns per track (per layer, lowest first) counters of what was provided to the
// SDK and the RTCP feedback received.
func (p *Publication) Stats() []LayerStats {
	out := make([]LayerStats, len(p.providers))
	for i, pr := range p.providers {
		out[i] = pr.snapshot()
		out[i].RID = p.rids[i]
		out[i].Width, out[i].Height = p.sizes[i][0], p.sizes[i][1]
	}
	return out
}

// Layer returns the stats of the layer with the given RID ("q", "h", "f"), and false if the
// publication has no such layer.
func (p *Publication) Layer(rid string) (LayerStats, bool) {
	for _, s := range p.Stats() {
		if s.RID == rid {
			return s, true
		}
	}
	return LayerStats{}, false
}

// PauseLayer stops (true) or restarts (false) sending one layer, by RID ("" for a
// single-layer track), without any signaling: to the server the layer just goes silent, as
// when a sender's encoder or network stalls. A restarted layer begins on a keyframe.
func (p *Publication) PauseLayer(rid string, paused bool) error {
	i := slices.Index(p.rids, rid)
	if i < 0 {
		return fmt.Errorf("no layer %q (have %v)", rid, p.rids)
	}
	p.providers[i].setPaused(paused)
	return nil
}

// Pause stops (true) or restarts (false) sending every layer without signaling.
func (p *Publication) Pause(paused bool) {
	for _, pr := range p.providers {
		pr.setPaused(paused)
	}
}

// SetMuted mutes or unmutes the publication: the SDK sends a MuteTrackRequest, and no media
// flows while muted. (For simulcast tracks the SDK itself only signals, so the layers are
// paused here too, as a browser stops sending.)
func (p *Publication) SetMuted(muted bool) {
	p.Pub.SetMuted(muted)
	if len(p.providers) > 1 {
		p.Pause(muted)
	}
}

// Unpublish unpublishes the track and stops its providers. It is idempotent.
func (p *Publication) Unpublish() error {
	p.mu.Lock()
	if p.unpub {
		p.mu.Unlock()
		return nil
	}
	p.unpub = true
	p.mu.Unlock()
	err := p.room.LocalParticipant.UnpublishTrack(p.Pub.SID())
	for _, pr := range p.providers {
		_ = pr.Close()
	}
	if errors.Is(err, lksdk.ErrCannotFindTrack) {
		return nil
	}
	return err
}

// PublishSimulcastVP8 publishes the VP8 layers of files as ONE simulcast track (RIDs q, h, f;
// one RTP stream per layer on one transceiver), each layer played from its IVF file in real
// time and looped. Keyframe requests (PLI/FIR) are answered by jumping to the next keyframe
// unless opts says otherwise.
func PublishSimulcastVP8(room *lksdk.Room, files testmedia.Files, opts *VideoOptions) (*Publication, error) {
	if opts == nil {
		opts = &VideoOptions{}
	}
	idx := opts.Layers
	if len(idx) == 0 {
		idx = []int{testmedia.Low, testmedia.Medium, testmedia.High}
	}
	qualities := [3]livekit.VideoQuality{livekit.VideoQuality_LOW, livekit.VideoQuality_MEDIUM, livekit.VideoQuality_HIGH}
	simulcastID := fmt.Sprintf("TR_sim_%d", time.Now().UnixNano())
	p := &Publication{room: room}
	for _, i := range idx {
		if i < 0 || i > 2 {
			return nil, fmt.Errorf("bad layer index %d", i)
		}
		l := files.VP8[i]
		pr, err := vp8Provider(l.Path, opts)
		if err != nil {
			return nil, err
		}
		layer := &livekit.VideoLayer{
			Quality: qualities[i],
			Width:   uint32(l.Width),
			Height:  uint32(l.Height),
			Bitrate: uint32(l.Bitrate),
		}
		track, err := newTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, pr,
			lksdk.WithSimulcast(simulcastID, layer))
		if err != nil {
			return nil, err
		}
		p.Tracks = append(p.Tracks, track)
		p.providers = append(p.providers, pr)
		p.rids = append(p.rids, l.RID)
		p.sizes = append(p.sizes, [2]int{l.Width, l.Height})
	}
	pub, err := room.LocalParticipant.PublishSimulcastTrack(p.Tracks, &lksdk.TrackPublicationOptions{
		Name:        nameOr(opts.Name, "camera"),
		Source:      sourceOr(opts.Source, livekit.TrackSource_CAMERA),
		VideoWidth:  p.sizes[len(p.sizes)-1][0],
		VideoHeight: p.sizes[len(p.sizes)-1][1],
	})
	if err != nil {
		p.closeProviders()
		return nil, fmt.Errorf("publish simulcast track: %w", err)
	}
	p.Pub = pub
	return p, nil
}

// PublishVP8 publishes one VP8 layer of the fixtures as a single-layer track.
func PublishVP8(room *lksdk.Room, layer testmedia.VP8Layer, opts *VideoOptions) (*Publication, error) {
	if opts == nil {
		opts = &VideoOptions{}
	}
	pr, err := vp8Provider(layer.Path, opts)
	if err != nil {
		return nil, err
	}
	return publishSingle(room, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, pr,
		&lksdk.TrackPublicationOptions{
			Name:        nameOr(opts.Name, "camera"),
			Source:      sourceOr(opts.Source, livekit.TrackSource_CAMERA),
			VideoWidth:  layer.Width,
			VideoHeight: layer.Height,
		}, [2]int{layer.Width, layer.Height})
}

// PublishVP9 publishes the VP9 fixture (640x360, profile 0) as a single-layer track, one
// frame per sample.
func PublishVP9(room *lksdk.Room, files testmedia.Files, opts *VideoOptions) (*Publication, error) {
	if opts == nil {
		opts = &VideoOptions{}
	}
	pr, err := ivfProvider(files.VP9.Path, testmedia.IsVP9Keyframe, opts)
	if err != nil {
		return nil, err
	}
	return publishSingle(room, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0"}, pr,
		&lksdk.TrackPublicationOptions{
			Name:        nameOr(opts.Name, "camera"),
			Source:      sourceOr(opts.Source, livekit.TrackSource_CAMERA),
			VideoWidth:  files.VP9.Width,
			VideoHeight: files.VP9.Height,
		}, [2]int{files.VP9.Width, files.VP9.Height})
}

// PublishH264 publishes the H.264 fixture (640x360 constrained baseline) as a single-layer
// track, one access unit per sample.
func PublishH264(room *lksdk.Room, files testmedia.Files, opts *VideoOptions) (*Publication, error) {
	if opts == nil {
		opts = &VideoOptions{}
	}
	units, err := testmedia.ReadH264AccessUnits(files.H264.Path)
	if err != nil {
		return nil, err
	}
	isKey := make([]bool, len(units))
	for i, u := range units {
		isKey[i] = testmedia.IsH264Keyframe(u)
	}
	pr := newLoopProvider(units, isKey, time.Second/testmedia.FPS, !opts.NoLoop, !opts.IgnoreKeyframeRequests)
	codec := webrtc.RTPCodecCapability{
		MimeType:    webrtc.MimeTypeH264,
		ClockRate:   90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	}
	return publishSingle(room, codec, pr, &lksdk.TrackPublicationOptions{
		Name:        nameOr(opts.Name, "camera"),
		Source:      sourceOr(opts.Source, livekit.TrackSource_CAMERA),
		VideoWidth:  files.H264.Width,
		VideoHeight: files.H264.Height,
	}, [2]int{files.H264.Width, files.H264.Height})
}

// PublishOpus publishes the Opus fixture (20 ms packets, looped) with the audio-level
// extension carrying each packet's measured level.
func PublishOpus(room *lksdk.Room, files testmedia.Files, opts *AudioOptions) (*Publication, error) {
	if opts == nil {
		opts = &AudioOptions{}
	}
	packets, err := testmedia.ReadOggOpus(files.Opus.Path)
	if err != nil {
		return nil, err
	}
	pr := newLoopProvider(packets, nil, files.Opus.FrameDuration, !opts.NoLoop, false)
	pr.levels = files.Opus.Levels
	pr.fixedLevel = opts.Level
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	return publishSingle(room, codec, pr, &lksdk.TrackPublicationOptions{
		Name:       nameOr(opts.Name, "microphone"),
		Source:     sourceOr(opts.Source, livekit.TrackSource_MICROPHONE),
		DisableDTX: opts.DisableDTX,
		Stereo:     opts.Stereo,
	}, [2]int{})
}

func publishSingle(room *lksdk.Room, codec webrtc.RTPCodecCapability, pr *loopProvider, popts *lksdk.TrackPublicationOptions, size [2]int) (*Publication, error) {
	track, err := newTrack(codec, pr)
	if err != nil {
		return nil, err
	}
	p := &Publication{room: room, Tracks: []*lksdk.LocalTrack{track}, providers: []*loopProvider{pr},
		rids: []string{""}, sizes: [][2]int{size}}
	pub, err := room.LocalParticipant.PublishTrack(track, popts)
	if err != nil {
		p.closeProviders()
		return nil, fmt.Errorf("publish %s track: %w", codec.MimeType, err)
	}
	p.Pub = pub
	return p, nil
}

// newTrack makes an SDK track that plays pr once bound and feeds it RTCP feedback.
func newTrack(codec webrtc.RTPCodecCapability, pr *loopProvider, opts ...lksdk.LocalTrackOptions) (*lksdk.LocalTrack, error) {
	var track *lksdk.LocalTrack
	var ready sync.WaitGroup
	ready.Add(1)
	opts = append(opts, lksdk.WithRTCPHandler(func(pkt rtcp.Packet) {
		ready.Wait() // track is assigned below before any RTCP can arrive; keep the race detector sure
		pr.onRTCP(pkt, uint32(track.SSRC()))
	}))
	track, err := lksdk.NewLocalTrack(codec, opts...)
	ready.Done()
	if err != nil {
		return nil, err
	}
	track.OnBind(func() {
		if err := track.StartWrite(pr, nil); err != nil {
			_ = pr.Close()
		}
	})
	return track, nil
}

// vp8Provider loads a VP8 IVF file into a looping provider.
func vp8Provider(path string, opts *VideoOptions) (*loopProvider, error) {
	return ivfProvider(path, testmedia.IsVP8Keyframe, opts)
}

// ivfProvider loads an IVF file into a looping provider; isKeyframe tells its keyframes.
func ivfProvider(path string, isKeyframe func([]byte) bool, opts *VideoOptions) (*loopProvider, error) {
	ivf, err := testmedia.ReadIVF(path)
	if err != nil {
		return nil, err
	}
	isKey := make([]bool, len(ivf.Frames))
	for i, f := range ivf.Frames {
		isKey[i] = isKeyframe(f)
	}
	d := time.Second / testmedia.FPS
	if ivf.TimebaseDen > 0 && ivf.TimebaseNum > 0 {
		d = time.Duration(int64(time.Second) * int64(ivf.TimebaseNum) / int64(ivf.TimebaseDen))
	}
	return newLoopProvider(ivf.Frames, isKey, d, !opts.NoLoop, !opts.IgnoreKeyframeRequests), nil
}

func (p *Publication) closeProviders() {
	for _, pr := range p.providers {
		_ = pr.Close()
	}
}

func nameOr(name, def string) string {
	if name == "" {
		return def
	}
	return name
}

func sourceOr(s, def livekit.TrackSource) livekit.TrackSource {
	if s == livekit.TrackSource_UNKNOWN {
		return def
	}
	return s
}
