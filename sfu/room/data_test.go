package room_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	lksdk "github.com/livekit/server-sdk-go/v2"

	tc "github.com/sanke-edu/sanke/test/testclient"
)

// Bounds of the data queued toward one participant (room/data.go).
const (
	maxLossyBuffered    = 128 << 10
	maxReliableBuffered = 4 << 20
	maxDataPacket       = 64 << 10
)

// TestDataToBlockedReceiverBounded sends data to a participant that never reads its data
// channels (red team t12: 220 MB sent to such a receiver took the server from 151 to 569
// MB): the server queues at most maxReliableBuffered reliable and maxLossyBuffered lossy
// bytes toward it (each plus one packet), drops the rest and counts what it dropped.
func TestDataToBlockedReceiverBounded(t *testing.T) {
	srv, rooms := startServer(t, nil)
	const roomName = "data"
	block := make(chan struct{})
	var got atomic.Int32
	tc.Join(t, srv.Target, roomName, "reader", &tc.JoinOptions{NoAutoSubscribe: true, Callback: &lksdk.RoomCallback{
		ParticipantCallback: lksdk.ParticipantCallback{OnDataPacket: func(lksdk.DataPacket, lksdk.DataReceiveParams) {
			got.Add(1)
			<-block // the reader's data channel is never read again
		}},
	}})
	t.Cleanup(func() { close(block) }) // before the reader disconnects
	writer := tc.Join(t, srv.Target, roomName, "writer", &tc.JoinOptions{NoAutoSubscribe: true})
	payload := make([]byte, 60000)
	publish := func(reliable bool) {
		t.Helper()
		if err := writer.Room.LocalParticipant.PublishDataPacket(lksdk.UserData(payload), lksdk.WithDataPublishReliable(reliable),
			lksdk.WithDataPublishDestination([]string{"reader"})); err != nil {
			t.Fatalf("publish data: %v", err)
		}
	}
	tc.Eventually(t, wait, "the reader gets a first packet", func() (bool, string) {
		publish(true)
		return got.Load() > 0, "nothing received"
	})

	// Keep sending until the server dropped 100 packets, noting the most it ever queued.
	bound := uint64(maxReliableBuffered + maxLossyBuffered + 2*maxDataPacket)
	sent := 0
	var most, dropped uint64
	tc.Eventually(t, 2*wait, "the server drops data for the reader", func() (bool, string) {
		for range 20 {
			publish(sent%4 != 0) // a quarter lossy
			sent++
		}
		ps := participantStats(t, rooms, roomName, "reader")
		buffered := ps.DataBuffered
		dropped = ps.DataDropped
		most = max(most, buffered)
		return dropped >= 100 || most > bound, fmt.Sprintf("%d packets sent, %d bytes queued, %d dropped", sent, buffered, dropped)
	})
	t.Logf("%d packets of %d bytes sent: at most %d bytes queued for the reader, %d packets dropped", sent, len(payload), most, dropped)
	if most > bound {
		t.Errorf("%d bytes queued for a reader that never reads, over the bound of %d", most, bound)
	}
}
