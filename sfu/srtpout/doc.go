// Package srtpout sends a subscriber's RTP without pion's per-packet write path.
//
// pion writes each outgoing RTP packet through its interceptor chain, its SRTP session (a
// mutex and a channel check), the bundle mux, the ICE connection (a task-loop check and two
// clock reads) and the UDP mux (an address lookup), then one sendto system call: about two
// thirds of an SFU's cost per forwarded packet. A Sender does the same work directly:
//
//   - KeyCapture learns the DTLS-SRTP keys of one PeerConnection as pion's DTLS handshake
//     produces them (the server hello hook gives the server random, cipher suite and SRTP
//     profile; the key log gives the client random and master secret) and derives the SRTP
//     master keys with the RFC 5705 exporter, exactly as pion does for its own session;
//   - Sender encrypts (AES-GCM itself, RFC 7714, with each stream's rollover state kept in
//     the Sender; AES-CM with a pion/srtp Context) and writes to the peer's selected ICE
//     address on the node's shared UDP socket;
//   - Batch collects the packets of one fan-out and sends them with one sendmmsg per batch,
//     a raw system call (see package udpsock for why).
//
// Only the SRTP of RTP packets the SFU forwards takes this path. pion still owns ICE (the
// Sender only reads the selected pair), DTLS, SRTCP and data channels, and sends when the fast
// path is not available (the node is the DTLS client, an unknown cipher suite).
// Key material never leaves the process: it is what pion already holds in memory.
//
// ICE-TCP: when the selected pair runs over an ICE-TCP connection the node accepted
// (StreamConns wraps the listener pion's TCP mux uses), a Stream queues the Sender's SRTP
// packets, framed as RFC 4571 says, and one goroutine per connection writes them between
// pion's own frames. A stream therefore keeps one SRTP state, its rollover counter
// included, however often ICE moves it between UDP and TCP; pion's writer never takes over
// a stream that started here (its SRTP state for the SSRC would start with rollover counter
// 0, which a subscriber cannot authenticate once the sequence numbers have wrapped). The
// bounded queue drops new packets when full, so one subscriber's full TCP window never
// stalls a fan-out, as pion's blocking write would.
package srtpout
