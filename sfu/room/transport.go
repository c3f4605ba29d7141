package room

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"

	"github.com/sanke-edu/sanke/internal/rooms"
	"github.com/sanke-edu/sanke/sfu"
	"github.com/sanke-edu/sanke/sfu/bwe"
	"github.com/sanke-edu/sanke/sfu/srtpout"
)

// negotiationDebounce batches subscription changes that arrive together into one offer.
const negotiationDebounce = 20 * time.Millisecond

// Bounds of what a client's SDP and candidates can make a PeerConnection keep.
const (
	// maxCandidateLength bounds one trickled candidate (its JSON); real ones are ~200 bytes.
	maxCandidateLength = 2048
	// maxRemoteCandidates bounds the candidates a client trickles for one set of ICE
	// credentials (queued before its description or added to the ICE agent); an ICE
	// restart starts a new count. Clients gather a handful per network interface.
	maxRemoteCandidates = 128
	// maxMediaSections bounds the m-lines of a client's offer: every one becomes a
	// transceiver.
	maxMediaSections = 2 * maxListLength
	// maxTransceivers bounds the transceivers of one PeerConnection. pion keeps one for
	// every mid ever negotiated (and for every track sent), so offers that rename their
	// sections would add new ones each time.
	maxTransceivers = maxMediaSections
	// maxEarlySections bounds the media sections of the descriptions (offers and answers) a
	// PeerConnection applies before it first connects: pion keeps each of them, parsed,
	// until then (about 2 KB a section).
	maxEarlySections = 2 * maxMediaSections
	// offersPerSecond and offerBurst pace the offers a client makes on one PeerConnection;
	// faster ones wait their turn (each is parsed and answered in full).
	offersPerSecond = 5
	offerBurst      = 10
)

// transport is one PeerConnection of a participant and its offer/answer state. The
// publisher transport answers the client's offers; the subscriber transport makes offers.
type transport struct {
	target  livekit.SignalTarget
	media   *MediaAPI
	pc      *webrtc.PeerConnection
	out     *srtpout.Sender // direct sender of forwarded media, nil if pion sends it all
	reports *sfu.Reporter   // sender reports of the down tracks this PeerConnection carries
	alloc   *sfu.Allocator  // fits their video layers to the downlink; nil when not enabled
	logger  *slog.Logger
	created time.Time   // for the timeline of the first connection (debug logs)
	dtlsUp  atomic.Bool // DTLS connected: media written now reaches the client

	// sendOffer and sendCandidate deliver SDP and candidates to the client.
	sendOffer     func(webrtc.SessionDescription, uint32)
	sendCandidate func(webrtc.ICECandidateInit, livekit.SignalTarget)
	// sendRequirement asks the client for an offer with that many more receive sections, in
	// single PeerConnection mode, where the server never offers.
	sendRequirement func(audios, videos uint32)
	// prepareOffer, when set, edits a client's offer before it is applied; prepareAnswer
	// adjusts the transceivers the offer made (codec preferences) before they are answered.
	prepareOffer  func(offer webrtc.SessionDescription) webrtc.SessionDescription
	prepareAnswer func(pc *webrtc.PeerConnection, offer webrtc.SessionDescription)

	// offers paces the client's offers; ctx ends when the transport closes.
	offers *rate.Limiter
	ctx    context.Context
	cancel context.CancelFunc

	mu                sync.Mutex
	pendingCandidates []webrtc.ICECandidateInit
	candidates        int    // trickled for the remote ICE credentials below
	candidatesUfrag   string // the remote ufrag they were counted for
	awaitingAnswer    bool
	renegotiate       bool
	restartICE        bool
	debounce          *time.Timer
	requireTimer      *time.Timer
	offerID           uint32
	closed            bool
	srtpCipher        string // negotiated SRTP profile, set by noteConnected
	connected         bool   // the PeerConnection has connected once
	earlySections     int    // media sections of the descriptions applied before that
	avoidUDP          bool   // the client's direct UDP candidates are ignored (see preferTCPAfterUDPFailure)
}

func newTransport(media *MediaAPI, opts PeerOptions, target livekit.SignalTarget, iceServers []webrtc.ICEServer, logger *slog.Logger,
	sendCandidate func(webrtc.ICECandidateInit, livekit.SignalTarget)) (*transport, error) {
	t := &transport{target: target, media: media, logger: logger.With("pc", target.String()), created: time.Now(),
		sendCandidate: sendCandidate, offers: rate.NewLimiter(offersPerSecond, offerBurst)}
	onDTLS := opts.OnDTLSConnected
	opts.OnDTLSConnected = func() {
		t.dtlsUp.Store(true)
		t.timeline("dtls connected")
		if onDTLS != nil {
			onDTLS()
		}
	}
	if t.logger.Enabled(context.Background(), slog.LevelDebug) {
		opts.OnSelectedPair = func(pair *webrtc.ICECandidatePair) { t.timeline("selected pair", "pair", pair.String()) }
	}
	var cc *bwe.Controller
	if media.control {
		// The downlink estimate from the subscriber's TWCC feedback (or REMB), learned anew
		// on each network path.
		cc = bwe.NewController(bwe.Config{})
		then := opts.OnPathChange
		opts.OnPathChange = func() {
			cc.Reset()
			if then != nil {
				then()
			}
		}
	}
	pc, out, err := media.NewPeerConnection(webrtc.Configuration{
		ICEServers:    iceServers,
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
		SDPSemantics:  webrtc.SDPSemanticsUnifiedPlan,
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	media.peers.Add(1)
	t.pc, t.out = pc, out
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.reports = sfu.NewReporter(pc.WriteRTCP, t.logger)
	if cc != nil {
		t.alloc = sfu.NewAllocator(t.logger)
		// The direct sender numbers the packets in the estimator's history, down tracks on
		// pion's path too.
		t.alloc.UseEstimator(cc)
		if out != nil {
			out.SetRecorder(cc.History())
		}
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		t.timeline("candidate sent", "candidate", c)
		t.sendCandidate(c.ToJSON(), t.target)
	})
	return t, nil
}

// timeline logs a step of the connection's setup at debug level, with the milliseconds since
// the transport was made: join, offer, answer, candidates sent and received, selected pair,
// DTLS (scripts/ttff-bench.sh --timeline reads them to find where a subscriber's time to
// first frame goes).
func (t *transport) timeline(step string, args ...any) {
	if !t.logger.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	t.logger.Debug("ttff: "+step, append(args, "ms", time.Since(t.created).Milliseconds())...)
}

// parseTrickle decodes a LiveKit trickle request's candidate (JSON of RTCIceCandidateInit).
func parseTrickle(tr *livekit.TrickleRequest) (webrtc.ICECandidateInit, error) {
	var c webrtc.ICECandidateInit
	if len(tr.CandidateInit) > maxCandidateLength {
		return c, fmt.Errorf("trickle candidate is %d bytes, over the limit of %d", len(tr.CandidateInit), maxCandidateLength)
	}
	if err := json.Unmarshal([]byte(tr.CandidateInit), &c); err != nil {
		return c, fmt.Errorf("bad trickle candidate: %w", err)
	}
	return c, nil
}

// AddCandidate adds a remote ICE candidate, queueing it until a remote description is set.
// Beyond maxRemoteCandidates for the same remote ICE credentials it refuses the candidate
// with an error wrapping rooms.ErrLimitExceeded.
func (t *transport) AddCandidate(c webrtc.ICECandidateInit) error {
	t.mu.Lock()
	ufrag := ""
	if params, err := t.pc.SCTP().Transport().ICETransport().GetRemoteParameters(); err == nil {
		ufrag = params.UsernameFragment
	}
	if ufrag != t.candidatesUfrag {
		t.candidates, t.candidatesUfrag = 0, ufrag
	}
	if t.candidates >= maxRemoteCandidates {
		t.mu.Unlock()
		return fmt.Errorf("%d candidates already for these ICE credentials, the limit: %w", maxRemoteCandidates, rooms.ErrLimitExceeded)
	}
	t.candidates++
	t.timeline("candidate received", "candidate", c.Candidate)
	if t.avoidUDP && !usableAfterUDPFailure(c) {
		t.mu.Unlock()
		return nil
	}
	if t.pc.RemoteDescription() == nil {
		t.pendingCandidates = append(t.pendingCandidates, c)
		t.mu.Unlock()
		return nil
	}
	t.mu.Unlock()
	return t.pc.AddICECandidate(c)
}

// flushCandidates adds the candidates that arrived before the remote description. Caller holds mu.
func (t *transport) flushCandidatesLocked() {
	for _, c := range t.pendingCandidates {
		if err := t.pc.AddICECandidate(c); err != nil {
			t.logger.Debug("add queued candidate", "err", err)
		}
	}
	t.pendingCandidates = nil
}

// HandleOffer answers a client offer (publisher side, or a single PeerConnection). Offers
// beyond offersPerSecond wait their turn. An offer is refused, changing nothing, with an
// error wrapping rooms.ErrLimitExceeded, when it has more than maxMediaSections sections, would
// take the PeerConnection beyond maxTransceivers transceivers, or, before it first
// connected, beyond maxEarlySections sections applied.
func (t *transport) HandleOffer(sd webrtc.SessionDescription) (webrtc.SessionDescription, error) {
	if err := t.offers.Wait(t.ctx); err != nil {
		return webrtc.SessionDescription{}, errors.New("transport closed")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return webrtc.SessionDescription{}, errors.New("transport closed")
	}
	mids, sections := mediaSections(sd.SDP)
	t.timeline("offer received", "sections", sections, "recvonly", strings.Count(sd.SDP, "a=recvonly"))
	if sections > maxMediaSections {
		return webrtc.SessionDescription{}, fmt.Errorf("offer has %d media sections, over the limit of %d: %w", sections, maxMediaSections, rooms.ErrLimitExceeded)
	}
	if n := t.transceiversAfter(mids); n > maxTransceivers {
		return webrtc.SessionDescription{}, fmt.Errorf("offer would make the PeerConnection hold %d transceivers (media sections are never removed), over the limit of %d: %w",
			n, maxTransceivers, rooms.ErrLimitExceeded)
	}
	if err := t.spendEarlyLocked(sections); err != nil {
		return webrtc.SessionDescription{}, err
	}
	if t.prepareOffer != nil {
		sd = t.prepareOffer(sd)
	}
	if err := t.pc.SetRemoteDescription(sd); err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("set remote offer: %w", err)
	}
	t.flushCandidatesLocked()
	if t.prepareAnswer != nil {
		t.prepareAnswer(t.pc, sd)
	}
	answer, err := t.pc.CreateAnswer(nil)
	if err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("create answer: %w", err)
	}
	if err := t.pc.SetLocalDescription(answer); err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("set local answer: %w", err)
	}
	t.timeline("answer made", "transceivers", len(t.pc.GetTransceivers()))
	return *t.pc.LocalDescription(), nil
}

// mediaSections returns the mids of an SDP's audio and video sections (those that become
// transceivers) and how many sections it has in all.
func mediaSections(sdp string) (mids []string, sections int) {
	media := false
	for line := range strings.Lines(sdp) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "m="):
			sections++
			media = strings.HasPrefix(line, "m=audio ") || strings.HasPrefix(line, "m=video ")
		case media && strings.HasPrefix(line, "a=mid:"):
			mids = append(mids, strings.TrimPrefix(line, "a=mid:"))
			media = false
		}
	}
	return mids, sections
}

// transceiversAfter returns how many transceivers the PeerConnection would hold once it
// applied an offer with these audio and video mids: a mid it does not know makes a new one,
// unless a transceiver without a mid yet (a track we send, waiting for a section) takes it.
// Caller holds t.mu.
func (t *transport) transceiversAfter(mids []string) int {
	trs := t.pc.GetTransceivers()
	known := make(map[string]bool, len(trs))
	free := 0
	for _, tr := range trs {
		if mid := tr.Mid(); mid != "" {
			known[mid] = true
		} else {
			free++
		}
	}
	added := 0
	for _, mid := range mids {
		if !known[mid] {
			known[mid] = true
			added++
		}
	}
	return len(trs) + max(added-free, 0)
}

// spendEarlyLocked accounts for a description of that many sections about to be applied:
// before the PeerConnection first connected, pion keeps every one. It fails, wrapping
// rooms.ErrLimitExceeded, beyond maxEarlySections. Caller holds t.mu.
func (t *transport) spendEarlyLocked(sections int) error {
	if t.connected {
		return nil
	}
	if t.earlySections+max(sections, 1) > maxEarlySections {
		return fmt.Errorf("%d media sections negotiated before the PeerConnection connected, the limit is %d: connect first: %w",
			t.earlySections, maxEarlySections, rooms.ErrLimitExceeded)
	}
	t.earlySections += max(sections, 1)
	return nil
}

// HandleAnswer applies the client's answer to our last offer (subscriber side), and starts the
// next negotiation if changes arrived meanwhile.
func (t *transport) HandleAnswer(sd webrtc.SessionDescription) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	if t.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		t.logger.Debug("ignoring answer in state", "state", t.pc.SignalingState().String())
		return nil
	}
	if _, sections := mediaSections(sd.SDP); sections > maxMediaSections {
		return fmt.Errorf("answer has %d media sections, over the limit of %d: %w", sections, maxMediaSections, rooms.ErrLimitExceeded)
	} else if err := t.spendEarlyLocked(sections); err != nil {
		return err
	}
	if err := t.pc.SetRemoteDescription(sd); err != nil {
		return fmt.Errorf("set remote answer: %w", err)
	}
	t.flushCandidatesLocked()
	t.awaitingAnswer = false
	t.timeline("answer applied")
	if t.renegotiate {
		t.renegotiate = false
		t.scheduleLocked()
	}
	return nil
}

// Negotiate asks for a new offer to the client soon (debounced); iceRestart forces new ICE
// credentials (used when a client resumes after a network change).
func (t *transport) Negotiate(iceRestart bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if iceRestart {
		t.restartICE = true
	}
	t.scheduleLocked()
}

// NegotiateNow offers at once instead of after the debounce, folding in a pending one: for
// the first offer of a join, whose contents (the data channels, the room's tracks) are all
// there already. Waiting would only delay the subscriber's first picture.
func (t *transport) NegotiateNow() {
	t.mu.Lock()
	if t.debounce != nil {
		if !t.debounce.Stop() {
			t.mu.Unlock()
			return // the timer fired: its offer is on its way
		}
		t.debounce = nil
	}
	t.mu.Unlock()
	t.offer()
}

func (t *transport) scheduleLocked() {
	if t.closed || t.debounce != nil {
		return
	}
	t.debounce = time.AfterFunc(negotiationDebounce, t.offer)
}

// offer creates and sends an offer unless one is outstanding, in which case it remembers to
// offer again once the answer arrives.
func (t *transport) offer() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.debounce = nil
	if t.closed {
		return
	}
	if t.awaitingAnswer && !t.restartICE {
		t.renegotiate = true
		return
	}
	if t.awaitingAnswer && t.restartICE && t.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
		// The old offer was lost with the old connection: roll it back and offer afresh.
		if err := t.pc.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}); err != nil {
			t.logger.Warn("rollback before ice restart", "err", err)
		}
	}
	opts := &webrtc.OfferOptions{ICERestart: t.restartICE}
	t.restartICE = false
	offer, err := t.pc.CreateOffer(opts)
	if err != nil {
		t.logger.Warn("create offer", "err", err)
		return
	}
	if err := t.pc.SetLocalDescription(offer); err != nil {
		t.logger.Warn("set local offer", "err", err)
		return
	}
	t.awaitingAnswer = true
	t.offerID++
	if t.sendOffer != nil {
		t.sendOffer(*t.pc.LocalDescription(), t.offerID)
	}
	t.timeline("offer sent", "id", t.offerID, "transceivers", len(t.pc.GetTransceivers()))
}

// RequestOffer asks the client (single PeerConnection mode) to offer again soon (debounced)
// if what we send is not what was last negotiated, with receive sections for the tracks that
// have none yet.
func (t *transport) RequestOffer() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.requireTimer != nil {
		return
	}
	t.requireTimer = time.AfterFunc(negotiationDebounce, func() {
		t.mu.Lock()
		t.requireTimer = nil
		// Under t.mu: an offer being answered is either done or not begun.
		audios, videos, needed := t.offerNeeded()
		closed := t.closed
		t.mu.Unlock()
		if !closed && needed {
			t.sendRequirement(audios, videos)
		}
	})
}

// offerNeeded reports whether the client must offer again for the media we send to match
// the last negotiation, and how many receive sections that offer must add: one for each
// sending transceiver without a mid. A transceiver with a mid needs the offer alone when its
// section was answered otherwise: a track added since on a section negotiated as receive-only
// (pion's AddTrack reuses those; only a new offer lets the answer send on it), or a track
// removed from a section negotiated as sending. Caller holds t.mu.
func (t *transport) offerNeeded() (audios, videos uint32, needed bool) {
	answered := sendingSections(t.pc.CurrentLocalDescription())
	for _, tr := range t.pc.GetTransceivers() {
		var track string
		if s := tr.Sender(); s != nil && s.Track() != nil {
			track = s.Track().ID()
		}
		mid := tr.Mid()
		switch {
		case mid == "" && track == "":
		case mid == "" && tr.Kind() == webrtc.RTPCodecTypeAudio:
			audios++
		case mid == "":
			videos++
		case answered[mid] != track:
			needed = true
		}
	}
	return audios, videos, needed || audios+videos > 0
}

// sendingSections maps the mid of each section a local description sends on to the track it
// sends (the id in its msid).
func sendingSections(desc *webrtc.SessionDescription) map[string]string {
	m := map[string]string{}
	if desc == nil {
		return m
	}
	parsed, err := desc.Unmarshal()
	if err != nil {
		return m
	}
	for _, md := range parsed.MediaDescriptions {
		mid, _ := md.Attribute(sdp.AttrKeyMID)
		_, sendonly := md.Attribute(sdp.AttrKeySendOnly)
		_, sendrecv := md.Attribute(sdp.AttrKeySendRecv)
		if mid == "" || !(sendonly || sendrecv) {
			continue
		}
		msid, _ := md.Attribute(sdp.AttrKeyMsid)
		if f := strings.Fields(msid); len(f) == 2 {
			m[mid] = f[1]
		}
	}
	return m
}

// midToTrackID maps the mid of every m-line we send on to its track id: livekit-client in
// single PeerConnection mode names incoming tracks with it, and replaces its map with each
// answer, so the map is always complete.
func (t *transport) midToTrackID() map[string]string {
	m := map[string]string{}
	for _, tr := range t.pc.GetTransceivers() {
		if tr.Mid() == "" || tr.Sender() == nil || tr.Sender().Track() == nil {
			continue
		}
		m[tr.Mid()] = tr.Sender().Track().ID()
	}
	return m
}

// noteConnected records the negotiated SRTP protection profile once the PeerConnection is
// connected. pion's GetStats is not safe while the connection closes, so it is read here,
// once, under t.mu (which Close takes too), and never again.
func (t *transport) noteConnected() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.connected = true
	if t.closed || t.srtpCipher != "" {
		return
	}
	for _, st := range t.pc.GetStats() {
		if ts, ok := st.(webrtc.TransportStats); ok && ts.SRTPCipher != "" {
			t.srtpCipher = ts.SRTPCipher
			return
		}
	}
}

// SRTPCipher returns the negotiated SRTP protection profile (e.g. "SRTP_AEAD_AES_128_GCM"),
// or "" before the PeerConnection connected.
func (t *transport) SRTPCipher() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.srtpCipher
}

// Close closes the PeerConnection. Later calls do nothing.
func (t *transport) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	t.cancel()
	if t.debounce != nil {
		t.debounce.Stop()
		t.debounce = nil
	}
	if t.requireTimer != nil {
		t.requireTimer.Stop()
		t.requireTimer = nil
	}
	t.mu.Unlock()
	t.reports.Close()
	if err := t.pc.Close(); err != nil {
		t.logger.Debug("close peer connection", "err", err)
	}
	t.media.peers.Add(-1)
}

// toProtoSD converts a pion session description to LiveKit's.
func toProtoSD(sd webrtc.SessionDescription, id uint32) *livekit.SessionDescription {
	return &livekit.SessionDescription{Type: sd.Type.String(), Sdp: sd.SDP, Id: id}
}

// fromProtoSD converts a LiveKit session description to pion's.
func fromProtoSD(sd *livekit.SessionDescription) (webrtc.SessionDescription, error) {
	if sd == nil {
		return webrtc.SessionDescription{}, errors.New("missing session description")
	}
	t := webrtc.NewSDPType(sd.Type)
	if t == webrtc.SDPTypeUnknown {
		return webrtc.SessionDescription{}, fmt.Errorf("unknown sdp type %q", sd.Type)
	}
	return webrtc.SessionDescription{Type: t, SDP: sd.Sdp}, nil
}
