// Package recorder records rooms to object storage: one file per participant camera and
// microphone (audio and video in one file, in sync) and one per screen share, plus a JSON
// manifest per recording session.
//
// # How it records
//
// The recorder is a LiveKit client inside the server process. For each recorded room it
// joins over loopback with the Go SDK, using a token with Hidden, Recorder, CanSubscribe and
// no publish rights, auto-subscribes, asks for the HIGH simulcast layer and reads RTP from
// each *webrtc.TrackRemote. It never touches the forwarding internals, so it can record any
// LiveKit-compatible server.
//
// Frames are rebuilt with pion's samplebuilder and depacketizers and checked: a video frame
// must be complete (marker bit on its last packet) and follow the previous one without a
// sequence hole (padding aside). Otherwise video waits for a keyframe, which it requests with
// a PLI (at the start, on loss, on every new subscription, at most once a second): files
// start on a keyframe and loss, reordering or a publisher dropping out becomes a gap, never
// a corrupt frame. Timestamps come from RTP, anchored to the wall clock when a track's first
// packet arrives, so audio and video of a file line up and a publisher who leaves and
// rejoins continues the same file after a gap of the right length. Resolution changes need
// nothing: VP8/VP9 keyframes carry their size, H.264 keyframes their SPS and PPS (the head
// declares the largest size advertised).
//
// VP8/VP9 + Opus go to WebM; H.264 + Opus to Matroska (.mkv, V_MPEG4/ISO/AVC). H.264 access
// units arrive as Annex-B byte streams and are stored with 4-byte NAL unit lengths, every
// keyframe carrying its parameter sets; the first keyframe's SPS and PPS make the track's
// CodecPrivate (an AVCDecoderConfigurationRecord, built with github.com/Eyevinn/mp4ff), so
// the file head waits for it (at most avcHeadWait after the gather window, after which the
// track is left out). A malformed access unit is skipped like a lost frame.
//
// # File format and crash safety
//
// Files are written by package mkv in an append-only layout: a head (EBML header, Segment
// of "unknown" size, a Void reserved for the SeekHead, Info with Duration 0, Tracks), then
// complete Clusters of known size (a new one at each video keyframe and at least every
// ClusterMax), then Cues at the end. Every prefix ending at a cluster boundary is a playable
// file. Finishing appends the Cues and patches the head in place (Segment size, SeekHead to
// Info/Tracks/Cues, Duration): the stored file is seekable with no post-processing.
//
// Each file is written to a spool file with an index of its clusters (<name>.idx) and its
// upload state (<name>.json). While recording, an uploader sends:
//
//   - parts of at least PartSize (>= 5 MiB, the S3 minimum) of a multipart upload of the
//     final object, cut at cluster boundaries;
//   - the bytes not yet in a part as small "tail" objects every FlushInterval, under
//     <prefix><room>/<id>/.inprogress/<file>/<offset>, deleted once a part covers them.
//
// So the store always holds everything but the cluster being written and at most one flush
// interval (about 4 s + 2 s by default). At the end the rest is uploaded as the last part,
// part 1 is uploaded again with the patched head, and the upload is completed: only about
// two parts move at the end, so a file is stored within seconds of the session end however
// long it is. A file shorter than one part is stored with a single PUT.
//
// Recovery at start-up (and a store sweep every 10 minutes):
//
//   - Sessions found in the spool directory are completed from it: the spool is cut after
//     the last indexed cluster, finalized (cues, head) and uploaded reusing the parts already
//     in the store; the manifest is written with recovered set. Nothing is lost but the
//     cluster being written at the crash.
//   - Multipart uploads and tail objects found only in the store (the spool was lost), that
//     no recording of this node owns and that have not changed for StaleAfter, are completed
//     from their parts followed by the tail objects that continue them, or aborted when
//     empty; tail objects are deleted. The object is then read back (mkv.Scan rebuilds the
//     layout and cluster index) and stored again with cues and the patched head, so it is
//     as seekable as one completed from the spool; a manifest is written from what the
//     files tell. No upload is left open and nothing uploaded is lost. Uploads still
//     changing at start-up are looked at again as soon as they have been idle StaleAfter.
//
// If the store is unreachable, recording goes on into the spool and uploads are retried with
// backoff (EventStoreUnavailable / EventStoreAvailable). Every store call is bounded (see
// storage.S3Config.Timeout), so a store that accepts connections and never answers delays
// nothing but the upload. SpoolLimit caps the bytes waiting for upload: past it new media
// is dropped (a gap) and EventSpoolFull is reported. If writing the spool fails (a full
// disk), the file is kept as far as it was written and completed at the end like the
// others; the participant's next track starts a new file.
//
// # Names, access and links
//
// Room and identity names come from clients; in keys they are escaped one-to-one (keys.go):
// "class 1", "class:1" and "class_1" are three folders, "a b" and "a_b" two files. Every
// file also names its room, participant, source and recording in its Matroska tags. Who may
// list or download a recording is decided on the exact room its manifest names: the
// recorder keeps a catalog of the manifests in the store (catalog.go), loaded at start,
// updated as recordings are stored and read again for a room when it is listed, and the API
// answers from it without waiting on the store for more than a few seconds. Listings hand
// out signed links (links.go): an HMAC under a key derived from the API secret, for one
// file, until LinkExpiry; access tokens are accepted only in the Authorization header.
//
// At start the spool directory (and a local store) must take a file: if not, the recorder
// says so loudly in the log and in the API's answers (Problems), and records nothing until
// it can; rooms are served all the same.
//
// # Starting and stopping
//
// Rooms are recorded automatically when their name matches Options.AutoRooms or their
// metadata is JSON with "record": true (Options.AutoMetadata), and on demand through the
// HTTP API (see Register) with a roomRecord token (at most startBurst starts of a room at
// once, then one per startEvery). A session lasts until the room finishes or the API stops
// it (a stop answers once the files are finalized in the spool; the upload goes on in the
// background); the recorder leaves a room when its last participant leaves (so that the
// room can close) and joins again if someone comes back. Events (EventRecordingStarted,
// EventRecordingFinished, ...) go to Observers and the log.
package recorder
