package room

import (
	"slices"
	"strconv"
	"strings"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/sfu"
)

// Audio codecs as Sanke negotiates them. Opus carries in-band FEC (its payload is forwarded
// untouched, so the publisher's LBRR frames reach every subscriber) and, answered to
// publishers, DTX unless the track disables it. RED (RFC 2198, the payload type Chromium
// offers, Opus in every block) is what a publisher sends first when it allows it, and what
// subscribers that decode it receive, wrapped by the SFU with as much redundancy as their
// loss asks for (package sfu).
const (
	opusFmtp = "minptime=10;useinbandfec=1"
	redPT    = 63
)

// opusFeedback is Opus's RTCP feedback: transport-cc for the publishers' estimators, NACK
// for subscribers without RED (answered from the down track's record of what it sent).
var opusFeedback = []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}, {Type: webrtc.TypeRTCPFBNACK}}

// audioCodecs returns the audio codecs registered with the media engine: Opus and RED.
func audioCodecs() []webrtc.RTPCodecParameters {
	return []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: opusFmtp, RTCPFeedback: opusFeedback}, PayloadType: 111},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: sfu.MimeTypeRED, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "111/111", RTCPFeedback: []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}}}, PayloadType: redPT},
	}
}

// supportsAudioRED reports whether a client decodes RED: LiveKit's rule, every client but
// Firefox and Safari (which get the Opus frames alone). A client that does not know RED
// (the Go SDK) leaves it out of its answer and gets Opus too.
func supportsAudioRED(ci *livekit.ClientInfo) bool {
	b := strings.ToLower(ci.GetBrowser())
	return !strings.Contains(b, "firefox") && !strings.Contains(b, "safari")
}

// subscriberAudioCodecs returns the codec preferences of an audio section sent to a
// subscriber: RED first for those that decode it (no NACK: the redundancy covers loss, as in
// LiveKit), else Opus with NACK.
func subscriberAudioCodecs(red bool) []webrtc.RTPCodecParameters {
	codecs := audioCodecs()
	if !red {
		return codecs[:1]
	}
	opus := codecs[0]
	opus.RTCPFeedback = opus.RTCPFeedback[:1] // transport-cc only
	return []webrtc.RTPCodecParameters{codecs[1], opus}
}

// preferAudioCodecs sets the codec preferences of the audio sections of a publisher's offer
// (applied, not yet answered) from the tracks they carry (found by the msid's track id, the
// add_track cid): RED first unless the track disables it, and Opus's fmtp with DTX unless
// disabled and stereo when asked. Chromium sends the first codec of the answer, so a
// teacher's microphone on a weak uplink arrives with its redundancy.
func (p *Participant) preferAudioCodecs(pc *webrtc.PeerConnection, offer webrtc.SessionDescription) {
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(offer.SDP); err != nil {
		return
	}
	for _, m := range parsed.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		if _, recvonly := m.Attribute(sdp.AttrKeyRecvOnly); recvonly {
			continue // a section the client receives on (a single PeerConnection)
		}
		mid, _ := m.Attribute(sdp.AttrKeyMID)
		var tr *webrtc.RTPTransceiver
		for _, t := range pc.GetTransceivers() {
			if t.Mid() == mid && t.Kind() == webrtc.RTPCodecTypeAudio {
				tr = t
			}
		}
		if tr == nil {
			continue
		}
		info := p.audioTrackInfo(msidTrack(m))
		dtx, stereo, red := true, false, true
		if info != nil {
			dtx, stereo, red = !info.DisableDtx, info.Stereo, !info.DisableRed //nolint:staticcheck // LiveKit protocol: TrackInfo carries them
		}
		fmtp := opusFmtp
		if dtx {
			fmtp += ";usedtx=1"
		}
		if stereo {
			fmtp += ";stereo=1;sprop-stereo=1"
		}
		codecs := audioCodecs()
		opus := codecs[0]
		opus.PayloadType, opus.SDPFmtpLine = 0, fmtp // the offer's payload type
		prefs := []webrtc.RTPCodecParameters{opus}
		if redFmtp, ok := offeredRED(m); ok && red {
			r := codecs[1]
			r.PayloadType, r.SDPFmtpLine = 0, redFmtp
			prefs = []webrtc.RTPCodecParameters{r, opus}
		}
		if err := tr.SetCodecPreferences(prefs); err != nil {
			p.logger.Debug("audio codec preferences", "mid", mid, "err", err)
		}
	}
}

// offeredRED returns the fmtp of the RED codec an offer's section carries, and whether it
// carries one.
func offeredRED(m *sdp.MediaDescription) (string, bool) {
	one := &sdp.SessionDescription{MediaDescriptions: []*sdp.MediaDescription{m}}
	for _, f := range m.MediaName.Formats {
		pt, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue
		}
		if c, err := one.GetCodecForPayloadType(uint8(pt)); err == nil && strings.EqualFold(c.Name, "red") {
			return c.Fmtp, true
		}
	}
	return "", false
}

// msidTrack returns the track id of a section's msid ("<stream> <track>"), "" if none.
func msidTrack(m *sdp.MediaDescription) string {
	v, ok := m.Attribute("msid")
	if !ok {
		return ""
	}
	if _, track, ok := strings.Cut(v, " "); ok {
		return track
	}
	return ""
}

// audioTrackInfo returns the description of the audio track with client id cid, announced or
// published; nil if there is none.
func (p *Participant) audioTrackInfo(cid string) *livekit.TrackInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	if info, ok := p.pending[cid]; ok && info.Type == livekit.TrackType_AUDIO {
		return info
	}
	for _, t := range p.published {
		if t.cid == cid && t.kind() == livekit.TrackType_AUDIO {
			return t.Info()
		}
	}
	return nil
}

// preferSubscriberAudio sets the codecs offered on the audio section of sender, a track sent
// to p (see subscriberAudioCodecs).
func (p *Participant) preferSubscriberAudio(sender *webrtc.RTPSender) {
	for _, tr := range p.downTransport().pc.GetTransceivers() {
		if tr.Sender() != sender {
			continue
		}
		if err := tr.SetCodecPreferences(subscriberAudioCodecs(supportsAudioRED(p.clientInfo))); err != nil {
			p.logger.Debug("audio codec preferences", "err", err)
		}
		return
	}
}

// withAudioNACK returns a publisher's offer with NACK feedback on the Opus of every audio
// section. Browsers do not offer audio NACK (livekit-client adds it only to the answers it
// makes); with it in the offer, pion's NACK generator asks the publisher for the audio its
// uplink lost, and the answer tells the browser to keep its audio for retransmission: a
// teaching point still hears a pupil whose uplink drops packets. Sections the client receives
// on (a single PeerConnection) get it too: pion negotiates a PeerConnection's codecs from the
// first section of each kind, which livekit-client makes a receive section, so without it
// there the microphone was answered without NACK. What those sections are answered stays the
// subscriber's (preferSubscriberAudio: no NACK next to RED). An offer that does not parse is
// returned as it is.
func withAudioNACK(offer webrtc.SessionDescription) webrtc.SessionDescription {
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(offer.SDP); err != nil {
		return offer
	}
	changed := false
	for _, m := range parsed.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		pt := ""
		for _, a := range m.Attributes {
			if v, ok := strings.CutSuffix(strings.ToLower(a.Value), " opus/48000/2"); a.Key == "rtpmap" && ok {
				pt = v
				break
			}
		}
		if pt == "" || slices.ContainsFunc(m.Attributes, func(a sdp.Attribute) bool { return a.Key == "rtcp-fb" && a.Value == pt+" nack" }) {
			continue
		}
		m.WithValueAttribute("rtcp-fb", pt+" nack")
		changed = true
	}
	if !changed {
		return offer
	}
	out, err := parsed.Marshal()
	if err != nil {
		return offer
	}
	offer.SDP = string(out)
	return offer
}
