// Package bwe estimates what a subscriber's downlink carries from the feedback the
// subscriber sends: transport-wide congestion control (TWCC) feedback when it was
// negotiated, REMB from clients that only offer that, and receiver-report loss otherwise.
//
// The estimate is delay based. Every packet Sanke sends on a subscriber PeerConnection
// gets a transport-wide sequence number (SendHistory); TWCC feedback says when each
// arrived. Groups of packets sent within 5 ms are compared: if the gaps between their
// arrivals grow faster than the gaps between their sends, a queue is building on the
// path, and a trendline over the last 20 groups (libwebrtc's detector, reimplemented
// here) says so before the queue overflows into loss. The rate control (AIMD) then cuts
// to 85% of the acknowledged rate, what actually arrived. Loss alone cuts only when the
// delay says the queue is the cause: rural radio links lose 5-30% of packets at random
// at any rate, and a controller that reads that as congestion sits at its minimum
// forever. Probes (Prober) find out whether more would fit before the allocator moves a
// track up a layer.
//
// Nothing here starts a goroutine or reads a clock: every call takes now, monotonic
// nanoseconds, so tests drive it with synthetic feedback through a bottleneck model.
//
// Why not pion/interceptor's pkg/gcc (read at v0.1.51):
//   - its SendSideBWE is fed by interceptors in pion's write path (twcc header extension,
//     cc.NewInterceptor); Sanke's forwarded media bypasses that path (package
//     sfu/srtpout encrypts and sends it itself), and subscriber PeerConnections have no
//     send interceptors at all;
//   - fed by hand, it costs an interceptor.Attributes map per packet, and its feedback
//     history (internal/cc) allocates a list element and a boxed acknowledgment per
//     packet and remembers only 250 packets: under a second of video, less than one
//     feedback round trip on a 300 ms rural link;
//   - each estimator starts two goroutines and logs every delay update at Info;
//   - its loss controller cuts above 10% loss and grows only below 2%: on a line losing
//     5-30% at random it stays at its minimum;
//   - it reads time.Now itself, so it cannot be tested against a simulated link;
//   - it is the older Kalman-filter GCC; libwebrtc moved to the trendline detector.
package bwe
