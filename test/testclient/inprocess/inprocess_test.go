package inprocess

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// TestInProcessPubSub (E2E, in-process server) publishes one VP8 layer and checks a
// subscriber receives it at its resolution without gaps.
func TestInProcessPubSub(t *testing.T) {
	srv := Start(t, nil)
	files := testmedia.Get(t)
	room := fmt.Sprintf("inproc-%d", time.Now().UnixNano())
	pub := testclient.Join(t, srv.Target, room, "pub", nil)
	layer := files.VP8[testmedia.Medium]
	if _, err := testclient.PublishVP8(pub.Room, layer, nil); err != nil {
		t.Fatal(err)
	}
	sub := testclient.Join(t, srv.Target, room, "sub", nil)
	v := sub.WaitForTrack(10*time.Second, "pub", webrtc.RTPCodecTypeVideo)
	testclient.Eventually(t, 10*time.Second, "640x360 frames", func() (bool, string) {
		s := v.Snapshot()
		return s.HasResolution(layer.Width, layer.Height) && s.Frames > 30 && s.Gaps == 0, s.String()
	})
}
