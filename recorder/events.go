package recorder

import "time"

// EventType names a recording event. The webhook sender can pass recording_started and
// recording_finished on as they are.
type EventType string

// Recording events.
const (
	// EventRecordingStarted: a room's recording began (Manifest is nil).
	EventRecordingStarted EventType = "recording_started"
	// EventRecordingFinished: a recording's files and manifest are in the store (Manifest set).
	EventRecordingFinished EventType = "recording_finished"
	// EventRecordingFailed: a recording could not be completed (Error says why; what was
	// spooled stays for the next start).
	EventRecordingFailed EventType = "recording_failed"
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

// Status describes a recording in progress.
type Status struct {
	RecordingID string    `json:"recording_id"`
	Room        string    `json:"room"`
	StartedAt   time.Time `json:"started_at"`
	Files       []string  `json:"files"`
	// Connected reports whether the recorder is in the room (it leaves empty rooms).
	Connected bool `json:"connected"`
}
