// Package roomapi serves LiveKit's Twirp RoomService (the server API used by server-sdk-go's
// RoomServiceClient, livekit-server-sdk for Node, the livekit-cli, ...) on top of the
// rooms.Admin interface (internal/rooms), which the room layer implements.
//
// Every request must carry "Authorization: Bearer <JWT>", a LiveKit access token signed with
// one of the server's API keys. Grants are enforced like LiveKit does:
//
//   - CreateRoom, DeleteRoom: video.roomCreate
//   - ListRooms: video.roomList
//   - participant, track, data and metadata operations: video.roomAdmin, and video.room
//     equal to the request's room
//
// A missing or invalid token yields twirp.Unauthenticated, a missing grant
// twirp.PermissionDenied, a malformed request (e.g. an empty room name)
// twirp.InvalidArgument.
//
// Two rules go beyond LiveKit's grants:
//
//   - A caller whose token is a participant's (it grants roomJoin, as a teacher's does) sees
//     and acts on the participants its room shows, no more: hidden participants
//     (supervisors) and the recorder are not listed, and every method naming one answers
//     twirp.NotFound as for an identity nobody has. Server-side tokens (roomAdmin without
//     roomJoin) reach everyone.
//   - Attributes starting with rooms.ReservedAttributePrefix ("sanke.") are the server's:
//     UpdateParticipant refuses them with twirp.PermissionDenied, whatever the caller's
//     grants.
//
// Errors returned by rooms.Admin are the rooms package's sentinels, mapped to Twirp codes
// here (not found, resource exhausted, permission denied, unavailable, invalid argument);
// any other error is twirp.Internal, logged with its cause and answered without its text.
// roomapi never imports the room layer itself (sfu/room), only the contract:
//
//	svc := roomapi.NewService(manager, keys, logger)
//	mux.Handle(svc.PathPrefix(), svc.Handler()) // "/twirp/livekit.RoomService/"
package roomapi
