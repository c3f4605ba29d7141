package room_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/sfu"
	tc "github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// A Go publisher's Opus reaches a Go subscriber that registered RED as RED, with earlier
// frames (the starting distance; the primary alone is counted once its receiver reports
// showed no loss, which a loaded host may delay); a frame is the same in every packet that
// carries it.
func TestAudioREDEndToEnd(t *testing.T) {
	srv, _ := startServer(t, nil)
	files := testmedia.Get(t)
	pub := tc.Join(t, srv.Target, "audio-e2e", "teacher", nil)
	if _, err := tc.PublishOpus(pub.Room, files, nil); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	frames := map[uint32][]byte{} // every frame seen, primary or redundant, by timestamp
	var redPackets, withBlocks, alone int
	codecs := []livekit.Codec{{Mime: webrtc.MimeTypeOpus, FmtpLine: "minptime=10;useinbandfec=1"}, {Mime: sfu.MimeTypeRED, FmtpLine: "111/111"}}
	tc.Join(t, srv.Target, "audio-e2e", "pupil", &tc.JoinOptions{
		ConnectOptions: []lksdk.ConnectOption{lksdk.WithCodecs(codecs)},
		OnPacket: func(_ *tc.TrackStats, p *rtp.Packet) {
			var blocks [sfu.MaxREDBlocks]sfu.REDBlock
			n, err := sfu.ParseRED(p.Payload, blocks[:])
			mu.Lock()
			defer mu.Unlock()
			if err != nil || len(p.Payload) == 0 {
				return
			}
			redPackets++
			switch {
			case n > 1:
				withBlocks++
			case withBlocks > 0:
				alone++ // the distance came down
			}
			for _, b := range blocks[:n] {
				ts := p.Timestamp - uint32(b.TSOffset)
				if old, ok := frames[ts]; ok && string(old) != string(b.Data) {
					t.Errorf("frame of ts %d differs between packets", ts)
				}
				frames[ts] = append([]byte(nil), b.Data...)
			}
		},
	})
	tc.Eventually(t, wait, "RED with earlier frames", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return withBlocks >= 50, fmt.Sprintf("%d RED packets, %d with earlier frames, %d alone after", redPackets, withBlocks, alone)
	})
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d RED packets, %d with earlier frames, %d alone after; %d frames", redPackets, withBlocks, alone, len(frames))
	if len(frames) < redPackets-2 {
		t.Errorf("%d frames in %d RED packets", len(frames), redPackets)
	}
}
