// Package sfu is Sanke's media data path: RTP in from a publisher, out to
// each subscriber. It knows nothing of rooms or signaling; the room package
// creates its objects from pion callbacks and wires them together.
//
// A Receiver is one published track. AddLayer attaches each incoming stream
// (one per simulcast layer, told apart by RID, or a single stream) and starts
// a goroutine that reads it. Every packet is parsed once into a reused
// rtp.Packet, accounted (loss, bitrate, availability), copied into that
// layer's packetcache.Cache for retransmissions, inspected (keyframe, VP8
// payload descriptor, audio level) and then handed, in the same goroutine,
// to each DownTrack. The list of down tracks is a copy-on-write slice, so
// the fan-out takes no lock that subscribers share. StartRTCP (or
// HandleRTCP) gives the receiver the publisher's sender reports; it asks the
// publisher for keyframes (PLI) through ReceiverParams.WriteRTCP, at most
// once per PLIThrottle per layer.
//
// A DownTrack is one subscriber's copy of a Receiver, and a
// webrtc.TrackLocal that pion binds to the subscriber's PeerConnection. Its
// forwarder decides which layer reaches that subscriber: the best layer
// available up to the subscriber's maximum. It switches layers only at a
// keyframe of the new layer, keeps forwarding the old one meanwhile, and
// falls back to another layer when the forwarded one stops (no packets for
// 1.5 s), going back up when it returns. Headers are rewritten so the
// subscriber sees one continuous stream: out = in + offset within a layer
// (losses stay gaps, late packets keep their place), and at each switch,
// pause or mute the offsets move so that the sequence number follows the last
// one sent and the timestamp advances by the wall time elapsed. For VP8 the
// picture id, TL0PICIDX and KEYIDX are made continuous the same way, in a
// copy of the payload. Packets are written with the SSRC and payload type
// pion negotiated and without the publisher's header extensions, from
// preallocated scratch space: forwarding allocates nothing.
//
// Each DownTrack reads its subscriber's RTCP (StartRTCP): NACKs are answered
// from the receiver's cache, mapped back from output to input sequence
// numbers by a ring of what was sent (kept only if the subscriber negotiated
// NACK); PLI and FIR become keyframe requests for the forwarded layer;
// receiver reports give loss, jitter and round-trip time. The Reporter of its
// PeerConnection sends its sender report (video every second, audio every five,
// as libwebrtc does), with those of the connection's other down tracks in one
// compound packet: it carries the
// publisher's NTP/RTP mapping over the timestamp offset, which keeps audio and
// video in sync at the subscriber.
//
// The Allocator of a subscriber's PeerConnection (DownTrackParams.Allocator)
// fits the video it carries to the subscriber's downlink: from the receiver
// reports it counts the packets lost on the way to the subscriber, keeps a
// bitrate budget (cut above 10% loss, probed up one layer at a time after a
// quiet spell) and caps each video down track's layer so that together they
// fit; the forwarder takes the lower of that cap and the subscriber's wish.
// The audio's room is kept out of the budget; when not even the video's lowest
// layers fit the rest, video tracks are paused, the lowest priority first, and
// resumed after at least 5 s once there is room (OnStreamState tells the
// subscriber); a budget far below what the video sends drops the layer at once.
//
// # Wiring it into PeerConnections
//
// Publisher connection, in OnTrack(track, rtpReceiver): create or find the
// Receiver of the track, then call AddLayer(track) and
// StartRTCP(rtpReceiver, track) for each stream. Register pion's NACK
// generator and receiver-report interceptors there (and TWCC if wanted):
// they repair loss from the publisher and tell it how reception goes.
//
// Subscriber connection: NewDownTrack, AddTrack it (or a transceiver's
// ReplaceTrack), call StartRTCP with the returned RTPSender, then
// Receiver.AddDownTrack. Do not register pion's NACK responder or
// sender-report interceptors on subscriber connections: the DownTrack
// answers NACKs and sends sender reports itself, and pion's versions would
// answer twice and report the wrong clock. The subscriber's MediaEngine
// must offer the publisher's codec with the nack, nack pli and ccm fir
// feedback so that browsers send them.
package sfu
