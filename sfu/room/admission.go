package room

import (
	"context"
	"slices"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/internal/rooms"
)

// JoinPolicy decides what a new participant starts with, from the live state of whatever
// runs the room (the classroom service: who is called on, the class mode), rather than from
// its token alone: a token, refreshed tokens included, keeps what was true when it was
// signed, and must not bring back a permission withdrawn since.
type JoinPolicy interface {
	// AdmitParticipant is consulted for every new participant, never for a resumed one,
	// before it is added to room. grants are its verified token's (read them, do not change
	// them). It returns what to start with, nil to keep the token's, or an error to refuse
	// the join (reported to the client through signaling.RejectionFor). It must return
	// quickly and must not call back into the joining room's participant (it is not there
	// yet).
	AdmitParticipant(ctx context.Context, room, identity string, grants *auth.ClaimGrants) (*Admission, error)
}

// Admission is what a JoinPolicy decides for a joining participant.
type Admission struct {
	// Permission, when not nil, replaces the permission the token grants. Whether the
	// participant is hidden, the recorder or an agent still comes from the token.
	Permission *livekit.ParticipantPermission
	// Attributes are merged over the token's attributes; an empty value removes a key.
	Attributes map[string]string
}

// SetJoinPolicy makes the manager consult p for every new participant. Call it before
// serving.
func (m *Manager) SetJoinPolicy(p JoinPolicy) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.policy = p
}

// admit asks the join policy, if any, what a new participant starts with.
func (m *Manager) admit(ctx context.Context, req rooms.JoinRequest) (*Admission, error) {
	m.mu.Lock()
	policy := m.policy
	m.mu.Unlock()
	if policy == nil {
		return nil, nil
	}
	return policy.AdmitParticipant(ctx, req.RoomName, req.Identity, req.Grants)
}

// checkJoin refuses a join whose room name, identity, name, metadata or attributes are over
// the limits, or whose client asks for attributes reserved for the server (the token's own
// attributes, signed by the server or the API key holder, may carry them).
func (m *Manager) checkJoin(req rooms.JoinRequest) error {
	l := &m.cfg.Limits
	if err := checkLength("room name", req.RoomName, l.MaxRoomNameLength); err != nil {
		return err
	}
	if err := checkLength("participant identity", req.Identity, l.MaxIdentityLength); err != nil {
		return err
	}
	if err := refuseReserved(req.Attributes); err != nil {
		return err
	}
	if err := checkClientInfo(req.ClientInfo); err != nil {
		return err
	}
	g := req.Grants
	attrs := g.Attributes
	if permissionFromGrant(g.Video).CanUpdateMetadata {
		attrs = mergeAttributes(attrs, req.Attributes)
	}
	return l.checkParticipant(g.Name, g.Metadata, attrs)
}

// checkClientInfo bounds what a client says about itself (they are logged).
func checkClientInfo(ci *livekit.ClientInfo) error {
	for _, f := range []struct{ what, v string }{
		{"client sdk version", ci.GetVersion()}, {"client os", ci.GetOs()}, {"client os version", ci.GetOsVersion()},
		{"client device model", ci.GetDeviceModel()}, {"client browser", ci.GetBrowser()},
		{"client browser version", ci.GetBrowserVersion()}, {"client network", ci.GetNetwork()},
	} {
		if err := checkLength(f.what, f.v, maxIDLength); err != nil {
			return err
		}
	}
	if err := checkLength("client sdks", ci.GetOtherSdks(), maxListLength); err != nil {
		return err
	}
	return checkList("client capabilities", len(ci.GetCapabilities()))
}

// keptClientInfo is what a participant keeps of its client's description: what its
// ParticipantInfo and logs show.
func keptClientInfo(ci *livekit.ClientInfo) *livekit.ClientInfo {
	kept := &livekit.ClientInfo{Sdk: ci.GetSdk(), Version: ci.GetVersion(), Protocol: ci.GetProtocol(), ClientProtocol: ci.GetClientProtocol(),
		Browser: ci.GetBrowser(), BrowserVersion: ci.GetBrowserVersion()} // the browser decides the audio codecs
	for _, c := range ci.GetCapabilities() {
		if !slices.Contains(kept.Capabilities, c) {
			kept.Capabilities = append(kept.Capabilities, c)
		}
	}
	return kept
}
