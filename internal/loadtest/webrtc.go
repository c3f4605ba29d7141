package loadtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

// Payload types and header extensions the generator offers. Only what a LiveKit server needs
// from a publisher: VP8 and Opus, mid and rid (simulcast), audio level (speaker detection).
const (
	ptVP8         = 96
	ptOpus        = 111
	extAudioLevel = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
)

// mediaStack is the pion API every generator client shares: one MediaEngine with VP8 and Opus,
// no interceptors (publishers answer PLIs themselves, subscribers only count), one DTLS
// certificate, and an ICE configuration limited to what reaches the server. recvAPI, for the
// subscribers' receiving PeerConnections, differs only in its network types (ICE-TCP with
// Config.ICETransport "tcp").
type mediaStack struct {
	api      *webrtc.API
	recvAPI  *webrtc.API
	cert     webrtc.Certificate
	arrivals *arrivals
}

// SRTP profile choices for Config.SRTP.
const (
	SRTPAny = "any"     // offer AES-GCM first, then AES-CM (like current browsers)
	SRTPGCM = "aes-gcm" // AES-GCM only
	SRTPCM  = "aes-cm"  // AES-128-CM-HMAC-SHA1-80 only
)

// newMediaStack builds the shared API. With tcpSubscribers, subscribers' PeerConnections
// gather no candidates of their own: pion dials the server's passive ICE-TCP candidates
// (active ICE-TCP, with its own net.Dialer, so their packets bypass bufferedNet and have no
// arrival times). v4 and v6 are the address families it gathers and dials.
func newMediaStack(loopback, v4, v6 bool, srtpProfile string, tcpSubscribers bool, now func() time.Duration) (*mediaStack, error) {
	me := &webrtc.MediaEngine{}
	videoFB := []webrtc.RTCPFeedback{
		{Type: webrtc.TypeRTCPFBNACK}, {Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"}, {Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFB},
		PayloadType:        ptVP8,
	}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        ptOpus,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	for _, e := range []struct {
		uri  string
		kind webrtc.RTPCodecType
	}{
		{sdp.SDESMidURI, webrtc.RTPCodecTypeVideo},
		{sdp.SDESRTPStreamIDURI, webrtc.RTPCodecTypeVideo},
		{sdp.SDESMidURI, webrtc.RTPCodecTypeAudio},
		{extAudioLevel, webrtc.RTPCodecTypeAudio},
	} {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: e.uri}, e.kind); err != nil {
			return nil, err
		}
	}

	se := webrtc.SettingEngine{}
	switch srtpProfile {
	case SRTPGCM:
		se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM)
	case SRTPCM:
		se.SetSRTPProtectionProfiles(dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	case SRTPAny, "":
		se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AEAD_AES_256_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	default:
		return nil, fmt.Errorf("unknown SRTP profile %q (want %s, %s or %s)", srtpProfile, SRTPAny, SRTPGCM, SRTPCM)
	}
	var udp, tcp []webrtc.NetworkType
	if v4 {
		udp, tcp = append(udp, webrtc.NetworkTypeUDP4), append(tcp, webrtc.NetworkTypeTCP4)
	}
	if v6 {
		udp, tcp = append(udp, webrtc.NetworkTypeUDP6), append(tcp, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(udp)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if loopback {
		// One host candidate (one socket) per PeerConnection, on loopback.
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	} else {
		se.SetIPFilter(func(ip net.IP) bool { return !ip.IsLoopback() })
	}

	std, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	arr := &arrivals{now: now}
	se.SetNet(bufferedNet{Net: std, arr: arr})

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	cert, err := webrtc.GenerateCertificate(key)
	if err != nil {
		return nil, err
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	recvAPI := api
	if tcpSubscribers {
		tse := se // a copy, sharing the Net and its arrival rings
		tse.SetNetworkTypes(tcp)
		recvAPI = webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(tse),
			webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	}
	return &mediaStack{api: api, recvAPI: recvAPI, cert: *cert, arrivals: arr}, nil
}

// newPeerConnection returns a PeerConnection of the shared API; receiver selects the API of
// subscribers' receiving PeerConnections (see Config.ICETransport).
func (m *mediaStack) newPeerConnection(receiver bool) (*webrtc.PeerConnection, error) {
	api := m.api
	if receiver {
		api = m.recvAPI
	}
	return api.NewPeerConnection(webrtc.Configuration{
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
		SDPSemantics:  webrtc.SDPSemanticsUnifiedPlan,
		Certificates:  []webrtc.Certificate{m.cert},
	})
}

// localTrack is a webrtc.TrackLocal that writes ready-made RTP payloads with the SSRC,
// payload type and header extensions (mid, rid, audio level) negotiated for it; one per
// simulcast layer.
type localTrack struct {
	id, streamID, rid string
	codec             webrtc.RTPCodecCapability

	mu        sync.Mutex
	writer    webrtc.TrackLocalWriter
	ssrc      uint32
	pt        uint8
	midExt    uint8
	ridExt    uint8
	levelExt  uint8
	mid       []byte
	ridBytes  []byte
	header    rtp.Header
	extBuf    [3]rtp.Extension
	audioData [1]byte
}

func newLocalTrack(codec webrtc.RTPCodecCapability, id, streamID, rid string) *localTrack {
	return &localTrack{id: id, streamID: streamID, rid: rid, ridBytes: []byte(rid), codec: codec}
}

// Bind is called by pion once negotiation has chosen a codec and an SSRC.
func (t *localTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if c.MimeType != t.codec.MimeType {
			continue
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		t.writer = ctx.WriteStream()
		t.ssrc = uint32(ctx.SSRC())
		t.pt = uint8(c.PayloadType)
		for _, e := range ctx.HeaderExtensions() {
			switch e.URI {
			case sdp.SDESMidURI:
				t.midExt = uint8(e.ID)
			case sdp.SDESRTPStreamIDURI:
				t.ridExt = uint8(e.ID)
			case extAudioLevel:
				t.levelExt = uint8(e.ID)
			}
		}
		return c, nil
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

// Unbind is called when the sender stops.
func (t *localTrack) Unbind(webrtc.TrackLocalContext) error {
	t.mu.Lock()
	t.writer = nil
	t.mu.Unlock()
	return nil
}

// ID is the track id (the LiveKit cid). StreamID groups tracks; RID names the layer.
func (t *localTrack) ID() string       { return t.id }
func (t *localTrack) StreamID() string { return t.streamID }
func (t *localTrack) RID() string      { return t.rid }

// Kind returns audio or video.
func (t *localTrack) Kind() webrtc.RTPCodecType {
	if t.codec.MimeType == webrtc.MimeTypeOpus {
		return webrtc.RTPCodecTypeAudio
	}
	return webrtc.RTPCodecTypeVideo
}

func (t *localTrack) setMid(mid string) {
	t.mu.Lock()
	t.mid = []byte(mid)
	t.mu.Unlock()
}

// write sends one packet; it reports false (and sends nothing) before negotiation bound the
// track. level is the audio level in -dBov for audio tracks.
func (t *localTrack) write(seq uint16, ts uint32, marker bool, level uint8, payload []byte) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.writer == nil {
		return false, nil
	}
	h := &t.header
	*h = rtp.Header{Version: 2, Marker: marker, PayloadType: t.pt, SequenceNumber: seq, Timestamp: ts, SSRC: t.ssrc,
		Extensions: t.extBuf[:0]}
	if t.midExt != 0 && len(t.mid) > 0 {
		_ = h.SetExtension(t.midExt, t.mid)
	}
	if t.ridExt != 0 && len(t.ridBytes) > 0 {
		_ = h.SetExtension(t.ridExt, t.ridBytes)
	}
	if t.levelExt != 0 {
		t.audioData[0] = level & 0x7f
		_ = h.SetExtension(t.levelExt, t.audioData[:])
	}
	_, err := t.writer.WriteRTP(h, payload)
	return true, err
}
