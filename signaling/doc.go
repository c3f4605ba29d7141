// Package signaling is Sanke's websocket signaling endpoint. It speaks LiveKit's client
// protocol so that the unmodified LiveKit SDKs connect to Sanke.
//
// A client opens GET /rtc with an access token (access_token query parameter or an
// "Authorization: Bearer" header) and query parameters describing itself. The handler
// verifies the token and its grants before upgrading the connection, so that refusals reach
// the SDK as HTTP statuses, then hands the verified rooms.JoinRequest and a rooms.Sink to a
// rooms.Joiner (the room layer).
// From then on, binary protobuf (or protojson text) livekit.SignalRequest messages from the
// client are rate limited, size limited and passed in order to the room's Session; pings are
// answered here. Messages from the room travel through the Sink's bounded write queue.
//
// GET /rtc/validate runs the same checks without joining; the SDKs call it after a failed
// connection attempt to learn why.
//
// Signaling knows nothing of WebRTC or of the room layer: it meets the rooms only through the
// contract in internal/rooms, whose sentinel errors it maps to HTTP statuses and leaves (see
// RejectionFor).
package signaling
