package signaling

import "github.com/livekit/protocol/livekit"

// LeaveResponse builds the server message telling a client to leave for reason. action says
// what the client does next: DISCONNECT (stay disconnected), RESUME (resume the session with
// reconnect=1) or RECONNECT (join afresh). CanReconnect, which clients older than protocol 13
// read instead of Action, is set for RECONNECT.
func LeaveResponse(reason livekit.DisconnectReason, action livekit.LeaveRequest_Action) *livekit.SignalResponse {
	return &livekit.SignalResponse{
		Message: &livekit.SignalResponse_Leave{
			Leave: &livekit.LeaveRequest{
				Reason:       reason,
				Action:       action,
				CanReconnect: action == livekit.LeaveRequest_RECONNECT,
			},
		},
	}
}

// pongResponse answers a legacy ping, echoing its timestamp.
func pongResponse(ts int64) *livekit.SignalResponse {
	return &livekit.SignalResponse{Message: &livekit.SignalResponse_Pong{Pong: ts}}
}

// pongRespResponse answers a ping_req: the client's timestamp and the server's, in ms.
func pongRespResponse(pingTS, nowMS int64) *livekit.SignalResponse {
	return &livekit.SignalResponse{
		Message: &livekit.SignalResponse_PongResp{
			PongResp: &livekit.Pong{LastPingTimestamp: pingTS, Timestamp: nowMS},
		},
	}
}
