package room

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/utils/guid"
	"github.com/pion/webrtc/v4"
	"google.golang.org/protobuf/proto"

	"github.com/sanke-edu/sanke/internal/rooms"
	"github.com/sanke-edu/sanke/sfu"
)

// PublishedTrack is a track a participant publishes: its protocol description and the sfu
// receiver that fans its media out to subscribers.
type PublishedTrack struct {
	owner    *Participant
	cid      string
	receiver *sfu.Receiver

	mu   sync.Mutex
	info *livekit.TrackInfo
	dyn  dynacast
}

// SID returns the track's server id (TR_...).
func (t *PublishedTrack) SID() string { return t.info.Sid }

// Info returns a snapshot of the track description.
func (t *PublishedTrack) Info() *livekit.TrackInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return proto.Clone(t.info).(*livekit.TrackInfo)
}

func (t *PublishedTrack) kind() livekit.TrackType {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.info.Type
}

// Priorities among the video a subscriber's downlink has room for (see sfu.Allocator):
// higher goes up first and is paused last. A screen share (the teacher's slides,
// unreadable at a low layer) comes first, then the teacher's camera (the classroom layer's
// reserved role attribute, which only the server sets: classroom.AttrRole and
// classroom.RoleTeacher), then the other cameras.
const (
	priorityCamera = iota
	priorityTeacherCamera
	priorityScreenShare

	roleAttribute = rooms.ReservedAttributePrefix + "role"
	teacherRole   = "teacher"
)

// downlinkPriority returns t's priority among the video a subscriber receives. It takes
// the owner's lock: do not hold another participant's.
func downlinkPriority(t *PublishedTrack) int {
	t.mu.Lock()
	screen := t.info.Source == livekit.TrackSource_SCREEN_SHARE
	t.mu.Unlock()
	if screen {
		return priorityScreenShare
	}
	t.owner.mu.Lock()
	teacher := t.owner.attributes[roleAttribute] == teacherRole
	t.owner.mu.Unlock()
	if teacher {
		return priorityTeacherCamera
	}
	return priorityCamera
}

// layerFor maps a subscriber's wish (quality, or element dimensions) to a simulcast layer.
func (t *PublishedTrack) layerFor(q livekit.VideoQuality, width, height uint32) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	layers := t.info.Layers //nolint:staticcheck // LiveKit protocol: clients read TrackInfo.layers
	if width > 0 || height > 0 {
		// Smallest layer at least as large as the element; the top layer if none is.
		best := -1
		for i, l := range layers {
			if l.Width >= width && l.Height >= height {
				if best < 0 || l.Width < layers[best].Width {
					best = i
				}
			}
		}
		if best < 0 {
			return len(layers) - 1
		}
		return qualityToLayer(layers[best].Quality)
	}
	if q == livekit.VideoQuality_OFF {
		return -1
	}
	return qualityToLayer(q)
}

func qualityToLayer(q livekit.VideoQuality) int {
	switch q {
	case livekit.VideoQuality_LOW:
		return 0
	case livekit.VideoQuality_MEDIUM:
		return 1
	default:
		return 2
	}
}

// handleAddTrack registers a track the client is about to send; the track becomes published
// when its media arrives (onTrack).
//
// Refused, with a request_response naming the cid: a source the participant may not publish
// (a participant without publish permission keeps no state at all), a kind that does not
// match its source (audio declared as a camera), sizes over the limits, and a track beyond
// Limits.MaxTracks (announced and published tracks together; a repeated cid is the same
// track).
func (p *Participant) handleAddTrack(req *livekit.AddTrackRequest) {
	if !p.canPublishSource(req.Source) {
		p.refuseTrack(req, livekit.RequestResponse_NOT_ALLOWED, "not allowed to publish "+req.Source.String())
		return
	}
	if !kindMatchesSource(req.Type, req.Source) {
		p.refuseTrack(req, livekit.RequestResponse_NOT_ALLOWED, fmt.Sprintf("a %s track cannot be a %s", req.Type, req.Source))
		return
	}
	if err := checkAddTrack(req); err != nil {
		reason := livekit.RequestResponse_INVALID_REQUEST
		if errors.Is(err, rooms.ErrLimitExceeded) {
			reason = livekit.RequestResponse_LIMIT_EXCEEDED
		}
		p.refuseTrack(req, reason, err.Error())
		return
	}
	info := &livekit.TrackInfo{
		Sid:               guid.New(guid.TrackPrefix),
		Type:              req.Type,
		Name:              req.Name,
		Muted:             req.Muted,
		Width:             req.Width,
		Height:            req.Height,
		Simulcast:         len(req.Layers) > 1, //nolint:staticcheck // LiveKit protocol: clients read TrackInfo.simulcast
		DisableDtx:        req.DisableDtx,      //nolint:staticcheck // LiveKit protocol: TrackInfo carries it
		DisableRed:        req.DisableRed,
		Source:            req.Source,
		Layers:            req.Layers, //nolint:staticcheck // LiveKit protocol: clients read TrackInfo.layers
		Stereo:            req.Stereo, //nolint:staticcheck // LiveKit protocol: TrackInfo carries it
		Stream:            streamOf(req),
		Encryption:        req.Encryption,
		AudioFeatures:     req.AudioFeatures,
		BackupCodecPolicy: req.BackupCodecPolicy,
	}
	for _, sc := range req.SimulcastCodecs {
		if len(sc.Layers) > 1 {
			info.Simulcast = true //nolint:staticcheck // LiveKit protocol: clients read TrackInfo.simulcast
		}
		if len(info.Layers) == 0 { //nolint:staticcheck // LiveKit protocol: clients read TrackInfo.layers
			info.Layers = sc.Layers //nolint:staticcheck // LiveKit protocol: clients read TrackInfo.layers
		}
		info.Codecs = append(info.Codecs, &livekit.SimulcastCodecInfo{MimeType: mimeTypeOf(req.Type, sc.Codec), Cid: sc.Cid, Layers: sc.Layers, VideoLayerMode: sc.VideoLayerMode})
	}
	if info.Type == livekit.TrackType_VIDEO && len(info.Layers) == 0 { //nolint:staticcheck // LiveKit protocol: clients read TrackInfo.layers
		info.Layers = []*livekit.VideoLayer{{Quality: livekit.VideoQuality_HIGH, Width: req.Width, Height: req.Height}} //nolint:staticcheck // LiveKit protocol: clients read TrackInfo.layers
	}
	p.mu.Lock()
	// A repeated add_track for the same cid (e.g. a resumed client) keeps its sid.
	old, known := p.pending[req.Cid]
	if known {
		info.Sid = old.Sid
	}
	for _, t := range p.published {
		if t.cid == req.Cid {
			info, known = t.Info(), true
		}
	}
	if limit := p.room.cfg.Limits.MaxTracks; !known && len(p.pending)+len(p.published) >= limit {
		p.mu.Unlock()
		p.refuseTrack(req, livekit.RequestResponse_LIMIT_EXCEEDED, fmt.Sprintf("%d tracks already, the limit of a participant's tracks", limit))
		return
	}
	p.pending[req.Cid] = info
	p.mu.Unlock()
	p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_TrackPublished{TrackPublished: &livekit.TrackPublishedResponse{
		Cid: req.Cid, Track: proto.Clone(info).(*livekit.TrackInfo),
	}}})
}

// refuseTrack answers an add_track (or media for it) that is not accepted. The request is
// echoed by its cid, type and source only (it may be large).
func (p *Participant) refuseTrack(req *livekit.AddTrackRequest, reason livekit.RequestResponse_Reason, msg string) {
	echo := &livekit.AddTrackRequest{Type: req.Type, Source: req.Source}
	if len(req.Cid) <= maxIDLength {
		echo.Cid = req.Cid
	}
	p.logger.Warn("track refused", "reason", reason.String(), "why", msg, "cid", echo.Cid, "source", req.Source.String())
	p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_RequestResponse{RequestResponse: &livekit.RequestResponse{
		Reason: reason, Message: msg, Request: &livekit.RequestResponse_AddTrack{AddTrack: echo},
	}}})
}

// kindOf maps pion's codec type to the protocol's track type.
func kindOf(k webrtc.RTPCodecType) livekit.TrackType {
	if k == webrtc.RTPCodecTypeAudio {
		return livekit.TrackType_AUDIO
	}
	return livekit.TrackType_VIDEO
}

// onTrack is called by pion for each incoming stream (once per simulcast layer). Media whose
// kind differs from the announced track's (Opus sent for a video CAMERA track) is refused:
// the track's source, which permissions are checked against, must say what it carries.
func (p *Participant) onTrack(remote *webrtc.TrackRemote, rtpReceiver *webrtc.RTPReceiver) {
	cid := remote.ID()
	p.mu.Lock()
	var existing *PublishedTrack
	for _, t := range p.published {
		if t.cid == cid {
			existing = t
		}
	}
	kind := kindOf(remote.Kind())
	info, ok := p.pending[cid]
	if !ok && existing == nil {
		// Some clients use a different msid than the cid they announced: take the only
		// pending track of the same kind.
		for c, ti := range p.pending {
			if ti.Type == kind {
				if ok {
					ok = false
					break
				}
				cid, info, ok = c, ti, true
			}
		}
	}
	if (existing != nil && existing.kind() != kind) || (ok && info.Type != kind) {
		announced := info
		if existing != nil {
			announced = existing.Info()
		} else {
			delete(p.pending, cid)
		}
		p.mu.Unlock()
		if err := rtpReceiver.Stop(); err != nil {
			p.logger.Debug("stop refused receiver", "err", err)
		}
		p.refuseTrack(&livekit.AddTrackRequest{Cid: cid, Type: announced.Type, Source: announced.Source},
			livekit.RequestResponse_NOT_ALLOWED, fmt.Sprintf("track %s was announced as %s, its media is %s", cid, announced.Type, kind))
		return
	}
	if existing != nil {
		p.mu.Unlock()
		p.logger.Debug("additional layer", "track", existing.SID(), "rid", remote.RID())
		existing.receiver.AddLayer(remote)
		existing.receiver.StartRTCP(rtpReceiver, remote)
		return
	}
	if !ok {
		p.mu.Unlock()
		p.logger.Warn("media for a track that was not announced", "msid_track", remote.ID(), "kind", remote.Kind().String())
		return
	}
	delete(p.pending, cid)
	info.MimeType = remote.Codec().MimeType
	for _, c := range info.Codecs {
		if c.MimeType == "" || strings.EqualFold(c.MimeType, info.MimeType) {
			c.MimeType = info.MimeType
			c.Mid = midOf(p.pub().pc, rtpReceiver)
		}
	}
	info.Mid = midOf(p.pub().pc, rtpReceiver)
	t := &PublishedTrack{owner: p, cid: cid, info: info}
	var capture func([]byte)
	if p.room.cfg.CaptureAudio != nil && info.Type == livekit.TrackType_AUDIO {
		capture = p.room.cfg.CaptureAudio(info.Sid)
	}
	t.receiver = sfu.NewReceiver(sfu.ReceiverParams{
		Capture:         capture,
		TrackID:         info.Sid,
		Kind:            remote.Kind(),
		Codec:           remote.Codec(),
		WriteRTCP:       p.pub().pc.WriteRTCP,
		PLIThrottle:     p.room.cfg.PLIThrottle,
		PacketCacheSize: p.room.cfg.PacketCacheSize,
		AudioLevelExtID: audioLevelExtID(rtpReceiver),
		Logger:          p.logger.With("track", info.Sid),
	})
	t.receiver.SetMuted(info.Muted)
	p.published[info.Sid] = t
	p.bumpLocked()
	p.mu.Unlock()

	t.receiver.OnClose(func() { p.room.onTrackUnpublished(p, t) })
	t.receiver.AddLayer(remote)
	t.receiver.StartRTCP(rtpReceiver, remote)
	p.logger.Info("track published", "track", info.Sid, "kind", info.Type.String(), "source", info.Source.String(),
		"mime", info.MimeType, "simulcast", info.Simulcast, "rid", remote.RID()) //nolint:staticcheck // LiveKit protocol: clients read TrackInfo.simulcast
	p.room.onTrackPublished(p, t)
}

// mimeTypeOf turns a codec name as clients send it in add_track ("vp8", "video/VP8") into the
// MIME type clients expect back ("video/VP8"): livekit-client splits it on "/".
func mimeTypeOf(kind livekit.TrackType, codec string) string {
	if codec == "" || strings.Contains(codec, "/") {
		return codec
	}
	for _, m := range []string{webrtc.MimeTypeVP8, webrtc.MimeTypeVP9, webrtc.MimeTypeH264, webrtc.MimeTypeH265,
		webrtc.MimeTypeAV1, webrtc.MimeTypeOpus, "audio/red"} {
		if strings.EqualFold(strings.SplitN(m, "/", 2)[1], codec) {
			return m
		}
	}
	prefix := "video/"
	if kind == livekit.TrackType_AUDIO {
		prefix = "audio/"
	}
	return prefix + strings.ToUpper(codec)
}

func midOf(pc *webrtc.PeerConnection, r *webrtc.RTPReceiver) string {
	for _, tr := range pc.GetTransceivers() {
		if tr.Receiver() == r {
			return tr.Mid()
		}
	}
	return ""
}

func audioLevelExtID(r *webrtc.RTPReceiver) int {
	for _, e := range r.GetParameters().HeaderExtensions {
		if e.URI == extAudioLevel {
			return e.ID
		}
	}
	return 0
}

// setTrackMuted changes a published track's mute state. byServer tells the publisher (a
// moderator or the Room API muted it) so its SDK mutes locally too.
func (p *Participant) setTrackMuted(sid string, muted, byServer bool) *livekit.TrackInfo {
	p.mu.Lock()
	t, ok := p.published[sid]
	if !ok {
		// Not yet published: remember it on the pending description.
		for _, ti := range p.pending {
			if ti.Sid == sid {
				ti.Muted = muted
			}
		}
		p.mu.Unlock()
		return nil
	}
	t.mu.Lock()
	changed := t.info.Muted != muted
	t.info.Muted = muted
	t.mu.Unlock()
	if changed {
		p.bumpLocked()
	}
	p.mu.Unlock()
	if !changed {
		return t.Info()
	}
	t.receiver.SetMuted(muted)
	p.logger.Info("track mute", "track", sid, "muted", muted, "by_server", byServer)
	if byServer {
		p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Mute{Mute: &livekit.MuteTrackRequest{Sid: sid, Muted: muted}}})
	}
	p.room.broadcastParticipant(p)
	return t.Info()
}

// unpublishAll closes every published track (on leave) and returns what was published.
func (p *Participant) unpublishAll() []*livekit.TrackInfo {
	p.mu.Lock()
	tracks := make([]*PublishedTrack, 0, len(p.published))
	for _, t := range p.published {
		tracks = append(tracks, t)
	}
	p.mu.Unlock()
	infos := make([]*livekit.TrackInfo, 0, len(tracks))
	for _, t := range tracks {
		infos = append(infos, t.Info())
		t.receiver.Close()
	}
	return infos
}
