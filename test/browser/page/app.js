// The test page: the unmodified npm livekit-client, a Room with default options (adaptive stream
// and dynacast only when the query string asks for them), and helpers on window.sanke that the
// Node tests call through page.evaluate. The page never asserts anything itself: it records SDK
// events and reads getStats(), and the tests decide.
//
// Query parameters:
//   adaptiveStream=1, dynacast=1   Room options (both documented opt-ins of livekit-client 2.23)
//   videoWidth, videoHeight        CSS size of the <video> element of every remote video (320x180)
//   label                          shown in the page (helps reading screenshots)
//   relay=1                        iceTransportPolicy 'relay' (the join response's TURN servers)
//   rtc=<JSON>                     rtcConfig for Room.connect, e.g. a linksim relay's iceServers with
//                                  iceTransportPolicy 'relay' (livekit-client then uses these
//                                  iceServers, not the server's)
//   sample=<ms>                    start the quality sampler (sampler.js) when connect() is called
import {
  ConnectionErrorReason,
  ConnectionState,
  LocalVideoTrack,
  Room,
  RoomEvent,
  Track,
  VideoPresets,
  version as sdkVersion,
} from 'livekit-client';
import { Sampler } from './sampler.js';

const params = new URLSearchParams(location.search);
const roomOptions = {};
if (params.get('adaptiveStream') === '1') roomOptions.adaptiveStream = true;
if (params.get('dynacast') === '1') roomOptions.dynacast = true;
// A subscriber PeerConnection apart from the publisher's (the SDK's default is one for both).
if (params.get('singlePC') === '0') roomOptions.singlePeerConnection = false;

let videoSize = {
  width: Number(params.get('videoWidth') || 320),
  height: Number(params.get('videoHeight') || 180),
};

const room = new Room(roomOptions);
const t0 = performance.now();
const events = [];
const textReceived = [];
const dataReceived = [];
const elements = new Map(); // track sid -> media element
const canvasTimers = [];

function log(type, detail = {}) {
  events.push({ t: Math.round(performance.now() - t0), at: Date.now(), type, ...detail });
  if (events.length > 2000) events.splice(0, events.length - 2000);
}

function setStatus() {
  const el = document.getElementById('status');
  if (!el) return;
  const lp = room.localParticipant;
  el.textContent = `${params.get('label') || ''} ${lp.identity || ''} ${lp.sid || ''} ${room.state} ` +
    `remote=${room.remoteParticipants.size} sdk=${sdkVersion} ` +
    `opts=${JSON.stringify(roomOptions)}`;
}

function participantInfo(p) {
  return p ? { identity: p.identity, sid: p.sid } : undefined;
}

function sizeElement(el) {
  el.style.width = `${videoSize.width}px`;
  el.style.height = `${videoSize.height}px`;
}

room
  .on(RoomEvent.ConnectionStateChanged, (state) => { log('connectionStateChanged', { state }); setStatus(); })
  .on(RoomEvent.Connected, () => log('connected', { sid: room.localParticipant.sid }))
  .on(RoomEvent.Reconnecting, () => log('reconnecting', { sid: room.localParticipant.sid }))
  .on(RoomEvent.SignalReconnecting, () => log('signalReconnecting', { sid: room.localParticipant.sid }))
  .on(RoomEvent.Reconnected, () => { log('reconnected', { sid: room.localParticipant.sid }); setStatus(); })
  .on(RoomEvent.Disconnected, (reason) => { log('disconnected', { reason }); setStatus(); })
  .on(RoomEvent.ParticipantConnected, (p) => { log('participantConnected', participantInfo(p)); setStatus(); })
  .on(RoomEvent.ParticipantDisconnected, (p) => { log('participantDisconnected', participantInfo(p)); setStatus(); })
  .on(RoomEvent.TrackPublished, (pub, p) =>
    log('trackPublished', { trackSid: pub.trackSid, source: pub.source, kind: pub.kind, from: participantInfo(p) }))
  .on(RoomEvent.TrackUnpublished, (pub, p) =>
    log('trackUnpublished', { trackSid: pub.trackSid, source: pub.source, from: participantInfo(p) }))
  .on(RoomEvent.TrackSubscriptionFailed, (trackSid, p, err) =>
    log('trackSubscriptionFailed', { trackSid, from: participantInfo(p), error: String(err) }))
  .on(RoomEvent.TrackMuted, (pub, p) => log('trackMuted', { trackSid: pub.trackSid, source: pub.source, from: participantInfo(p) }))
  .on(RoomEvent.TrackUnmuted, (pub, p) => log('trackUnmuted', { trackSid: pub.trackSid, source: pub.source, from: participantInfo(p) }))
  .on(RoomEvent.TrackStreamStateChanged, (pub, state, p) =>
    log('trackStreamStateChanged', { trackSid: pub.trackSid, source: pub.source, state, from: participantInfo(p) }))
  .on(RoomEvent.LocalTrackPublished, (pub) => log('localTrackPublished', { trackSid: pub.trackSid, source: pub.source }))
  .on(RoomEvent.ConnectionQualityChanged, (quality, p) =>
    log('connectionQualityChanged', { quality, local: p === room.localParticipant, from: participantInfo(p) }))
  .on(RoomEvent.MediaDevicesError, (e) => log('mediaDevicesError', { error: String(e) }))
  .on(RoomEvent.AudioPlaybackStatusChanged, () => log('audioPlaybackStatusChanged', { canPlay: room.canPlaybackAudio }))
  .on(RoomEvent.TrackSubscribed, (track, pub, p) => {
    log('trackSubscribed', { trackSid: pub.trackSid, source: pub.source, kind: track.kind, from: participantInfo(p) });
    const el = track.attach();
    el.dataset.trackSid = pub.trackSid;
    el.dataset.source = pub.source;
    el.dataset.from = p.identity;
    if (track.kind === Track.Kind.Video) sizeElement(el);
    elements.set(pub.trackSid, el);
    document.getElementById('videos').appendChild(el);
  })
  .on(RoomEvent.TrackUnsubscribed, (track, pub, p) => {
    log('trackUnsubscribed', { trackSid: pub.trackSid, source: pub.source, from: participantInfo(p) });
    track.detach().forEach((el) => el.remove());
    elements.delete(pub.trackSid);
  })
  .on(RoomEvent.DataReceived, (payload, p, kind, topic) => {
    dataReceived.push({
      t: Math.round(performance.now() - t0),
      text: new TextDecoder().decode(payload),
      topic,
      kind,
      from: participantInfo(p),
    });
  });

// Text streams (sendText) arrive on the "chat" topic.
room.registerTextStreamHandler('chat', async (reader, sender) => {
  const text = await reader.readAll();
  textReceived.push({
    t: Math.round(performance.now() - t0),
    text,
    topic: reader.info.topic,
    streamId: reader.info.id,
    from: { identity: sender.identity },
  });
});

// --- stats --------------------------------------------------------------------------------

function pick(o, keys) {
  const out = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

const inboundKeys = ['kind', 'ssrc', 'packetsReceived', 'packetsLost', 'bytesReceived', 'framesDecoded',
  'framesReceived', 'framesDropped', 'frameWidth', 'frameHeight', 'framesPerSecond', 'jitter', 'codecId',
  'decoderImplementation', 'keyFramesDecoded', 'totalSamplesReceived', 'concealedSamples', 'silentConcealedSamples',
  'concealmentEvents', 'fecPacketsReceived', 'nackCount', 'mid'];
const outboundKeys = ['kind', 'rid', 'ssrc', 'active', 'bytesSent', 'packetsSent', 'framesEncoded', 'framesSent',
  'frameWidth', 'frameHeight', 'framesPerSecond', 'qualityLimitationReason', 'encoderImplementation',
  'targetBitrate', 'scalabilityMode', 'mid', 'nackCount', 'pliCount', 'firCount', 'timestamp', 'headerBytesSent',
  'retransmittedBytesSent', 'retransmittedPacketsSent', 'qualityLimitationDurations'];
const transportKeys = ['id', 'srtpCipher', 'dtlsCipher', 'tlsVersion', 'dtlsState', 'dtlsRole', 'iceState',
  'iceRole', 'selectedCandidatePairId', 'bytesSent', 'bytesReceived'];

function collect(report, type, keys) {
  const out = [];
  if (!report) return out;
  report.forEach((s) => {
    if (s.type === type) {
      const o = pick(s, keys);
      if (type === 'inbound-rtp' || type === 'outbound-rtp') {
        const codec = s.codecId && report.get(s.codecId);
        if (codec) o.codec = codec.mimeType;
      }
      out.push(o);
    }
  });
  return out;
}

// selectedCandidate describes the local candidate of the report's selected candidate pair,
// the remote candidate's address, and the pair's RTT and the sender's bandwidth estimate
// (availableOutgoingBitrate: what Chromium's congestion control allows it to send).
function selectedCandidate(report) {
  if (!report) return undefined;
  let pairId;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  const pair = pairId && report.get(pairId);
  const local = pair && report.get(pair.localCandidateId);
  const remote = pair && report.get(pair.remoteCandidateId);
  return local ? {
    candidateType: local.candidateType, protocol: local.protocol, relayProtocol: local.relayProtocol,
    address: local.address, remoteAddress: remote?.address,
    availableOutgoingBitrate: pair.availableOutgoingBitrate, currentRoundTripTime: pair.currentRoundTripTime,
  } : undefined;
}

async function stats() {
  const transports = new Map();
  const remote = [];
  for (const p of room.remoteParticipants.values()) {
    for (const pub of p.trackPublications.values()) {
      const entry = {
        from: participantInfo(p),
        trackSid: pub.trackSid,
        source: pub.source,
        kind: pub.kind,
        muted: pub.isMuted,
        subscribed: pub.isSubscribed,
        dimensions: pub.dimensions,
      };
      const track = pub.track;
      if (track) {
        entry.streamId = track.mediaStream?.id; // the msid stream: one for tracks played in sync
        const report = await track.getRTCStatsReport().catch(() => undefined);
        entry.inbound = collect(report, 'inbound-rtp', inboundKeys)[0];
        entry.candidate = selectedCandidate(report);
        for (const tr of collect(report, 'transport', transportKeys)) transports.set(tr.id, tr);
        const el = elements.get(pub.trackSid);
        if (el) {
          entry.element = {
            tag: el.tagName.toLowerCase(),
            clientWidth: el.clientWidth,
            clientHeight: el.clientHeight,
            videoWidth: el.videoWidth,
            videoHeight: el.videoHeight,
            paused: el.paused,
            readyState: el.readyState,
            currentTime: el.currentTime,
          };
        }
      }
      remote.push(entry);
    }
  }
  const local = [];
  for (const pub of room.localParticipant.trackPublications.values()) {
    const entry = { trackSid: pub.trackSid, source: pub.source, kind: pub.kind, muted: pub.isMuted };
    const track = pub.track;
    if (track) {
      const report = await track.getRTCStatsReport().catch(() => undefined);
      entry.outbound = collect(report, 'outbound-rtp', outboundKeys);
      entry.candidate = selectedCandidate(report);
      for (const tr of collect(report, 'transport', transportKeys)) transports.set(tr.id, tr);
      if (track.mediaStreamTrack) entry.settings = track.mediaStreamTrack.getSettings();
      // The header extensions the answer negotiated for what this track sends.
      entry.headerExtensions = track.sender?.getParameters().headerExtensions?.map((e) => e.uri);
    }
    local.push(entry);
  }
  return {
    identity: room.localParticipant.identity,
    sid: room.localParticipant.sid,
    state: room.state,
    remoteParticipants: [...room.remoteParticipants.values()].map(participantInfo),
    remote,
    local,
    transports: [...transports.values()],
  };
}

// --- actions ------------------------------------------------------------------------------

// relay=1 allows only relayed ICE candidates, as a browser behind a firewall that passes
// nothing but the TURN relay's port would end up with; rtc=<JSON> gives the whole rtcConfig.
let connectOptions;
if (params.get('rtc')) connectOptions = { rtcConfig: JSON.parse(params.get('rtc')) };
else if (params.get('relay') === '1') connectOptions = { rtcConfig: { iceTransportPolicy: 'relay' } };

// The quality sampler of the rural tests: getStats() of the remote tracks as a time series.
const sampler = new Sampler(room, () => elements);

async function connect(url, token) {
  if (params.get('sample')) sampler.start(Number(params.get('sample')));
  try {
    await room.connect(url, token, connectOptions);
  } catch (e) {
    log('connectError', { error: String(e) });
    throw e;
  }
  setStatus();
  return {
    identity: room.localParticipant.identity,
    sid: room.localParticipant.sid,
    serverVersion: room.serverInfo?.version,
    roomName: room.name,
  };
}

// connectExpectingError tries to connect and returns the error the SDK raised (or null).
async function connectExpectingError(url, token) {
  try {
    await room.connect(url, token);
    return null;
  } catch (e) {
    // Room.connect re-wraps the engine's error, copying reason and status but not reasonName.
    return { name: e?.name, message: e?.message, reason: e?.reason, reasonName: ConnectionErrorReason[e?.reason], status: e?.status };
  }
}

async function publishCamera() {
  const pub = await room.localParticipant.setCameraEnabled(true, {
    resolution: VideoPresets.h720.resolution,
  });
  return { trackSid: pub.trackSid, settings: pub.track.mediaStreamTrack.getSettings() };
}

async function publishMicrophone() {
  const pub = await room.localParticipant.setMicrophoneEnabled(true);
  return { trackSid: pub.trackSid };
}

// unpublishTrack unpublishes (and stops) the local track trackSid.
async function unpublishTrack(trackSid) {
  const pub = room.localParticipant.trackPublications.get(trackSid);
  if (!pub?.track) throw new Error(`no local track ${trackSid}`);
  await room.localParticipant.unpublishTrack(pub.track);
}

async function setMicrophoneEnabled(enabled) {
  await room.localParticipant.setMicrophoneEnabled(enabled);
}

// publishCanvas publishes an animated canvas as a video track of the given source
// ('screen_share' by default), e.g. a screen share without a display-capture prompt.
async function publishCanvas({ source = Track.Source.ScreenShare, width = 1280, height = 720, name = 'canvas', fps = 15 } = {}) {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  canvas.style.width = '160px';
  canvas.style.height = `${Math.round((160 * height) / width)}px`;
  document.body.appendChild(canvas);
  const ctx = canvas.getContext('2d');
  let n = 0;
  const draw = () => {
    n += 1;
    ctx.fillStyle = `hsl(${(n * 7) % 360}, 60%, 30%)`;
    ctx.fillRect(0, 0, width, height);
    ctx.fillStyle = '#fff';
    ctx.font = `${Math.round(height / 12)}px monospace`;
    ctx.fillText(`${name} frame ${n}`, width / 30, height / 6);
    ctx.fillRect((n * 10) % width, height / 2, height / 6, height / 6);
  };
  draw();
  canvasTimers.push(setInterval(draw, Math.round(1000 / fps)));
  const mst = canvas.captureStream(fps).getVideoTracks()[0];
  const track = new LocalVideoTrack(mst, undefined, true);
  const pub = await room.localParticipant.publishTrack(track, { source, name });
  return { trackSid: pub.trackSid };
}

async function sendText(text) {
  const info = await room.localParticipant.sendText(text, { topic: 'chat' });
  return { streamId: info.id };
}

async function publishData(text, destinationIdentities) {
  await room.localParticipant.publishData(new TextEncoder().encode(text),
    { reliable: true, topic: 'chat-data', destinationIdentities });
}

// RPC: every page answers "echo" with its identity, the caller's identity and the payload.
room.registerRpcMethod('echo', async (data) =>
  JSON.stringify({ by: room.localParticipant.identity, caller: data.callerIdentity, payload: data.payload }));

async function performRpc(destinationIdentity, payload) {
  return room.localParticipant.performRpc({ destinationIdentity, method: 'echo', payload });
}

function setVideoSize(width, height) {
  videoSize = { width, height };
  for (const el of elements.values()) if (el.tagName === 'VIDEO') sizeElement(el);
}

async function disconnect() {
  canvasTimers.forEach((t) => clearInterval(t));
  await room.disconnect();
}

function state() {
  return {
    identity: room.localParticipant.identity,
    sid: room.localParticipant.sid,
    state: room.state,
    connected: room.state === ConnectionState.Connected,
    remoteParticipants: [...room.remoteParticipants.values()].map(participantInfo),
    events: events.slice(),
    textReceived: textReceived.slice(),
    dataReceived: dataReceived.slice(),
  };
}

window.sanke = {
  sdkVersion,
  roomOptions,
  connect,
  connectExpectingError,
  publishCamera,
  publishMicrophone,
  setMicrophoneEnabled,
  unpublishTrack,
  publishCanvas,
  performRpc,
  sendText,
  publishData,
  setVideoSize,
  stats,
  state,
  disconnect,
  startSampler: (ms) => sampler.start(ms),
  stopSampler: () => sampler.stop(),
  samples: (since) => sampler.series(since),
  room,
};
setStatus();
