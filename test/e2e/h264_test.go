package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"

	tc "github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// TestH264 forwards an H.264 (constrained baseline, from ffmpeg) track: the subscriber gets
// H.264, starting with keyframes, and packets keep flowing without sequence gaps.
func TestH264(t *testing.T) {
	files := testmedia.Get(t)
	srv := startServer(t)
	target := srv.Target()
	room := roomName(t, "h264")
	alice := tc.Join(t, target, room, "alice", nil)
	pub, err := tc.PublishH264(alice.Room, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	bob := tc.Join(t, target, room, "bob", nil)
	video := bob.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeVideo)
	if got := video.Snapshot().TrackSID; got != pub.SID() {
		t.Fatalf("bob receives track %s, want %s", got, pub.SID())
	}
	tc.Eventually(t, mediaWait, "H.264 packets with a keyframe reach bob", func() (bool, string) {
		s := video.Snapshot()
		return strings.EqualFold(s.MimeType, webrtc.MimeTypeH264) && s.Keyframes > 0 && s.Packets > 200,
			fmt.Sprintf("mime %s, %d packets, %d keyframes", s.MimeType, s.Packets, s.Keyframes)
	})
	if s := video.Snapshot(); s.Gaps != 0 || s.TimestampBackwards != 0 {
		t.Errorf("H.264 stream not continuous on loopback: %s", s)
	}
}
