package room

import (
	"errors"
	"fmt"
	"maps"

	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/internal/rooms"
)

// Limits bound what a client, or a Room API call, can make a room keep: every piece of
// per-participant and per-room state a client can create is bounded by one of them or by a
// per-message bound below. Zero fields take the Default* values.
type Limits struct {
	// MaxRoomNameLength bounds room names, in bytes (join tokens and CreateRoom).
	MaxRoomNameLength int
	// MaxIdentityLength bounds participant identities, in bytes.
	MaxIdentityLength int
	// MaxNameLength bounds participant names, in bytes.
	MaxNameLength int
	// MaxMetadataSize bounds participant and room metadata, in bytes.
	MaxMetadataSize int
	// MaxAttributesSize bounds the total size of a participant's attributes, keys and
	// values, in bytes.
	MaxAttributesSize int
	// MaxAttributes bounds the number of a participant's attributes.
	MaxAttributes int
	// MaxTracks bounds the tracks of one participant: announced (add_track, waiting for
	// media) and published together.
	MaxTracks int
}

// Defaults of Limits, those of LiveKit's limit section where it has one.
const (
	DefaultMaxRoomNameLength = 256
	DefaultMaxIdentityLength = 256
	DefaultMaxNameLength     = 256
	DefaultMaxMetadataSize   = 64000
	DefaultMaxAttributesSize = 64000
	DefaultMaxAttributes     = 64
	DefaultMaxTracks         = 16
)

// Bounds of one client message, not configurable: far above what any LiveKit client sends.
const (
	// maxListLength bounds the track sids, participants or destinations one message
	// (signal request, data packet or Room API call) names.
	maxListLength = 1024
	// maxIDLength bounds client-chosen ids and short strings: track cids and sids, stream
	// ids, codec names, track names, data topics.
	maxIDLength = 256
	// maxLayers bounds the simulcast layers, and the codecs, of one add_track.
	maxLayers = 4
)

// withDefaults returns l with every zero field replaced by its default.
func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxRoomNameLength, DefaultMaxRoomNameLength)
	def(&l.MaxIdentityLength, DefaultMaxIdentityLength)
	def(&l.MaxNameLength, DefaultMaxNameLength)
	def(&l.MaxMetadataSize, DefaultMaxMetadataSize)
	def(&l.MaxAttributesSize, DefaultMaxAttributesSize)
	def(&l.MaxAttributes, DefaultMaxAttributes)
	def(&l.MaxTracks, DefaultMaxTracks)
	return l
}

// overLimit describes a value of n bytes (or entries) over its limit, wrapping
// rooms.ErrLimitExceeded.
func overLimit(what string, n, limit int, unit string) error {
	return fmt.Errorf("%s is %d %s, over the limit of %d: %w", what, n, unit, limit, rooms.ErrLimitExceeded)
}

// checkLength fails when s is longer than limit bytes.
func checkLength(what, s string, limit int) error {
	if len(s) > limit {
		return overLimit(what, len(s), limit, "bytes")
	}
	return nil
}

// checkList fails when a message names more than maxListLength entries.
func checkList(what string, n int) error {
	if n > maxListLength {
		return fmt.Errorf("%s names %d entries, over the limit of %d: %w", what, n, maxListLength, rooms.ErrLimitExceeded)
	}
	return nil
}

// checkRoom checks a room's name and metadata.
func (l *Limits) checkRoom(name, metadata string) error {
	if err := checkLength("room name", name, l.MaxRoomNameLength); err != nil {
		return err
	}
	return checkLength("room metadata", metadata, l.MaxMetadataSize)
}

// checkParticipant checks a participant's name, metadata and (complete) attributes.
func (l *Limits) checkParticipant(name, metadata string, attrs map[string]string) error {
	if err := checkLength("participant name", name, l.MaxNameLength); err != nil {
		return err
	}
	if err := checkLength("participant metadata", metadata, l.MaxMetadataSize); err != nil {
		return err
	}
	if len(attrs) > l.MaxAttributes {
		return overLimit("participant attributes", len(attrs), l.MaxAttributes, "entries")
	}
	size := 0
	for k, v := range attrs {
		size += len(k) + len(v)
	}
	if size > l.MaxAttributesSize {
		return overLimit("participant attributes", size, l.MaxAttributesSize, "bytes")
	}
	return nil
}

// mergeAttributes returns attrs with changes applied: an empty value removes the key.
func mergeAttributes(attrs, changes map[string]string) map[string]string {
	out := maps.Clone(attrs)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range changes {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// refuseReserved fails when a client asks to set, change or delete an attribute reserved
// for the server.
func refuseReserved(changes map[string]string) error {
	if k, ok := rooms.ReservedAttribute(changes); ok {
		return fmt.Errorf("attribute %q is reserved for the server (%s*): %w", k, rooms.ReservedAttributePrefix, rooms.ErrReservedAttribute)
	}
	return nil
}

// checkAddTrack checks the sizes in an add_track request.
func checkAddTrack(req *livekit.AddTrackRequest) error {
	if req.Cid == "" {
		return errors.New("add_track without a cid")
	}
	for _, s := range []struct{ what, v string }{{"track cid", req.Cid}, {"track name", req.Name}, {"track stream", req.Stream}, {"track sid", req.Sid}} {
		if err := checkLength(s.what, s.v, maxIDLength); err != nil {
			return err
		}
	}
	if len(req.Layers) > maxLayers {
		return overLimit("track layers", len(req.Layers), maxLayers, "entries")
	}
	if len(req.SimulcastCodecs) > maxLayers {
		return overLimit("track codecs", len(req.SimulcastCodecs), maxLayers, "entries")
	}
	for _, c := range req.SimulcastCodecs {
		if len(c.Layers) > maxLayers {
			return overLimit("track layers", len(c.Layers), maxLayers, "entries")
		}
		if err := checkLength("track codec", c.Codec, maxIDLength); err != nil {
			return err
		}
		if err := checkLength("track cid", c.Cid, maxIDLength); err != nil {
			return err
		}
	}
	return nil
}

// kindMatchesSource reports whether a track of that kind may be declared as that source:
// cameras and screen shares are video, microphones and screen share audio are audio. An
// unknown source may be either (only participants allowed every source may use it).
func kindMatchesSource(kind livekit.TrackType, src livekit.TrackSource) bool {
	switch src {
	case livekit.TrackSource_CAMERA, livekit.TrackSource_SCREEN_SHARE:
		return kind == livekit.TrackType_VIDEO
	case livekit.TrackSource_MICROPHONE, livekit.TrackSource_SCREEN_SHARE_AUDIO:
		return kind == livekit.TrackType_AUDIO
	default:
		return kind == livekit.TrackType_VIDEO || kind == livekit.TrackType_AUDIO
	}
}
