package room

import (
	"strings"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/sfu"
)

// Lip sync. A browser plays in sync the audio and video it receives in one MediaStream (the
// msid's stream id): Chromium's RtpStreamsSynchronizer raises the playout delay of whichever
// is ahead until both play what was captured at the same time, from the sender reports'
// wall clock (DownTrack.senderReport carries the publisher's). So a subscriber receives a
// participant's camera and microphone in one stream, as LiveKit does with sync_streams: the
// stream id "<participant sid>|<stream>" instead of "<participant sid>|<track sid>", the track
// sid in the msid's track id, where livekit-client and the Go SDK read it when the stream id
// names no track. It is what a class expects (the teacher's lips with her voice), and on a
// lossy link it gives the audio the video's playout delay (sfu/downtrack_playout.go: several
// round trips under loss), time for frames that RED carries late to be played rather than
// concealed.

// Stream names of tracks published without one (livekit-server's StreamFromTrackSource): a
// camera with its microphone, a screen share with its audio.
const (
	streamCamera = "camera"
	streamScreen = "screen"
)

// streamOf returns the stream a published track is synchronised in: the one its publisher
// named, else the pair its source belongs to, "" for an unknown source (no pair is known:
// such a track keeps a stream of its own).
func streamOf(req *livekit.AddTrackRequest) string {
	if name := req.GetStream(); validStreamName(name) {
		return name
	}
	switch req.GetSource() {
	case livekit.TrackSource_CAMERA, livekit.TrackSource_MICROPHONE:
		return streamCamera
	case livekit.TrackSource_SCREEN_SHARE, livekit.TrackSource_SCREEN_SHARE_AUDIO:
		return streamScreen
	default:
		return ""
	}
}

// maxStreamName bounds a client's stream name: "<participant sid>|<name>" must stay within
// the 64 characters of an msid id (RFC 8830).
const maxStreamName = 32

// validStreamName reports whether a client's stream name may go into other subscribers'
// session descriptions: a short run of letters, digits, '-', '_' and '.', nothing that could
// end the msid attribute or the line. Any other name is ignored (the track's source decides).
func validStreamName(name string) bool {
	if name == "" || len(name) > maxStreamName {
		return false
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// syncProtocol is the first client protocol version that finds a track whose stream id
// names a stream rather than the track (livekit-server's SupportsSyncStreamID).
const syncProtocol = 10

// supportsSyncStreams reports whether a client maps tracks received in shared streams:
// LiveKit's rule, every client from protocol 10 but Firefox, which makes up its own track
// ids instead of taking the msid's (it gets a stream per track).
func supportsSyncStreams(ci *livekit.ClientInfo) bool {
	return ci.GetProtocol() >= syncProtocol && !strings.Contains(strings.ToLower(ci.GetBrowser()), "firefox")
}

// maxIdleTransceivers bounds the free transceivers of a kind a subscriber's PeerConnection
// may hold before a track in a shared stream takes one of them (in a stream of its own, out of
// sync) rather than a new one: a publisher unpublishing and publishing again in a loop must
// not grow every subscriber's session description for good.
const maxIdleTransceivers = 32

// downStream returns the msid stream id sub receives t in, and whether t shares it with the
// publisher's other tracks of its stream.
func (r *Room) downStream(sub *Participant, t *PublishedTrack) (id string, shared bool) {
	t.mu.Lock()
	stream, kind := t.info.Stream, t.info.Type
	t.mu.Unlock()
	if r.cfg.SyncStreams && stream != "" && supportsSyncStreams(sub.clientInfo) &&
		(sub.single || sub.idleTransceivers(kind) < maxIdleTransceivers) {
		return t.owner.sid + "|" + stream, true
	}
	return t.owner.sid + "|" + t.SID(), false
}

// idleTransceivers counts the transceivers of kind on p's down PeerConnection that send
// nothing.
func (p *Participant) idleTransceivers(kind livekit.TrackType) int {
	want := webrtc.RTPCodecTypeVideo
	if kind == livekit.TrackType_AUDIO {
		want = webrtc.RTPCodecTypeAudio
	}
	n := 0
	for _, tr := range p.downTransport().pc.GetTransceivers() {
		if tr.Kind() == want && tr.Sender() == nil {
			n++
		}
	}
	return n
}

// addDownTrack adds down to p's PeerConnection. A track in a shared stream gets a
// transceiver of its own when the server offers (two PeerConnections): the receiver's
// MediaStreamTrack, and so its id, lives as long as the browser's transceiver, and a reused
// one would still carry the id of the track it received first, which livekit-client takes
// for this one (browser test 1b: a camera published again never played); livekit-server
// turns transceiver reuse off with sync streams for this reason. The price, a media section
// for each such subscription for the life of the PeerConnection, is bounded by
// maxIdleTransceivers. When the client offers (one PeerConnection) its transceivers' track ids are its own and it
// maps them by mid (midToTrackId), so pion's AddTrack may take a free one.
func (p *Participant) addDownTrack(down *sfu.DownTrack, shared bool) (*webrtc.RTPSender, error) {
	pc := p.downTransport().pc
	if !shared || p.single {
		return pc.AddTrack(down)
	}
	tr, err := pc.AddTransceiverFromTrack(down, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return nil, err
	}
	return tr.Sender(), nil
}
