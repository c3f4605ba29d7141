package sfu

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// loopbackAPI returns a pion API that only uses 127.0.0.1. With
// interceptors it behaves like a browser (NACK, reports, TWCC); without, like
// Sanke's subscriber side.
func loopbackAPI(t *testing.T, interceptors bool) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if interceptors {
		if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
			t.Fatal(err)
		}
	}
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

// newPC returns a PeerConnection closed at the end of the test.
func newPC(t *testing.T, api *webrtc.API) *webrtc.PeerConnection {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

// negotiate runs a complete offer/answer between two local connections.
func negotiate(t *testing.T, offerer, answerer *webrtc.PeerConnection) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	offer, err := offerer.CreateOffer(nil)
	must(err)
	gathered := webrtc.GatheringCompletePromise(offerer)
	must(offerer.SetLocalDescription(offer))
	<-gathered
	must(answerer.SetRemoteDescription(*offerer.LocalDescription()))
	answer, err := answerer.CreateAnswer(nil)
	must(err)
	gathered = webrtc.GatheringCompletePromise(answerer)
	must(answerer.SetLocalDescription(answer))
	<-gathered
	must(offerer.SetRemoteDescription(*answerer.LocalDescription()))
}

// TestEndToEnd sends VP8 from a publisher through a Receiver and a
// DownTrack to a subscriber, over real PeerConnections on loopback:
// publisher -> server (Receiver) ; server (DownTrack) -> subscriber.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("needs network on loopback")
	}
	browser := loopbackAPI(t, true)
	server := loopbackAPI(t, false)

	// Publisher: a static RTP track fed by hand, answering PLIs with a
	// keyframe.
	pub := newPC(t, browser)
	local, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "cam", "pub")
	if err != nil {
		t.Fatal(err)
	}
	pubSender, err := pub.AddTrack(local)
	if err != nil {
		t.Fatal(err)
	}
	pliSeen := make(chan struct{}, 1)
	go func() {
		for {
			pkts, _, err := pubSender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if _, ok := p.(*rtcp.PictureLossIndication); ok {
					select {
					case pliSeen <- struct{}{}:
					default:
					}
				}
			}
		}
	}()

	// Server, publisher side: a Receiver per incoming track.
	in := newPC(t, loopbackAPI(t, true))
	receivers := make(chan *Receiver, 1)
	in.OnTrack(func(track *webrtc.TrackRemote, rr *webrtc.RTPReceiver) {
		r := NewReceiver(ReceiverParams{
			TrackID:   "TR_cam",
			Kind:      track.Kind(),
			Codec:     track.Codec(),
			WriteRTCP: in.WriteRTCP,
		})
		r.AddLayer(track)
		r.StartRTCP(rr, track)
		receivers <- r
	})
	negotiate(t, pub, in)

	// Publish: 100 packets per second, a keyframe every 50 and after PLIs.
	var mu sync.Mutex
	sent := map[uint16][]byte{} // packet number -> payload
	var skip atomic.Bool        // skip one sequence number: a loss
	seq := uint16(7000)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		key := true
		for i := uint16(0); ; i++ {
			select {
			case <-stop:
				return
			case <-pliSeen:
				key = true
				<-tick.C
			case <-tick.C:
			}
			// The last two bytes number the packet: the SFU may rewrite the descriptor's
			// picture id (it continues its own numbering after a restart) but never the rest.
			payload := append(vp8Payload(true, i&0x7fff, 0, 0, key || i%50 == 0), byte(i>>8), byte(i))
			key = false
			mu.Lock()
			sent[i] = payload
			mu.Unlock()
			if skip.Swap(false) {
				seq++
			}
			seq++
			h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: 1000 + uint32(i)*900, Marker: true}
			_ = local.WriteRTP(&rtp.Packet{Header: h, Payload: payload})
		}
	}()
	var r *Receiver
	select {
	case r = <-receivers:
	case <-time.After(10 * time.Second):
		t.Fatal("no track at the server")
	}
	defer r.Close()

	// Server, subscriber side: a DownTrack on a connection without
	// interceptors, as the room package sets it up.
	out := newPC(t, server)
	d, err := NewDownTrack(DownTrackParams{Receiver: r, StreamID: "PA_pub|TR_cam", SubscriberID: "PA_sub", WriteRTCP: out.WriteRTCP})
	if err != nil {
		t.Fatal(err)
	}
	sender, err := out.AddTrack(d)
	if err != nil {
		t.Fatal(err)
	}
	d.StartRTCP(sender)
	r.AddDownTrack(d)

	// Subscriber: read RTP and watch for sender reports.
	sub := newPC(t, browser)
	type got struct {
		track *webrtc.TrackRemote
		pkt   *rtp.Packet
	}
	packets := make(chan got, 1000)
	srs := make(chan *rtcp.SenderReport, 10)
	sub.OnTrack(func(track *webrtc.TrackRemote, rr *webrtc.RTPReceiver) {
		go func() {
			for {
				pkts, _, err := rr.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					if sr, ok := p.(*rtcp.SenderReport); ok {
						select {
						case srs <- sr:
						default:
						}
					}
				}
			}
		}()
		for {
			p, _, err := track.ReadRTP()
			if err != nil {
				return
			}
			packets <- got{track, p}
		}
	})
	negotiate(t, out, sub)

	// vp8DescLen is the descriptor vp8Payload writes (X, I/L/T/K, 15-bit picture id, TL0,
	// TID/KEYIDX); the SFU may rewrite it, the bytes after it never.
	const vp8DescLen = 6
	var first, prev *rtp.Packet
	var prevDesc *vp8Descriptor
	for n := 0; n < 40; n++ {
		var g got
		select {
		case g = <-packets:
		case <-time.After(10 * time.Second):
			t.Fatalf("subscriber got %d packets, want 40", n)
		}
		p := g.pkt
		if first == nil {
			first = p
			if g.track.StreamID() != "PA_pub|TR_cam" || g.track.ID() != "TR_cam" {
				t.Errorf("msid = %q %q", g.track.StreamID(), g.track.ID())
			}
			if g.track.Codec().MimeType != webrtc.MimeTypeVP8 {
				t.Errorf("codec = %s", g.track.Codec().MimeType)
			}
			if !IsKeyframe(webrtc.MimeTypeVP8, p.Payload) {
				t.Error("first packet is not a keyframe")
			}
		}
		if p.SSRC != uint32(g.track.SSRC()) || p.PayloadType != uint8(g.track.PayloadType()) {
			t.Errorf("packet ssrc/pt %d/%d, track %d/%d", p.SSRC, p.PayloadType, g.track.SSRC(), g.track.PayloadType())
		}
		if prev != nil && p.SequenceNumber != prev.SequenceNumber+1 {
			t.Errorf("sequence jumps from %d to %d", prev.SequenceNumber, p.SequenceNumber)
		}
		desc, ok := parseVP8Descriptor(p.Payload)
		if !ok || len(p.Payload) < vp8DescLen+2 {
			t.Fatalf("packet %d: bad VP8 payload %x", n, p.Payload)
		}
		num := uint16(p.Payload[len(p.Payload)-2])<<8 | uint16(p.Payload[len(p.Payload)-1])
		mu.Lock()
		want := sent[num]
		mu.Unlock()
		if len(want) < vp8DescLen || !bytes.Equal(p.Payload[vp8DescLen:], want[vp8DescLen:]) {
			t.Errorf("payload of packet %d differs from what was sent", num)
		}
		if prevDesc != nil && desc.pictureID != (prevDesc.pictureID+1)&0x7fff {
			t.Errorf("picture id jumps from %d to %d", prevDesc.pictureID, desc.pictureID)
		}
		prev, prevDesc = p, &desc
	}
	if d.CurrentLayer() != LayerLow {
		t.Errorf("current layer %d", d.CurrentLayer())
	}

	select {
	case sr := <-srs:
		if sr.SSRC != first.SSRC {
			t.Errorf("sender report for SSRC %d, want %d", sr.SSRC, first.SSRC)
		}
	case <-time.After(5 * time.Second):
		t.Error("no sender report reached the subscriber")
	}
	if s := r.Stats(); s.Packets == 0 || len(s.Layers) != 1 {
		t.Errorf("receiver stats %+v", s)
	}

	// The publisher's sender reports reach the receiver through StartRTCP.
	waitFor(t, func() bool { return r.senderReport(LayerLow) != nil })

	// A packet lost upstream is a gap downstream: the subscriber NACKs it,
	// and the down track finds it was never sent.
	skip.Store(true)
	waitFor(t, func() bool { s := d.Stats(); return s.NACKs > 0 && s.NACKMisses > 0 })
	// pion's negotiated codec carries the NACK feedback both sides offered, so the down
	// track keeps its record of sent packets for retransmissions.
	d.mu.Lock()
	ring := d.sent
	d.mu.Unlock()
	if ring == nil {
		t.Error("the down track saw no negotiated NACK and keeps no record for retransmissions")
	}
}
