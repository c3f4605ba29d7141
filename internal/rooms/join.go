package rooms

import (
	"context"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
)

// JoinRequest is a verified join: the token's signature, expiry and grants have been checked
// (Grants.Video.RoomJoin is true and Grants.Video.Room == RoomName, non-empty; Identity is
// non-empty).
type JoinRequest struct {
	// APIKey is the key the token was signed with.
	APIKey string
	// Grants are the token's verified grants.
	Grants *auth.ClaimGrants
	// RoomName is the room to join (from the token's video grant).
	RoomName string
	// Identity is the participant identity (the token's subject).
	Identity string
	// AutoSubscribe subscribes the participant to every track (query auto_subscribe,
	// default true).
	AutoSubscribe bool
	// AdaptiveStream means the client adapts subscribed video quality to its rendering size.
	AdaptiveStream bool
	// Reconnect is set when the client resumes an existing session (query reconnect=1).
	Reconnect bool
	// ReconnectReason is why the client resumes.
	ReconnectReason livekit.ReconnectReason
	// ParticipantSID is the sid of the session being resumed ("sid" query parameter; only set
	// when Reconnect is).
	ParticipantSID string
	// ClientInfo describes the client SDK, its platform and its address.
	ClientInfo *livekit.ClientInfo

	// TokenExpiresAt is when the token expires (zero if it carries no expiry).
	TokenExpiresAt time.Time
	// Host is the host (and port) the client reached the server at: the request's Host, or
	// X-Forwarded-Host behind a trusted proxy. Addresses handed back to the client, such as
	// the TURN relay's, use it.
	Host string
	// Attributes are participant attributes requested by the client ("attributes" query
	// parameter). They are only accepted when the token grants canUpdateOwnMetadata; the room
	// merges them over Grants.Attributes. Nil when absent.
	Attributes map[string]string
	// ProtoJoinRequest is the client's livekit.JoinRequest in single PeerConnection mode
	// (/rtc/v1, "join_request" query parameter); nil on /rtc. When set, the fields above that
	// it carries (auto subscribe, adaptive stream, reconnect, client info, attributes) have
	// been copied from it.
	ProtoJoinRequest *livekit.JoinRequest
}

// Sink carries server messages to one client. Send never blocks (bounded queue; a client that
// cannot keep up is disconnected). Safe for concurrent use.
type Sink interface {
	// Send queues msg for the client. It returns an error when msg was not queued: the
	// connection is closing, or the client could not keep up and is being dropped.
	Send(msg *livekit.SignalResponse) error
	// Close closes the connection after flushing the messages already queued (e.g. a final
	// leave). It does not block.
	Close()
}

// Session is the room-side half of one signaling connection.
type Session interface {
	// HandleRequest handles one client request. Requests arrive one at a time, in the order
	// the client sent them. A non-nil error closes the connection with the error's text as the
	// close reason.
	HandleRequest(req *livekit.SignalRequest) error
	// Close tells the room the connection is gone. It is called exactly once per session,
	// after the last HandleRequest has returned, whatever ended the connection (the client,
	// an error, or the room's own Sink.Close); reason says what did.
	Close(reason string)
}

// Joiner admits verified participants into rooms.
type Joiner interface {
	// Join adds the participant and sends the JoinResponse (or ReconnectResponse) through sink
	// before returning. ctx bounds the call and is cancelled when Join returns; it must not be
	// kept. A refusal is one of this package's errors, possibly wrapped (e.g. ErrRoomFull),
	// which the front end reports to the client.
	Join(ctx context.Context, req JoinRequest, sink Sink) (Session, error)
}

// JoinValidator is optionally implemented by a [Joiner] to refuse a join before the
// websocket upgrade (and on /rtc/validate), so that the client gets an HTTP status, e.g.
// 404 for ErrRoomNotFound when rooms are not auto-created. It must not change any state.
type JoinValidator interface {
	// ValidateJoin reports whether req would be admitted, with the error Join would return.
	ValidateJoin(ctx context.Context, req JoinRequest) error
}
