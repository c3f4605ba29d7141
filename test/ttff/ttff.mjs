// Time to first decoded frame of one @livekit/rtc-node subscriber (libwebrtc, as a native
// client would). It joins a room where a video track is already published, and prints one
// line, "TTFF " and JSON of milliseconds from t0, taken just before room.connect() (the SDK's
// own logs go to stdout too):
//
//   TTFF {"connect_ms": ..., "subscribed_ms": ..., "first_frame_ms": ..., "width": ..., "height": ...}
//
// connect_ms: connect() resolved (the JoinResponse is in); subscribed_ms: the first video
// TrackSubscribed; first_frame_ms: the first frame libwebrtc decoded (VideoStream's first
// event); t0_unix_ms: t0 on the wall clock, to line the marks up with a server's log on the
// same host. Nothing else runs in the process, so the figures are the server's and the link's.
//
//   node ttff.mjs --url ws://127.0.0.1:7880 --token JWT [--relay turn:127.0.0.1:3479 --user U --pass P] [--timeout 20000]
//
// --relay forces relay-only ICE through that TURN server (sanke linksim: an impaired link to
// either server). Exit status 0 with the line on success, 1 with a reason on stderr.
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import {
  ContinualGatheringPolicy,
  IceTransportType,
  Room,
  RoomEvent,
  TrackKind,
  VideoStream,
  dispose,
} from '@livekit/rtc-node';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    token: { type: 'string' },
    relay: { type: 'string' },
    user: { type: 'string', default: '' },
    pass: { type: 'string', default: '' },
    timeout: { type: 'string', default: '20000' },
  },
});
if (!opt.url || !opt.token) {
  console.error('usage: node ttff.mjs --url ws://host:port --token JWT [--relay turn:host:port --user U --pass P]');
  process.exit(2);
}

const room = new Room();
const marks = {};
const since = (t0) => Math.round((performance.now() - t0) * 10) / 10;

// firstFrame resolves with the first decoded frame of the first subscribed video track.
function firstFrame(t0) {
  return new Promise((resolve, reject) => {
    room.on(RoomEvent.TrackSubscribed, async (track) => {
      if (track.kind !== TrackKind.KIND_VIDEO || marks.subscribed_ms !== undefined) {
        return;
      }
      marks.subscribed_ms = since(t0);
      try {
        for await (const ev of new VideoStream(track)) {
          marks.first_frame_ms = since(t0);
          marks.width = ev.frame.width;
          marks.height = ev.frame.height;
          resolve();
          return;
        }
        reject(new Error('video stream ended before a frame'));
      } catch (err) {
        reject(err);
      }
    });
  });
}

const options = { autoSubscribe: true, dynacast: false };
if (opt.relay) {
  options.rtcConfig = {
    iceTransportType: IceTransportType.TRANSPORT_RELAY,
    continualGatheringPolicy: ContinualGatheringPolicy.GATHER_ONCE,
    iceServers: [{ urls: [opt.relay], username: opt.user, password: opt.pass }],
  };
}

let code = 0;
const timeout = Number(opt.timeout);
let timer;
try {
  const t0 = performance.now();
  marks.t0_unix_ms = Math.round(performance.timeOrigin + t0); // to line up with a server's log
  const frame = firstFrame(t0);
  await room.connect(opt.url, opt.token, options);
  marks.connect_ms = since(t0);
  await Promise.race([
    frame,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no frame within ${timeout} ms (${JSON.stringify(marks)})`)), timeout);
    }),
  ]);
  console.log(`TTFF ${JSON.stringify(marks)}`);
} catch (err) {
  console.error(`ttff: ${err?.message ?? err}`);
  code = 1;
} finally {
  clearTimeout(timer);
  await room.disconnect().catch(() => {});
  await dispose();
}
process.exit(code);
