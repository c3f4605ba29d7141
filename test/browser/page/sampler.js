// The quality sampler of the rural tests: every few hundred milliseconds it reads getStats() of
// each remote track and keeps the counters that say what a receiver saw and heard (audio
// concealment, video freezes, frames decoded, the layer's width, RTT). The Node side turns the
// series into a report (lib/report.mjs); the page only records.

// Counters of inbound-rtp kept per sample (Chromium's names; absent ones are left out).
const AUDIO_KEYS = ['packetsReceived', 'packetsLost', 'totalSamplesReceived', 'concealedSamples', 'silentConcealedSamples',
  'concealmentEvents', 'insertedSamplesForDeceleration', 'removedSamplesForAcceleration', 'nackCount', 'fecPacketsReceived',
  'fecPacketsDiscarded', 'jitterBufferDelay', 'jitterBufferEmittedCount', 'bytesReceived', 'estimatedPlayoutTimestamp', 'timestamp'];
const VIDEO_KEYS = ['packetsReceived', 'packetsLost', 'framesReceived', 'framesDecoded', 'framesDropped', 'keyFramesDecoded',
  'freezeCount', 'totalFreezesDuration', 'pauseCount', 'totalPausesDuration', 'frameWidth', 'frameHeight', 'framesPerSecond',
  'nackCount', 'pliCount', 'firCount', 'retransmittedPacketsReceived', 'jitterBufferDelay', 'jitterBufferEmittedCount',
  'bytesReceived', 'ssrc', 'estimatedPlayoutTimestamp', 'timestamp'];

function pick(o, keys) {
  const out = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

// selectedPair returns the selected candidate pair of a stats report, or undefined.
function selectedPair(report) {
  let pairId;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  let pair = pairId && report.get(pairId);
  if (!pair) report.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
  return pair;
}

/**
 * Sampler samples a livekit-client Room's remote tracks. elements() returns the page's map of
 * track sid -> attached media element, whose first presented video frame gives the time to
 * first frame (requestVideoFrameCallback; the first sample with framesDecoded > 0 stands in
 * when a background page presents nothing).
 */
export class Sampler {
  constructor(room, elements) {
    this.room = room;
    this.elements = elements;
    this.samples = [];
    this.timer = undefined;
    this.startAt = undefined; // performance.now() at start (connect)
    this.startEpoch = undefined;
    this.firstFrame = undefined; // ms after start: first presented video frame
    this.firstDecoded = undefined; // ms after start: first sample with a decoded frame
    this.watched = new WeakSet();
    this.busy = false;
  }

  /** start samples every ms (default 250) until stop(); a second start is a no-op. */
  start(ms = 250) {
    if (this.timer) return;
    this.startAt = performance.now();
    this.startEpoch = Date.now();
    this.timer = setInterval(() => this.tick(), ms);
    this.tick();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  watchFirstFrame() {
    for (const el of this.elements().values()) {
      if (el.tagName !== 'VIDEO' || this.watched.has(el) || !el.requestVideoFrameCallback) continue;
      this.watched.add(el);
      el.requestVideoFrameCallback(() => {
        if (this.firstFrame === undefined) this.firstFrame = Math.round(performance.now() - this.startAt);
      });
    }
  }

  async tick() {
    if (this.busy) return; // a slow getStats() on a loaded machine: skip, never pile up
    this.busy = true;
    try {
      this.watchFirstFrame();
      const sample = { at: Date.now(), t: Math.round(performance.now() - this.startAt), tracks: [] };
      for (const p of this.room.remoteParticipants.values()) {
        for (const pub of p.trackPublications.values()) {
          const track = pub.track;
          if (!track || !pub.isSubscribed) continue;
          const report = await track.getRTCStatsReport().catch(() => undefined);
          if (!report) continue;
          let inbound;
          report.forEach((s) => { if (s.type === 'inbound-rtp' && !inbound) inbound = s; });
          if (!inbound) continue;
          const video = pub.kind === 'video';
          const entry = {
            trackSid: pub.trackSid,
            kind: pub.kind,
            source: pub.source,
            from: p.identity,
            streamState: track.streamState,
            in: pick(inbound, video ? VIDEO_KEYS : AUDIO_KEYS),
          };
          const pair = selectedPair(report);
          if (pair) {
            entry.rtt = pair.currentRoundTripTime;
            const local = report.get(pair.localCandidateId);
            entry.candidate = local?.candidateType;
          }
          if (video && this.firstDecoded === undefined && inbound.framesDecoded > 0) this.firstDecoded = sample.t;
          sample.tracks.push(entry);
        }
      }
      this.samples.push(sample);
      if (this.samples.length > 20000) this.samples.splice(0, this.samples.length - 20000);
    } finally {
      this.busy = false;
    }
  }

  /**
   * series returns what was sampled at or after since (ms epoch; default all): the samples,
   * and the start (connect) time with the times to the first decoded and presented frames.
   */
  series(since = 0) {
    return {
      startEpoch: this.startEpoch,
      firstDecodedMs: this.firstDecoded,
      firstFrameMs: this.firstFrame,
      samples: this.samples.filter((s) => s.at >= since),
    };
  }
}
