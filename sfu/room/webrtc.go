package room

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/internal/connlimit"
	"github.com/sanke-edu/sanke/internal/pionlog"
	"github.com/sanke-edu/sanke/sfu"
	"github.com/sanke-edu/sanke/sfu/srtpout"
	"github.com/sanke-edu/sanke/sfu/udpsock"
)

// MediaConfig configures the WebRTC API shared by every PeerConnection of a node.
type MediaConfig struct {
	// UDPPort is the one UDP port all peers share.
	UDPPort int
	// TCPPort is the ICE-TCP port (passive) for UDP-blocked clients; 0 disables ICE-TCP.
	TCPPort int
	// TCPLimit bounds the ICE-TCP connections open at once (Max at least 1 when TCPPort is
	// set); connections beyond are closed as soon as they are accepted.
	TCPLimit connlimit.Config
	// TCPSetupTimeout closes an ICE-TCP connection whose first STUN binding request has not
	// arrived within it, or named a session the node does not have (pion's
	// TCPMuxParams.FirstStunBindTimeout and AliveDurationForConnFromStun). 0: 10 s.
	TCPSetupTimeout time.Duration
	// BindIP restricts the media sockets to one address (e.g. 127.0.0.1 or ::1 in dev) and
	// its family; 0.0.0.0: every IPv4 address; empty or "::": every address, IPv4 and IPv6,
	// on dual-stack sockets.
	BindIP string
	// NodeIPs are advertised as the host candidate addresses when set (1:1 NAT): at most one
	// IPv4 and one IPv6 address, each replacing the interface addresses of its family. A
	// family without one advertises its interface addresses.
	NodeIPs []string
	// IncludeLoopback gathers loopback candidates (needed when clients run on the same host).
	IncludeLoopback bool
	// DirectSRTP sends forwarded media on the shared UDP socket with the SFU's own SRTP
	// encryption and one sendmmsg per fan-out batch (package sfu/srtpout), instead of
	// pion's write path, wherever the node is the DTLS server over UDP. pion still carries
	// ICE, DTLS, RTCP, data channels and everything else.
	DirectSRTP bool
	// DownlinkControl gives every PeerConnection an sfu.Allocator that fits the video
	// layers it carries to the subscriber's downlink.
	DownlinkControl bool
}

// MediaAPI builds the PeerConnections of a node: codecs, interceptors, settings and the
// sockets they share.
type MediaAPI struct {
	me      *webrtc.MediaEngine
	ir      *interceptor.Registry
	se      webrtc.SettingEngine
	udp     *net.UDPConn
	udpPort int
	tcp     *connlimit.Limiter   // the ICE-TCP connections; nil without ICE-TCP
	streams *srtpout.StreamConns // the ICE-TCP connections direct senders may send on
	direct  bool
	control bool // DownlinkControl
	logger  *slog.Logger
	// firstSeq is SetFirstSeq's test hook.
	firstSeq uint16
	closers  []func() error
	// peers counts the participants' PeerConnections not yet closed (transports).
	peers atomic.Int64
}

// PeerOptions say what one PeerConnection is for.
type PeerOptions struct {
	// Publish: the PeerConnection receives media from the client and needs the interceptors
	// that act on received streams (NACK generation, receiver reports, transport-cc).
	// Receive-only (subscriber) PeerConnections get none: no per-connection ticker
	// goroutines, no per-packet work.
	Publish bool
	// Direct: forwarded media may bypass pion's write path (MediaConfig.DirectSRTP); the
	// returned Sender is non-nil then.
	Direct bool
	// OnPathChange, if set, runs when ICE selects a candidate pair on a new path (the first,
	// or a new peer address or transport after a restart or a move to ICE-TCP: what was
	// learned about the old path's capacity no longer holds; see samePath). OnSelectedPair and OnDTLSConnected, if set, run when ICE selects a
	// candidate pair and when DTLS connects (after the direct sender follows). Each runs in a
	// goroutine of its own.
	OnPathChange    func()
	OnSelectedPair  func(*webrtc.ICECandidatePair)
	OnDTLSConnected func()
}

// NewPeerConnection returns a PeerConnection built for o, and the direct sender of its
// forwarded media (nil unless o.Direct and the node enables it). The sender follows the
// selected ICE candidate pair by itself.
func (m *MediaAPI) NewPeerConnection(cfg webrtc.Configuration, o PeerOptions) (*webrtc.PeerConnection, *srtpout.Sender, error) {
	ir := &interceptor.Registry{}
	if o.Publish {
		ir = m.ir
	}
	se := m.se // a copy: hooks below are this PeerConnection's own
	var out *srtpout.Sender
	if o.Direct && m.direct {
		out = srtpout.NewSender(m.udp)
		se.SetDTLSServerHelloMessageHook(out.KeyCapture().ServerHelloHook)
		se.SetDTLSKeyLogWriter(out.KeyCapture())
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m.me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(cfg)
	if err != nil {
		return nil, nil, err
	}
	ice := pc.SCTP().Transport().ICETransport()
	follow := func() {
		if out != nil {
			m.followPair(out, ice)
		}
	}
	// pion calls both hooks under its transports' locks: what may take other locks runs in
	// a goroutine.
	var pathMu sync.Mutex
	var path *webrtc.ICECandidatePair
	ice.OnSelectedCandidatePairChange(func(pair *webrtc.ICECandidatePair) {
		follow()
		pathMu.Lock()
		moved := !samePath(path, pair)
		path = pair
		pathMu.Unlock()
		if moved && o.OnPathChange != nil {
			go o.OnPathChange()
		}
		if o.OnSelectedPair != nil {
			go o.OnSelectedPair(pair)
		}
	})
	pc.SCTP().Transport().OnStateChange(func(st webrtc.DTLSTransportState) {
		switch st {
		case webrtc.DTLSTransportStateConnected:
			follow()
			if o.OnDTLSConnected != nil {
				go o.OnDTLSConnected()
			}
		case webrtc.DTLSTransportStateClosed, webrtc.DTLSTransportStateFailed:
			if out != nil {
				out.Close()
			}
		}
	})
	return pc, out, nil
}

// samePath reports whether two selected candidate pairs carry media over the same network
// path: the same peer address and transport, leaving our side from the same socket. ICE may
// switch between our host candidates of one shared UDP socket (127.0.0.1, 10.x, ...) every few
// seconds while the packets go out the same way to the same peer: that is no new path, and
// learning its capacity anew each time let a flooding layer back onto a thin line.
func samePath(a, b *webrtc.ICECandidatePair) bool {
	if a == nil || b == nil || a.Local == nil || b.Local == nil || a.Remote == nil || b.Remote == nil {
		return false
	}
	same := a.Remote.Address == b.Remote.Address && a.Remote.Port == b.Remote.Port &&
		a.Remote.Protocol == b.Remote.Protocol && a.Local.Protocol == b.Local.Protocol &&
		a.Local.Typ == b.Local.Typ && a.Local.Port == b.Local.Port
	if a.Local.Typ != webrtc.ICECandidateTypeHost {
		same = same && a.Local.Address == b.Local.Address // a relay's or a mapped address is the path
	}
	return same
}

// followPair points out at the selected candidate pair's path: the peer's address when the
// pair runs over the shared UDP socket, the connection when it runs over our ICE-TCP
// listener. Any other pair (none yet, another socket) stops the sender until the next one.
// The sender's SRTP state stays whatever the path, so a stream moving from UDP to ICE-TCP
// and back keeps its rollover counter.
func (m *MediaAPI) followPair(out *srtpout.Sender, ice *webrtc.ICETransport) {
	pair, err := ice.GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil || pair.Remote == nil || pair.Local.Typ == webrtc.ICECandidateTypeRelay {
		out.SetRemote(nil)
		return
	}
	ip, err := netip.ParseAddr(pair.Remote.Address)
	if err != nil {
		out.SetRemote(nil)
		return
	}
	remote := netip.AddrPortFrom(ip.Unmap(), pair.Remote.Port)
	switch {
	case pair.Local.Protocol == webrtc.ICEProtocolUDP && pair.Remote.Protocol == webrtc.ICEProtocolUDP && int(pair.Local.Port) == m.udpPort:
		out.SetRemote(net.UDPAddrFromAddrPort(remote))
	case pair.Local.Protocol == webrtc.ICEProtocolTCP && m.streams != nil:
		if st := m.streams.Lookup(remote); st != nil {
			m.logger.Debug("direct SRTP over ICE-TCP", "remote", remote)
			out.SetStream(st)
			return
		}
		m.logger.Debug("direct SRTP paused: no ICE-TCP connection from the pair's address", "remote", remote)
		out.SetRemote(nil)
	default:
		out.SetRemote(nil)
	}
}

// SetFirstSeq is a test hook: every down track made from now on starts its output sequence
// numbers at seq (0: the publisher's numbering), so that a test sees them wrap within
// seconds. Call it before the first participant joins.
func (m *MediaAPI) SetFirstSeq(seq uint16) { m.firstSeq = seq }

// PeerConnections returns the number of participants' PeerConnections open: made for a
// participant and not closed yet (whether or not it is still in a room).
func (m *MediaAPI) PeerConnections() int {
	return int(m.peers.Load())
}

// TCPConns returns the number of ICE-TCP connections open.
func (m *MediaAPI) TCPConns() int {
	if m.tcp == nil {
		return 0
	}
	return m.tcp.Open()
}

// Close releases the shared media sockets.
func (m *MediaAPI) Close() error {
	var first error
	for _, c := range m.closers {
		if err := c(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// defaultTCPSetupTimeout is MediaConfig.TCPSetupTimeout's default: a rural client's first
// STUN request arrives within a few seconds of its connection (a one-second round trip, a
// lost segment or two, its checks paced behind the UDP pairs it tries first).
const defaultTCPSetupTimeout = 10 * time.Second

// dtlsRetransmission is the first wait before a DTLS flight is sent again.
const dtlsRetransmission = 100 * time.Millisecond

// Header extensions the SFU negotiates. Mid/RID are required for simulcast; audio level
// feeds speaker detection; transport-cc lets publishers estimate their uplink; playout delay
// lets the SFU widen a lossy subscriber's video jitter buffer (sfu.PlayoutDelayURI).
const (
	extAudioLevel = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
	extTWCC       = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
)

// NewMediaAPI builds the WebRTC API: codecs, header extensions, the interceptors the SFU needs,
// one UDP socket for all peers (and optionally one ICE-TCP listener), and AES-GCM-first SRTP.
func NewMediaAPI(cfg MediaConfig, logger *slog.Logger) (*MediaAPI, error) {
	me := &webrtc.MediaEngine{}
	if err := registerCodecs(me); err != nil {
		return nil, err
	}

	// Interceptors act on streams received from publishers: NACK generation (ask the
	// publisher to retransmit what we lost) and receiver reports. Transport-cc feedback lets
	// browsers ramp up simulcast bitrate. Subscriber streams get no interceptor: the sfu
	// package answers NACKs from its own cache and writes its own sender reports.
	ir := &interceptor.Registry{}
	gen, err := nack.NewGeneratorInterceptor()
	if err != nil {
		return nil, err
	}
	ir.Add(gen)
	rr, err := report.NewReceiverInterceptor()
	if err != nil {
		return nil, err
	}
	ir.Add(rr)
	if err := webrtc.ConfigureTWCCSender(me, ir); err != nil {
		return nil, err
	}

	se := webrtc.SettingEngine{}
	se.SetSRTPProtectionProfiles(
		dtls.SRTP_AEAD_AES_128_GCM,
		dtls.SRTP_AEAD_AES_256_GCM,
		dtls.SRTP_AES128_CM_HMAC_SHA1_80,
	)
	// In DTLS-SRTP the DTLS server picks the protection profile. Browsers offer actpass and
	// put AES-CM first, so as answerer we take the server role and pick AES-GCM (about a
	// sixth of AES-CM's cost per packet in pion).
	if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
		return nil, err
	}
	// DTLS starts once ICE has checked the client's address, which is what DTLS's cookie
	// exchange (HelloVerifyRequest) proves again: skipping it saves a round trip before the
	// first media, 300 ms on a rural line. Lost flights are sent again after 100 ms (LiveKit's
	// value), doubling each time, instead of pion's 1 s.
	se.SetDTLSInsecureSkipHelloVerify(true)
	se.SetDTLSRetransmissionInterval(dtlsRetransmission)
	se.LoggerFactory = pionlog.New(logger)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	se.SetICETimeouts(10*time.Second, 20*time.Second, 2*time.Second)
	se.SetLite(false)
	// The server only offers host candidates, so the clients' addresses it learns from their
	// checks (peer-reflexive: every ICE-TCP client, whose active candidates carry no port,
	// and browsers that hide their host addresses behind mDNS names) are direct paths. pion
	// otherwise waits 1 s from the start of ICE before the controlling side (ours, on the
	// subscriber PeerConnection) may nominate such a pair: a second before the first media.
	se.SetPrflxAcceptanceMinWait(0)
	// A client's relayed address (the TURN relay, for clients behind firewalls that pass
	// nothing else) waited 2 s by pion's default; half a second still lets the direct pairs,
	// checked first, win when they work.
	se.SetRelayAcceptanceMinWait(500 * time.Millisecond)
	if err := rewriteNodeIPs(&se, cfg.NodeIPs); err != nil {
		return nil, err
	}

	m := &MediaAPI{me: me, ir: ir, direct: cfg.DirectSRTP, control: cfg.DownlinkControl, logger: logger}
	bind := net.ParseIP(cfg.BindIP)
	muxConn, err := udpsock.Listen(bind, cfg.UDPPort)
	if err != nil {
		return nil, fmt.Errorf("listen udp %d: %w", cfg.UDPPort, err)
	}
	local := muxConn.LocalAddr().(*net.UDPAddr)
	m.udp, m.udpPort = muxConn.UDPConn, local.Port
	// The families the socket carries: an IPv4 socket only IPv4 (also a wildcard one on a
	// host without IPv6), an IPv6 bind address only IPv6, a dual-stack socket both.
	v4 := local.IP.To4() != nil || bind == nil || bind.IsUnspecified()
	v6 := local.IP.To4() == nil
	var networks []webrtc.NetworkType
	if v4 {
		networks = append(networks, webrtc.NetworkTypeUDP4)
	}
	if v6 {
		networks = append(networks, webrtc.NetworkTypeUDP6)
	}
	// pion reads and writes through muxConn without waking the Go runtime's monitor.
	udpMux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: muxConn})
	se.SetICEUDPMux(udpMux)
	m.closers = append(m.closers, udpMux.Close)

	if cfg.TCPPort > 0 {
		if m.tcp, err = connlimit.New(cfg.TCPLimit); err != nil {
			_ = m.Close()
			return nil, fmt.Errorf("ice-tcp: %w", err)
		}
		network, addr := "tcp", &net.TCPAddr{Port: cfg.TCPPort} // dual-stack, as the UDP socket
		switch {
		case !v6:
			network, addr.IP = "tcp4", bind
		case !v4:
			network, addr.IP = "tcp6", bind
		}
		tl, err := net.ListenTCP(network, addr)
		if err != nil {
			_ = m.Close()
			return nil, fmt.Errorf("listen tcp %d: %w", cfg.TCPPort, err)
		}
		setup := cfg.TCPSetupTimeout
		if setup <= 0 {
			setup = defaultTCPSetupTimeout
		}
		// pion holds an accepted connection until its first STUN binding request
		// (FirstStunBindTimeout), and one whose request names a ufrag no PeerConnection has
		// asked for (AliveDurationForConnFromStun): 30 s each by default, with no cap on
		// how many. A client learns the ICE-TCP candidate only after its PeerConnection
		// registered its ufrag, so a request from a real client finds its session.
		// Direct senders write their SRTP on the accepted connections too (followPair).
		m.streams = srtpout.NewStreamConns(0)
		tcpMux := ice.NewTCPMuxDefault(ice.TCPMuxParams{Listener: m.streams.Listener(m.tcp.Listener(tl)), ReadBufferSize: 64,
			FirstStunBindTimeout: setup, AliveDurationForConnFromStun: setup, Logger: se.LoggerFactory.NewLogger("ice-tcp")})
		se.SetICETCPMux(tcpMux)
		m.closers = append(m.closers, tcpMux.Close)
		if v4 {
			networks = append(networks, webrtc.NetworkTypeTCP4)
		}
		if v6 {
			networks = append(networks, webrtc.NetworkTypeTCP6)
		}
	}
	se.SetNetworkTypes(networks)
	if bind != nil && !bind.IsUnspecified() {
		se.SetIPFilter(func(ip net.IP) bool { return ip.Equal(bind) })
	}

	m.se = se
	logger.Info("media plane ready", "udp_port", cfg.UDPPort, "tcp_port", cfg.TCPPort, "bind", cfg.BindIP, "networks", networks,
		"node_ip", cfg.NodeIPs,
		"direct_srtp", cfg.DirectSRTP, "downlink_control", cfg.DownlinkControl)
	return m, nil
}

// rewriteNodeIPs makes host candidates carry the node IPs (at most one per family) instead of
// the interface addresses of their family; a family with no node IP keeps its addresses.
func rewriteNodeIPs(se *webrtc.SettingEngine, ips []string) error {
	if len(ips) == 0 {
		return nil
	}
	var networks []webrtc.NetworkType
	for _, a := range ips {
		switch ip := net.ParseIP(a); {
		case ip == nil:
			return fmt.Errorf("node ip %q: not an IP address", a)
		case ip.To4() != nil:
			networks = append(networks, webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4)
		default:
			networks = append(networks, webrtc.NetworkTypeUDP6, webrtc.NetworkTypeTCP6)
		}
	}
	if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
		External: ips, AsCandidateType: webrtc.ICECandidateTypeHost, Networks: networks,
	}); err != nil {
		return fmt.Errorf("node ip %v: %w", ips, err)
	}
	return nil
}

// registerCodecs registers the codecs the SFU forwards. No RTX: retransmissions arrive on the
// media SSRC, which keeps the packet cache and NACK path simple.
func registerCodecs(me *webrtc.MediaEngine) error {
	videoFB := []webrtc.RTCPFeedback{
		{Type: webrtc.TypeRTCPFBGoogREMB},
		{Type: webrtc.TypeRTCPFBTransportCC},
		{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
		{Type: webrtc.TypeRTCPFBNACK},
		{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
	}
	audio := audioCodecs()
	video := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFB}, PayloadType: 96},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: videoFB}, PayloadType: 102},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", RTCPFeedback: videoFB}, PayloadType: 104},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f", RTCPFeedback: videoFB}, PayloadType: 108},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000,
			SDPFmtpLine: "profile-id=0", RTCPFeedback: videoFB}, PayloadType: 98},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeAV1, ClockRate: 90000, RTCPFeedback: videoFB}, PayloadType: 35},
	}
	for _, c := range audio {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return err
		}
	}
	for _, c := range video {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
	}
	for _, ext := range []string{sdp.SDESMidURI, sdp.SDESRTPStreamIDURI, sdp.SDESRepairRTPStreamIDURI, sfu.PlayoutDelayURI} {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: ext}, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
	}
	for _, ext := range []string{sdp.SDESMidURI, extAudioLevel} {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: ext}, webrtc.RTPCodecTypeAudio); err != nil {
			return err
		}
	}
	return nil
}
