// Package testclient drives Sanke (or any LiveKit-compatible server) with the unmodified
// LiveKit Go SDK for end-to-end tests.
//
// A typical test:
//
//	target := testclient.StartTarget(t)          // sanke serve --dev on free ports, or $SANKE_REF_URL
//	files := testmedia.Get(t)                     // ffmpeg-made VP8 layers, Opus, H.264
//	pub := testclient.Join(t, target, "room", "alice", nil)
//	video, err := testclient.PublishSimulcastVP8(pub.Room, files, nil) // q/h/f as one track
//	sub := testclient.Join(t, target, "room", "bob", nil)
//	rp := sub.WaitForPublication(10*time.Second, "alice", lksdk.TrackKindVideo)
//	_ = rp.SetVideoQuality(livekit.VideoQuality_LOW)
//	v := sub.WaitForTrack(10*time.Second, "alice", webrtc.RTPCodecTypeVideo)
//	testclient.Eventually(t, 10*time.Second, "low layer", func() (bool, string) {
//		s := v.Snapshot()
//		return s.HasResolution(320, 180), s.String()
//	})
//
// Pieces:
//   - Servers: StartSanke (builds ./cmd/sanke once per process, -race when the tests are,
//     runs it, waits for /healthz, stops it and reports data races), ReferenceTarget and
//     StartTarget (SANKE_REF_URL), and the in-process variant in package inprocess.
//   - Tokens: NewToken/MustToken with JoinGrant, SubscribeOnlyGrant, PublishOnlyGrant,
//     AdminGrant; TokenValidBetween for expired tokens.
//   - Clients: Join/TryJoin record SDK events (Event), data packets (DataMessage) and, for
//     every subscribed track, RTP statistics (TrackStats/TrackSnapshot: packets, gaps, late
//     packets, timestamps, VP8 frames and keyframe resolution, picture ids, audio level).
//   - Publishing: PublishSimulcastVP8, PublishVP8, PublishH264, PublishOpus play fixture files
//     in real time, looping, answer PLI/FIR with a keyframe, and can pause a layer.
//   - Waiting: WaitFor, Eventually and Never poll conditions with deadlines; tests never
//     assert on fixed sleeps.
//   - SignalTap: a recording websocket proxy that decodes every signal message both ways;
//     Cut drops the websockets it relays as a network failure would, SetUpstream moves it to
//     another server (reconnect tests).
//   - StartRedis: a throwaway redis-server.
//
// Logs: each client keeps its SDK log lines and prints them, with its events and track
// statistics, only when the test fails; SANKE_TEST_SDK_LOG=debug|info|off tunes them.
// The SDK's process-wide logger (pion's WebRTC logs) is set to errors only when this package
// is initialised.
package testclient
