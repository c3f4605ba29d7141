package recorder

import (
	"encoding/json"
	"time"
)

// ManifestName is the name of a recording's manifest object, beside its files.
const ManifestName = "manifest.json"

// Manifest describes a finished recording: one JSON object per session, stored beside the
// files as manifest.json.
type Manifest struct {
	RecordingID string `json:"recording_id"`
	Room        string `json:"room"`
	RoomSID     string `json:"room_sid,omitempty"`
	// ClassSessionID comes from the room metadata ("class_session_id" or "session_id").
	ClassSessionID string    `json:"class_session_id,omitempty"`
	StartedAt      time.Time `json:"started_at"`
	EndedAt        time.Time `json:"ended_at"`
	// Duration is EndedAt - StartedAt in seconds.
	Duration float64 `json:"duration"`
	// Prefix is the key prefix of the files in the store (the room's name in it is escaped,
	// or, for recordings of releases before the escaping, sanitized: Room is the name).
	Prefix string `json:"prefix"`
	// Recovered is set when the recording was completed after a crash.
	Recovered    bool                  `json:"recovered,omitempty"`
	Participants []ManifestParticipant `json:"participants"`
	Files        []ManifestFile        `json:"files"`
}

// ManifestParticipant is a participant seen during the recording.
type ManifestParticipant struct {
	Identity string   `json:"identity"`
	Name     string   `json:"name,omitempty"`
	SIDs     []string `json:"sids,omitempty"`
	// FirstSeen is the offset in seconds from the recording start.
	FirstSeen float64 `json:"first_seen"`
}

// ManifestFile is one recorded file.
type ManifestFile struct {
	Name        string `json:"name"`
	Key         string `json:"key"`
	Participant string `json:"participant"`
	// Source is "camera" (camera and microphone) or "screen_share" (screen and its audio).
	Source      string `json:"source"`
	ContentType string `json:"content_type"`
	// StartOffset is where the file's time 0 is, in seconds from the recording start: a
	// player lines files up by it.
	StartOffset float64         `json:"start_offset"`
	Duration    float64         `json:"duration"`
	Size        int64           `json:"size"`
	SHA256      string          `json:"sha256,omitempty"`
	Tracks      []ManifestTrack `json:"tracks"`
	// Recovered is set when the file was completed after a crash.
	Recovered bool `json:"recovered,omitempty"`
	// Indexed is false for a file completed from the store alone after a crash that could
	// not be read back and indexed: it plays but has no cues (seeking is by scanning).
	Indexed bool `json:"indexed"`
	// URL is set in API answers only: a signed link of the download route (relative to
	// the server) or a presigned URL of an S3 store; both expire.
	URL string `json:"url,omitempty"`
}

// ManifestTrack is a track of a file.
type ManifestTrack struct {
	Number uint64 `json:"number"`
	Kind   string `json:"kind"` // "video" or "audio"
	Codec  string `json:"codec"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
	// TrackSIDs are the published tracks recorded into this track (a participant who
	// rejoins publishes new ones).
	TrackSIDs []string `json:"track_sids,omitempty"`
}

func (m *Manifest) marshal() []byte {
	b, _ := json.MarshalIndent(m, "", "  ")
	return append(b, '\n')
}

// classSessionID reads the class session id from room metadata JSON.
func classSessionID(metadata string) string {
	var md struct {
		ClassSessionID string `json:"class_session_id"`
		SessionID      string `json:"session_id"`
	}
	if json.Unmarshal([]byte(metadata), &md) != nil {
		return ""
	}
	if md.ClassSessionID != "" {
		return md.ClassSessionID
	}
	return md.SessionID
}
