// Package loadtest is Sanke's load generator ("sanke loadtest"). It speaks LiveKit's client
// protocol, so it measures Sanke or any LiveKit-compatible server given a URL, an API key and
// its secret.
//
// # Clients
//
// Every participant is a light client, not the Go SDK's Room: a websocket to /rtc carrying
// protobuf SignalRequest/SignalResponse messages, and pion PeerConnections built from one
// shared API (VP8 and Opus only, mid/rid/audio-level header extensions, no interceptors, one
// DTLS certificate, loopback-only ICE candidates when the server is on loopback, a 1 MiB
// receive buffer per socket). The flow is the SDKs' dual-PeerConnection one: the server
// offers on the subscriber PeerConnection (every client answers it, if only for the server's
// data channels); publishers send add_track, wait for track_published, then offer on their
// publisher PeerConnection. Candidates trickle both ways; a ping goes out every
// ping_interval; leave is sent at the end.
//
// ICE transport. By default every PeerConnection gathers UDP host candidates. With
// ICETransport "tcp" (sanke loadtest --ice-transport tcp) subscribers' PeerConnections gather
// none and reach the server's passive ICE-TCP candidate by active ICE-TCP (RFC 6544 framing),
// as clients behind a firewall that blocks UDP do; publishers stay on UDP. Pion dials those
// TCP connections itself, so their packets get no arrival time: latency is then reported to
// the reader only, and the stall timeline is not measured. The report counts subscribers by
// the protocol of their selected candidate pair.
//
// Publishers. A video publisher sends a VP8 simulcast camera track: three RTP streams (rid
// q, h, f; 320x180@15 150 kbps, 640x360@30 500 kbps, 1280x720@30 1.7 Mbps by default) from
// synthetic frames. Frame sizes average the layer's bitrate over a keyframe interval
// (2.5 s; a keyframe weighs eight inter frames), with ±15% variation. Payloads carry valid
// VP8 payload descriptors (15-bit picture id, TL0PICIDX, TID) and, on keyframes, a valid
// frame tag, start code and dimensions, which is all an SFU looks at; the rest is
// pseudo-random. Keyframe requests (PLI, FIR) are honoured at most every 200 ms per layer;
// NACKs are counted, not answered, so upstream loss stays visible. Packets are paced at 2.5
// times the publisher's bitrate, like a browser's pacer. Sender reports go out every second.
// An audio publisher sends 20 ms Opus-like packets at 32 kbps with a varying audio level.
//
// Every payload ends with a 24-byte trailer (see media.go): a CRC of the body, the send time
// on the generator's monotonic clock, a packet number, the track index and the layer. SFUs
// rewrite headers and VP8 descriptors but not the rest, so subscribers in the same process
// measure publish -> receive latency with one clock, count packets by layer and check that
// every body arrived intact and on the track it was sent on.
//
// Subscribers join with auto_subscribe and either take every track as the server sends it
// (layout "all": no track settings, the server's default is the best layer) or ask for a
// classroom grid (layout "grid": update_track_settings with the first video publisher's
// track at HIGH and every other video track at LOW). They decrypt (pion's SRTP) and account
// each packet without decoding: by RTP sequence number (RFC 3550 A.3: expected, received,
// lost, gaps, duplicates, late), by RFC 3550 interarrival jitter, by layer and by latency (a
// log-linear histogram, ~3% resolution).
//
// # A run
//
// Publishers join together and start sending; half a second later the server's memory is
// sampled (the baseline); subscribers join evenly over the ramp-up; once every subscriber has
// received every track (or JoinTimeout passed) the measurement window opens for Duration:
// counters are snapshotted at both ends, latency histograms restart, and, given the server's
// PID, its CPU time (utime+stime from /proc/PID/stat), memory (VmRSS sampled every 250 ms,
// VmHWM) and drops on its UDP sockets are read, as are the generator's own and the host's
// (/proc/stat, to show what other processes took on a shared machine). Join times run from
// the start of each subscriber's websocket dial to its join response, its first media packet
// and a packet of every track.
//
// CPU per forwarded packet is the server's CPU time in the window divided by the packets the
// subscribers received in it. MeasureFloor measures what no SFU can avoid per packet on this
// machine (AES-128-GCM SRTP encryption with pion/srtp plus a sendmmsg batch of 32 on one
// socket) so results are also stated as a ratio to that floor.
//
// The generator's own cost is about that of a pion receive path per packet per subscriber
// (pion's per-PeerConnection goroutines and one recvmsg per packet), comparable to the server
// under test; on a small host its CPU share is part of the report.
package loadtest
