package recorder

import (
	"testing"

	"github.com/livekit/protocol/auth"
)

func TestCanRecord(t *testing.T) {
	tests := []struct {
		name  string
		grant auth.VideoGrant
		want  bool
	}{
		{"roomRecord for the room", auth.VideoGrant{RoomRecord: true, Room: "class-1"}, true},
		{"roomRecord for all rooms", auth.VideoGrant{RoomRecord: true}, true},
		{"roomRecord for another room", auth.VideoGrant{RoomRecord: true, Room: "class-2"}, false},
		{"teacher: roomAdmin of the room", auth.VideoGrant{RoomAdmin: true, Room: "class-1"}, true},
		{"roomAdmin of another room", auth.VideoGrant{RoomAdmin: true, Room: "class-2"}, false},
		{"roomAdmin without a room", auth.VideoGrant{RoomAdmin: true}, false},
		{"a participant", auth.VideoGrant{RoomJoin: true, Room: "class-1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &auth.ClaimGrants{Video: &tt.grant}
			if got := canRecord(g, "class-1"); got != tt.want {
				t.Errorf("canRecord = %v, want %v", got, tt.want)
			}
		})
	}
}
