package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/test/prereq"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	tc "github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// TestGarbageMedia throws garbage at the media plane while alice publishes Opus and VP8 to a
// watcher, in three rounds:
//  1. random datagrams from fresh UDP sockets to the server's UDP port (127.0.0.1): empty,
//     tiny, 64 KiB, and ones that look like STUN, DTLS, RTP and RTCP (RFC 7983 first bytes)
//     with random contents;
//  2. the same kinds of datagrams spoofed, with a raw socket, from the very addresses of the
//     watcher's and alice's established ICE sessions, so they reach the ICE/DTLS/SRTP stack of
//     live sessions (skipped when the test cannot open a raw socket);
//  3. a participant, mallory, who publishes a VP8 and an Opus track made of malformed RTP
//     (random payloads, truncated VP8 descriptors, padding-only and empty packets, wild
//     sequence numbers and timestamps, random header extensions) and sends malformed RTCP
//     (undecodable compound packets, bogus reports) on both PeerConnections, plus floods of
//     PLI, FIR and NACK for the tracks it receives from alice.
//
// After each round the watcher still receives alice's audio and video, a new participant
// can join and the server is healthy; the watcher's media never stalls for more than 2 s; the
// PLI/FIR flood reaches alice only as rate-limited keyframe requests.
func TestGarbageMedia(t *testing.T) {
	srv := startServer(t)
	target := srv.Target()
	files := testmedia.Get(t)
	room := roomName(t, "garbage")
	rng := rand.New(rand.NewPCG(2, 7))

	alice := tc.Join(t, target, room, "alice", nil)
	if _, err := tc.PublishOpus(alice.Room, files, nil); err != nil {
		t.Fatal(err)
	}
	aliceVideo, err := tc.PublishVP8(alice.Room, files.VP8[testmedia.Low], nil)
	if err != nil {
		t.Fatal(err)
	}
	watcher := tc.Join(t, target, room, "watcher", nil)
	wAudio := watcher.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeAudio)
	wVideo := watcher.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeVideo)
	expectFlow(t, wAudio, 25, "watcher audio")
	expectFlow(t, wVideo, 15, "watcher video")

	monitor := startStallMonitor(map[string]*tc.TrackStats{"audio": wAudio, "video": wVideo})
	probes := 0
	unaffected := func(t *testing.T) {
		t.Helper()
		expectFlow(t, wAudio, 25, "watcher audio")
		expectFlow(t, wVideo, 15, "watcher video")
		serverAlive(t, srv)
		probes++
		probeJoin(t, target, room, fmt.Sprintf("probe-%d", probes))
	}
	server := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: srv.UDPPort}

	t.Run("random datagrams", func(t *testing.T) {
		var socks []*net.UDPConn
		for range 8 {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Close() }()
			socks = append(socks, c)
		}
		sent := 0
		for i := range 3000 {
			if _, err := socks[i%len(socks)].WriteToUDP(garbageDatagram(rng, i), server); err == nil {
				sent++
			}
			if i%200 == 199 {
				time.Sleep(5 * time.Millisecond) // let the loopback drain: garbage, not a bandwidth test
			}
		}
		t.Logf("sent %d random datagrams to %s", sent, server)
		unaffected(t)
	})

	t.Run("spoofed datagrams into live sessions", func(t *testing.T) {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
		if err != nil {
			prereq.Skip(t, "cannot open a raw socket to spoof source addresses (%v); needs CAP_NET_RAW", err)
		}
		defer func() { _ = syscall.Close(fd) }()
		for _, v := range []struct {
			who string
			pc  *webrtc.PeerConnection
		}{
			{"watcher (subscriber connection)", watcher.Room.LocalParticipant.GetSubscriberPeerConnection()},
			{"alice (publisher connection)", alice.Room.LocalParticipant.GetPublisherPeerConnection()},
		} {
			local, remote, err := selectedPair(v.pc)
			if err != nil {
				t.Fatalf("%s: %v", v.who, err)
			}
			if remote.Port != srv.UDPPort {
				t.Fatalf("%s: session with %v, not the server's UDP port %d", v.who, remote, srv.UDPPort)
			}
			checkSpoofing(t, fd, local.IP)
			sent := 0
			for i := range 2000 {
				if err := sendSpoofed(fd, local, remote, garbageDatagram(rng, i)); err != nil {
					t.Fatalf("%s: spoofed datagram %d: %v", v.who, i, err)
				}
				sent++
				if i%200 == 199 {
					time.Sleep(5 * time.Millisecond)
				}
			}
			t.Logf("%s: sent %d datagrams spoofed from %v to %v", v.who, sent, local, remote)
		}
		unaffected(t)
		// The sessions that were targeted are still the same, working ones.
		expectFlow(t, wVideo, 30, "watcher video after spoofing")
		if s := alice.Room.ConnectionState(); s != lksdk.ConnectionStateConnected {
			t.Errorf("alice's connection state %v after spoofing", s)
		}
	})

	t.Run("malformed RTP and RTCP from a participant", func(t *testing.T) {
		mallory := tc.Join(t, target, room, "mallory", nil)
		// mallory receives alice's tracks: the SSRCs to send feedback about.
		mVideo := mallory.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeVideo)
		mAudio := mallory.WaitForTrack(mediaWait, "alice", webrtc.RTPCodecTypeAudio)
		expectFlow(t, mVideo, 10, "mallory receives alice's video")

		var wg sync.WaitGroup
		stop := make(chan struct{})
		var writeErrs sync.Map
		publishGarbage := func(codec webrtc.RTPCodecCapability, name string, source livekit.TrackSource, seed uint64) {
			track, err := lksdk.NewLocalTrack(codec)
			if err != nil {
				t.Fatal(err)
			}
			track.OnBind(func() {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(seed, 1))
					p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1000, Timestamp: 90000}}
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						case <-time.After(2 * time.Millisecond):
						}
						pkt := garbageRTP(r, i, p, codec.MimeType == webrtc.MimeTypeVP8)
						if err := track.WriteRTP(pkt, nil); err != nil {
							writeErrs.Store(name, err)
						}
					}
				}()
			})
			if _, err := mallory.Room.LocalParticipant.PublishTrack(track, &lksdk.TrackPublicationOptions{
				Name: name, Source: source, VideoWidth: 320, VideoHeight: 180,
			}); err != nil {
				t.Fatalf("mallory publishes %s: %v", name, err)
			}
		}
		publishGarbage(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "garbage-video", livekit.TrackSource_CAMERA, 11)
		publishGarbage(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "garbage-audio", livekit.TrackSource_MICROPHONE, 12)
		// The server accepts the tracks (their first packets arrive) and announces them.
		watcher.WaitForPublication(mediaWait, "mallory", lksdk.TrackKindVideo)
		watcher.WaitForPublication(mediaWait, "mallory", lksdk.TrackKindAudio)

		// Malformed and bogus RTCP on both of mallory's connections, and keyframe-request and
		// NACK floods for alice's tracks.
		pub := mallory.Room.LocalParticipant.GetPublisherPeerConnection()
		sub := mallory.Room.LocalParticipant.GetSubscriberPeerConnection()
		vSSRC, aSSRC := mVideo.Snapshot().SSRC, mAudio.Snapshot().SSRC
		plisBefore := keyframeRequests(aliceVideo)
		floodStart := time.Now()
		rtcpErrs := map[string]int{}
		for i := range 1500 {
			for _, pc := range []*webrtc.PeerConnection{pub, sub} {
				pkts := garbageRTCP(rng, i, vSSRC, aSSRC)
				if err := pc.WriteRTCP(pkts); err != nil {
					rtcpErrs[fmt.Sprintf("%T: %v", pkts[0], err)]++
				}
			}
			if i%100 == 99 {
				time.Sleep(20 * time.Millisecond)
			}
		}
		floodTime := time.Since(floodStart)
		// Garbage RTP keeps flowing meanwhile; check the others, then stop it.
		unaffected(t)
		close(stop)
		wg.Wait()
		writeErrs.Range(func(k, v any) bool {
			t.Logf("writing garbage RTP on %v: %v (last error)", k, v)
			return true
		})
		t.Logf("RTCP flood: 1500 rounds on 2 connections in %v; write errors (not sent): %v", floodTime.Round(time.Millisecond), rtcpErrs)

		// Keyframe requests reach alice coalesced and rate-limited (pli_throttle 500ms),
		// however many mallory sent (1500 rounds, about 1 in 4 with a PLI or FIR).
		window := time.Since(floodStart)
		got := keyframeRequests(aliceVideo) - plisBefore
		limit := int(window/(500*time.Millisecond)) + 4
		t.Logf("alice received %d PLI/FIR in the %v after the flood started (limit %d)", got, window.Round(time.Millisecond), limit)
		if got > limit {
			t.Errorf("alice received %d keyframe requests in %v: the PLI/FIR flood was not rate-limited (at most %d expected)", got, window, limit)
		}
		mallory.Disconnect()
		watcher.WaitForEvent(eventWait, tc.EventParticipantDisconnected, "mallory")
		unaffected(t)
	})

	worst, which := monitor.finish()
	t.Logf("longest stall of the watcher's media during the garbage: %v (%s)", worst.Round(time.Millisecond), which)
	if worst > 2*time.Second {
		t.Errorf("the watcher's %s stalled for %v during the garbage", which, worst)
	}
	t.Logf("watcher: %s", wVideo.Snapshot())
	serverAlive(t, srv)
}

// keyframeRequests returns the PLIs and FIRs a publication received.
func keyframeRequests(p *tc.Publication) int {
	n := 0
	for _, l := range p.Stats() {
		n += l.PLIs + l.FIRs
	}
	return n
}

// garbageDatagram returns datagram number i of a varied garbage mix.
func garbageDatagram(r *rand.Rand, i int) []byte {
	random := func(n int) []byte {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		return b
	}
	switch i % 12 {
	case 0:
		return nil // empty datagram
	case 1:
		return random(1)
	case 2: // STUN-looking: type, length, magic cookie, transaction id, garbage attributes
		b := random(20 + 4*r.IntN(40))
		b[0] &= 0x03
		binary.BigEndian.PutUint16(b[2:], uint16(r.IntN(2000)))
		binary.BigEndian.PutUint32(b[4:], 0x2112A442)
		return b
	case 3: // STUN binding request with a random USERNAME
		user := fmt.Sprintf("%x:%x", r.Uint32(), r.Uint32())
		attr := make([]byte, 4+len(user)+(4-len(user)%4)%4)
		binary.BigEndian.PutUint16(attr[0:], 0x0006)
		binary.BigEndian.PutUint16(attr[2:], uint16(len(user)))
		copy(attr[4:], user)
		b := make([]byte, 20, 20+len(attr))
		binary.BigEndian.PutUint16(b[0:], 0x0001)
		binary.BigEndian.PutUint16(b[2:], uint16(len(attr)))
		binary.BigEndian.PutUint32(b[4:], 0x2112A442)
		copy(b[8:], random(12))
		return append(b, attr...)
	case 4: // DTLS-looking: handshake/alert/application data records, random body
		b := random(13 + r.IntN(300))
		b[0] = []byte{20, 21, 22, 23}[r.IntN(4)]
		b[1], b[2] = 0xfe, 0xfd
		binary.BigEndian.PutUint16(b[11:], uint16(r.IntN(2000)))
		return b
	case 5, 6: // RTP-looking
		b := random(12 + r.IntN(1200))
		b[0] = 0x80 | byte(r.IntN(32)) // version 2, random P/X/CC
		b[1] = byte(r.IntN(256))       // random marker and payload type
		return b
	case 7: // RTCP-looking with a lying length
		b := random(8 + 4*r.IntN(64))
		b[0] = 0x80 | byte(r.IntN(32))
		b[1] = byte(192 + r.IntN(16)) // 192..207: FIR, SR, RR, SDES, BYE, APP, RTPFB, PSFB...
		binary.BigEndian.PutUint16(b[2:], uint16(r.IntN(65536)))
		return b
	case 8:
		return random(1 + r.IntN(1500))
	case 9:
		if i%48 == 9 {
			return random(65000) // close to the largest UDP datagram
		}
		return random(r.IntN(100))
	case 10: // TURN channel data-looking (64..79)
		b := random(4 + r.IntN(200))
		b[0] = byte(64 + r.IntN(16))
		return b
	default:
		return random(2 + r.IntN(11))
	}
}

// garbageRTP returns packet i of a malformed RTP stream (prev keeps the running header).
func garbageRTP(r *rand.Rand, i int, prev *rtp.Packet, vp8 bool) *rtp.Packet {
	random := func(n int) []byte {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		return b
	}
	h := prev.Header
	h.SequenceNumber++
	h.Timestamp += 3000
	h.Marker = r.IntN(3) == 0
	h.Extension, h.Extensions, h.ExtensionProfile = false, nil, 0
	h.Padding = false
	p := &rtp.Packet{Header: h}
	switch {
	case i < 5 && vp8:
		// A few sane-looking keyframe starts first, so the track gets forwarded.
		p.Payload = append([]byte{0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00}, random(200)...)
		p.Marker = true
	default:
		switch i % 10 {
		case 0:
			p.Payload = nil // empty payload
		case 1: // padding only
			p.Padding, p.PaddingSize = true, byte(1+r.IntN(255))
		case 2: // truncated VP8 descriptors: X set, then I/L/T/K and a 15-bit picture id cut short
			p.Payload = [][]byte{{0x80}, {0x90, 0xff}, {0x90, 0x80}, {0xf0, 0xf0, 0x80}, {0x90, 0xe0, 0x80}}[r.IntN(5)]
		case 3: // a "keyframe" with a size header cut short
			p.Payload = []byte{0x10, 0x00, 0x00, 0x00, 0x9d, 0x01}[:1+r.IntN(6)]
		case 4: // sequence number jumps (forward, backward, repeat)
			p.SequenceNumber += []uint16{0, 0x7fff, 0x8000, 0xffff, 50, 0xff00}[r.IntN(6)]
			p.Payload = random(r.IntN(1100))
		case 5: // timestamp jumps
			p.Timestamp = r.Uint32()
			p.Payload = random(r.IntN(1100))
		case 6: // random header extensions, one- and two-byte forms
			p.Payload = random(r.IntN(500))
			for range 1 + r.IntN(4) {
				n := 1 + r.IntN(16)
				if r.IntN(4) == 0 {
					n = 17 + r.IntN(200)
				}
				_ = p.SetExtension(uint8(1+r.IntN(14)), random(n))
			}
		case 7: // keyframe bit with random rest
			p.Payload = append([]byte{0x10, 0x00}, random(r.IntN(1000))...)
		default:
			p.Payload = random(r.IntN(1200))
		}
	}
	prev.Header = p.Header
	prev.Header.Padding, prev.Header.Extension, prev.Header.Extensions = false, false, nil
	return p
}

// garbageRTCP returns a compound RTCP packet for round i: undecodable raw bytes, bogus
// reports, and feedback about the media SSRCs vSSRC/aSSRC (PLI, FIR, NACK floods).
func garbageRTCP(r *rand.Rand, i int, vSSRC, aSSRC uint32) []rtcp.Packet {
	random := func(n int) []byte {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		return b
	}
	raw := func(pt byte, body int) rtcp.Packet {
		b := random(4 + 4*body)
		b[0] = 0x80 | byte(r.IntN(32))
		b[1] = pt
		binary.BigEndian.PutUint16(b[2:], uint16(body+r.IntN(3)-1)) // length off by -1..1 words
		rp := rtcp.RawPacket(b)
		return &rp
	}
	switch i % 8 {
	case 0:
		return []rtcp.Packet{&rtcp.PictureLossIndication{SenderSSRC: r.Uint32(), MediaSSRC: vSSRC}}
	case 1:
		return []rtcp.Packet{&rtcp.FullIntraRequest{SenderSSRC: r.Uint32(), MediaSSRC: vSSRC,
			FIR: []rtcp.FIREntry{{SSRC: vSSRC, SequenceNumber: uint8(i)}}}}
	case 2:
		pairs := make([]rtcp.NackPair, 1+r.IntN(20))
		for j := range pairs {
			pairs[j] = rtcp.NackPair{PacketID: uint16(r.Uint32()), LostPackets: rtcp.PacketBitmap(r.Uint32())}
		}
		return []rtcp.Packet{&rtcp.TransportLayerNack{SenderSSRC: r.Uint32(), MediaSSRC: []uint32{vSSRC, aSSRC}[r.IntN(2)], Nacks: pairs}}
	case 3:
		return []rtcp.Packet{&rtcp.ReceiverReport{SSRC: r.Uint32(), Reports: []rtcp.ReceptionReport{{
			SSRC: vSSRC, FractionLost: 255, TotalLost: 0xffffff, LastSequenceNumber: r.Uint32(), Jitter: r.Uint32(),
			LastSenderReport: r.Uint32(), Delay: r.Uint32(),
		}}}}
	case 4:
		return []rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: r.Uint32(), Bitrate: []float32{0, 1, 1e12}[r.IntN(3)], SSRCs: []uint32{vSSRC, r.Uint32()}}}
	case 5:
		return []rtcp.Packet{raw(byte(192+r.IntN(16)), r.IntN(40))}
	case 6:
		return []rtcp.Packet{&rtcp.SenderReport{SSRC: r.Uint32(), NTPTime: r.Uint64(), RTPTime: r.Uint32(), PacketCount: r.Uint32(), OctetCount: r.Uint32()},
			&rtcp.Goodbye{Sources: []uint32{r.Uint32()}, Reason: "garbage"}}
	default:
		rp := rtcp.RawPacket(random(1 + r.IntN(64)))
		return []rtcp.Packet{&rp}
	}
}

// selectedPair returns the local and remote addresses of pc's selected ICE candidate pair.
func selectedPair(pc *webrtc.PeerConnection) (local, remote *net.UDPAddr, err error) {
	if pc == nil {
		return nil, nil, errors.New("no peer connection")
	}
	sctp := pc.SCTP()
	if sctp == nil || sctp.Transport() == nil {
		return nil, nil, errors.New("no DTLS transport")
	}
	pair, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return nil, nil, fmt.Errorf("no selected candidate pair (%v)", err)
	}
	local = &net.UDPAddr{IP: net.ParseIP(pair.Local.Address).To4(), Port: int(pair.Local.Port)}
	remote = &net.UDPAddr{IP: net.ParseIP(pair.Remote.Address).To4(), Port: int(pair.Remote.Port)}
	if local.IP == nil || remote.IP == nil || pair.Local.Protocol != webrtc.ICEProtocolUDP {
		return nil, nil, fmt.Errorf("selected pair is not IPv4 UDP: %s", pair)
	}
	return local, remote, nil
}

// checkSpoofing makes sure a datagram spoofed from ip reaches a socket on 127.0.0.1 with that
// source address, so that the spoofing test really reaches the server.
func checkSpoofing(t *testing.T, fd int, ip net.IP) {
	t.Helper()
	probe, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = probe.Close() }()
	src := &net.UDPAddr{IP: ip, Port: 40999}
	if err := sendSpoofed(fd, src, probe.LocalAddr().(*net.UDPAddr), []byte("spoof-check")); err != nil {
		t.Fatalf("spoof check: %v", err)
	}
	_ = probe.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, from, err := probe.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "spoof-check" || !from.IP.Equal(ip) || from.Port != src.Port {
		t.Fatalf("a datagram spoofed from %v did not arrive as such: %q from %v (%v)", src, buf[:n], from, err)
	}
}

// sendSpoofed sends payload as a UDP datagram from src to dst through a raw IPv4 socket
// (IPPROTO_RAW: we write the IP header; the kernel fills in length and checksum).
func sendSpoofed(fd int, src, dst *net.UDPAddr, payload []byte) error {
	const ipHdr, udpHdr = 20, 8
	b := make([]byte, ipHdr+udpHdr+len(payload))
	b[0] = 0x45 // IPv4, 5 words
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8] = 64 // TTL
	b[9] = syscall.IPPROTO_UDP
	copy(b[12:16], src.IP.To4())
	copy(b[16:20], dst.IP.To4())
	binary.BigEndian.PutUint16(b[20:], uint16(src.Port))
	binary.BigEndian.PutUint16(b[22:], uint16(dst.Port))
	binary.BigEndian.PutUint16(b[24:], uint16(udpHdr+len(payload)))
	// UDP checksum 0: none (allowed over IPv4).
	copy(b[28:], payload)
	var addr syscall.SockaddrInet4
	copy(addr.Addr[:], dst.IP.To4())
	for {
		err := syscall.Sendto(fd, b, 0, &addr)
		if errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.EAGAIN) {
			time.Sleep(time.Millisecond)
			continue
		}
		return err
	}
}
