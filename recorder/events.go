package recorder

import "time"

// EventType names a recording event. The webhook sender can pass recording_started and
// recording_finished on as they are.
type EventType string

// Recording events.
const (
	// EventRecordingStarted: a room's recording began (Manifest is nil).
	EventRecordingStarted EventType = "recording_started"
	// EventRecordingFinished: a recording's files and manifest are in the store (Manifest
	// set; Error tells files that could not be kept, if any).
	EventRecordingFinished EventType = "recording_finished"
	// EventRecordingFailed: a recording could not be completed (Error says why; what was
	// spooled stays for the next start).
	EventRecordingFailed EventType = "recording_failed"
	// EventRoomNotRecorded: a room that should be recorded is not (Error says why: the
	// spool directory cannot take files). Told once per room until it is recorded.
	EventRoomNotRecorded EventType = "recording_room_not_recorded"
	// EventRecordingRecovered: a recording interrupted by a crash was completed at start-up
	// (Manifest set).
	EventRecordingRecovered EventType = "recording_recovered"
	// EventSpoolFull: the spool limit was reached; media is dropped until uploads catch up.
	EventSpoolFull EventType = "recording_spool_full"
	// EventSpoolResumed: the spool is below its limit again.
	EventSpoolResumed EventType = "recording_spool_resumed"
	// EventStoreUnavailable: an upload failed; recording continues into the spool.
	EventStoreUnavailable EventType = "recording_store_unavailable"
	// EventStoreAvailable: uploads succeed again.
	EventStoreAvailable EventType = "recording_store_available"
)

// Event is something that happened to a recording (or to the recorder's storage, when
// RecordingID is empty).
type Event struct {
	Type        EventType
	Time        time.Time
	RecordingID string
	Room        string
	// Manifest is set for finished and recovered recordings.
	Manifest *Manifest
	// Error explains failures and warnings.
	Error string
}

// Observer receives recording events. OnRecordingEvent is called synchronously and must
// return quickly.
type Observer interface {
	OnRecordingEvent(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// OnRecordingEvent calls f.
func (f ObserverFunc) OnRecordingEvent(e Event) { f(e) }

// States of a recording in progress (Status.State).
const (
	// StateRecording: the recording goes on.
	StateRecording = "recording"
	// StateEnding: it is being stopped and its files finalized.
	StateEnding = "ending"
	// StateUploading: its files are finalized and being uploaded (retried while the store
	// fails); it is listed with the stored recordings once stored.
	StateUploading = "uploading"
)

// Status describes a recording in progress.
type Status struct {
	RecordingID string    `json:"recording_id"`
	Room        string    `json:"room"`
	StartedAt   time.Time `json:"started_at"`
	Files       []string  `json:"files"`
	// Connected reports whether the recorder is in the room (it leaves empty rooms).
	Connected bool `json:"connected"`
	// State is StateRecording, StateEnding or StateUploading.
	State string `json:"state"`
}

// Upload states of a stopped recording (StopResult.Upload).
const (
	// UploadStored: the files and the manifest are in the store.
	UploadStored = "stored"
	// UploadPending: they are being uploaded in the background.
	UploadPending = "pending"
	// UploadFailed: they could not be stored; they wait in the spool for the next start.
	UploadFailed = "failed"
)

// StopResult is the answer of StopRecording: the recording's manifest, as finalized in the
// spool, and where its upload stands.
type StopResult struct {
	*Manifest
	// Upload is UploadStored once the files and the manifest are in the store, UploadPending
	// while they are uploaded in the background (retried until stored; the recording is
	// listed once it is), UploadFailed when they could not be stored (they stay in the spool
	// and are uploaded at the next start).
	Upload string `json:"upload"`
	// UploadError says why the upload is pending or failed.
	UploadError string `json:"upload_error,omitempty"`
}
