// The receiver-side quality report of the rural tests and benchmark: what a Chromium receiver's
// getStats() said over a window (the series page/sampler.js records), turned into the figures
// of issue 14: audio concealed share, video frozen share (Chromium's own freeze counters and a
// gap-based figure of ours from framesDecoded), longest freeze, decoded frames per second, the
// layer (frame width) held, time to first frame, RTT. Pure functions of the series, so they are
// tested on recorded series (tests/report.test.mjs). Node's own modules only.

/**
 * trackSeries returns the samples of one remote track, oldest first: { at, t, streamState,
 * rtt, ...counters }. The track is the first with the given kind (and source and from, when
 * given) that appears in the samples; a track that was replaced (a new sid) is followed to the
 * newest one, its counters starting again from zero.
 */
export function trackSeries(samples, { kind, source, from } = {}) {
  const out = [];
  for (const s of samples) {
    const tr = s.tracks.filter((x) => x.kind === kind && (!source || x.source === source) && (!from || x.from === from)).at(-1);
    if (!tr) continue;
    out.push({ at: s.at, t: s.t, trackSid: tr.trackSid, streamState: tr.streamState, rtt: tr.rtt, ...tr.in });
  }
  return out;
}

/** delta returns the increase of counter key from a to b (0 across a reset, when b < a). */
function delta(a, b, key) {
  const x = a?.[key] ?? 0;
  const y = b?.[key] ?? 0;
  return y >= x ? y - x : y;
}

/** sumDelta adds up the increases of key over consecutive samples (survives counter resets). */
function sumDelta(series, key) {
  let sum = 0;
  for (let i = 1; i < series.length; i++) sum += delta(series[i - 1], series[i], key);
  return sum;
}

/**
 * jitterBufferMs returns the mean time the window's samples (audio) or frames (video) spent in
 * Chromium's jitter buffer, in ms (Δ jitterBufferDelay / Δ jitterBufferEmittedCount): the
 * playout delay a receiver pays, on top of the network's; undefined without the counters.
 */
function jitterBufferMs(series) {
  if (!series.some((x) => x.jitterBufferDelay !== undefined)) return undefined;
  const emitted = sumDelta(series, 'jitterBufferEmittedCount');
  return emitted > 0 ? (1000 * sumDelta(series, 'jitterBufferDelay')) / emitted : undefined;
}

/** within returns the samples with from <= at <= to. */
export function within(series, from, to) {
  return series.filter((s) => s.at >= from && s.at <= to);
}

function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return undefined;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/**
 * audioReport: over the window's samples of an audio track, the concealed share of the samples
 * played (Δ concealedSamples / Δ totalSamplesReceived: what the receiver made up), its audible
 * share (audibleConcealedRatio: less Δ silentConcealedSamples, the concealed samples Chromium
 * found silent: a loss while the speaker is quiet, DTX's comfort noise, a concealment faded
 * out; no listener hears those), the concealment events, the packets lost and received,
 * NACKs sent, FEC packets received and the mean jitter buffer delay.
 */
export function audioReport(series) {
  if (series.length < 2) return { samples: series.length };
  const total = sumDelta(series, 'totalSamplesReceived');
  const concealed = sumDelta(series, 'concealedSamples');
  const silent = sumDelta(series, 'silentConcealedSamples');
  const lost = sumDelta(series, 'packetsLost');
  const received = sumDelta(series, 'packetsReceived');
  return {
    samples: series.length,
    totalSamples: total,
    concealedSamples: concealed,
    concealedRatio: total > 0 ? concealed / total : undefined,
    silentConcealedSamples: silent,
    audibleConcealedRatio: total > 0 ? Math.max(concealed - silent, 0) / total : undefined,
    concealmentEvents: sumDelta(series, 'concealmentEvents'),
    packetsLost: lost,
    packetsReceived: received,
    lossRatio: lost + received > 0 ? lost / (lost + received) : undefined,
    nackCount: sumDelta(series, 'nackCount'),
    fecPacketsReceived: sumDelta(series, 'fecPacketsReceived'),
    jitterBufferMs: jitterBufferMs(series),
  };
}

/**
 * freezes finds the video's freezes from framesDecoded over the window [from, to] (ms epoch):
 * a freeze is a stretch with no frame decoded longer than max(3 × the frame interval,
 * interval + 150 ms) (Chromium's definition, webrtc-stats freezeCount), measured from the last
 * sample that saw a new frame to the first one that saw the next, so its resolution is the
 * sampling interval: a stall shorter than about two intervals escapes it (Chromium's counters
 * see those; videoReport's frozenShare takes the larger of the two figures). Time in the window before the track's first decoded frame, and after its
 * last, counts as frozen too (nothing to see). Returns { count, totalMs, longestMs, list }.
 */
export function freezes(series, from, to) {
  const list = [];
  // The frame interval while frames come: the median over the samples that saw new frames
  // (a mean over the window would stretch with the freezes themselves), within 60 to 5 fps.
  const intervals = [];
  for (let i = 1; i < series.length; i++) {
    const n = delta(series[i - 1], series[i], 'framesDecoded');
    if (n > 0) intervals.push((series[i].at - series[i - 1].at) / n);
  }
  const mean = Math.min(200, Math.max(1000 / 60, median(intervals) ?? 100));
  const threshold = Math.max(3 * mean, mean + 150);
  const first = series.findIndex((s) => (s.framesDecoded ?? 0) > 0);
  let lastNew = first >= 0 ? series[first].at : undefined;
  if (first < 0) {
    if (to > from) list.push({ from, to, ms: to - from, edge: 'no frame' });
  } else if (series[first].at > from && series[first].at - from >= threshold) {
    list.push({ from, to: series[first].at, ms: series[first].at - from, edge: 'before the first frame' });
  }
  for (let i = Math.max(first, 0) + 1; first >= 0 && i < series.length; i++) {
    if (delta(series[i - 1], series[i], 'framesDecoded') > 0) {
      const gap = series[i].at - lastNew;
      // The frame came after the previous sample: lastNew .. series[i].at spans the stall.
      if (gap >= threshold && series[i - 1].at > lastNew) list.push({ from: lastNew, to: series[i].at, ms: gap });
      lastNew = series[i].at;
    }
  }
  if (first >= 0 && to - lastNew >= threshold) list.push({ from: lastNew, to, ms: to - lastNew, edge: 'after the last frame' });
  const totalMs = list.reduce((a, f) => a + f.ms, 0);
  return { count: list.length, totalMs, longestMs: list.reduce((a, f) => Math.max(a, f.ms), 0), thresholdMs: Math.round(threshold), list };
}

/**
 * widthShares returns, by frame width, the share of the window's time the receiver decoded
 * frames of that width (each sample's width holds until the next sample), 0 meaning no frame.
 */
export function widthShares(series) {
  const ms = {};
  let total = 0;
  for (let i = 1; i < series.length; i++) {
    const w = delta(series[i - 1], series[i], 'framesDecoded') > 0 ? series[i].frameWidth ?? 0 : 0;
    const d = series[i].at - series[i - 1].at;
    ms[w] = (ms[w] ?? 0) + d;
    total += d;
  }
  const out = {};
  for (const [w, d] of Object.entries(ms)) out[w] = total > 0 ? d / total : 0;
  return out;
}

/**
 * videoReport: over the window [from, to] (ms epoch) of a video track's samples, frames
 * decoded per second, Chromium's freezes and pauses, our gap-based freezes, the frozen share
 * (the larger of Chromium's and ours), the widths held, NACKs, PLIs, retransmissions received.
 */
export function videoReport(series, from, to) {
  const windowMs = to - from;
  const g = freezes(series, from, to);
  const chromiumFreezeMs = sumDelta(series, 'totalFreezesDuration') * 1000;
  const chromiumPauseMs = sumDelta(series, 'totalPausesDuration') * 1000;
  const chromiumFrozenShare = windowMs > 0 ? (chromiumFreezeMs + chromiumPauseMs) / windowMs : undefined;
  const gapFrozenShare = windowMs > 0 ? g.totalMs / windowMs : undefined;
  const frames = sumDelta(series, 'framesDecoded');
  const shares = widthShares(series);
  const top = Math.max(0, ...Object.keys(shares).map(Number));
  return {
    samples: series.length,
    framesDecoded: frames,
    fps: windowMs > 0 ? (frames * 1000) / windowMs : undefined,
    freezeCount: sumDelta(series, 'freezeCount'),
    totalFreezesMs: Math.round(chromiumFreezeMs),
    pauseCount: sumDelta(series, 'pauseCount'),
    totalPausesMs: Math.round(chromiumPauseMs),
    chromiumFrozenShare,
    gapFreezes: g.count,
    gapFrozenMs: g.totalMs,
    gapFrozenShare,
    longestFreezeMs: g.longestMs,
    frozenShare: Math.max(chromiumFrozenShare ?? 0, gapFrozenShare ?? 0),
    widths: shares,
    topWidth: top,
    framesDropped: sumDelta(series, 'framesDropped'),
    keyFramesDecoded: sumDelta(series, 'keyFramesDecoded'),
    nackCount: sumDelta(series, 'nackCount'),
    pliCount: sumDelta(series, 'pliCount'),
    retransmittedPacketsReceived: sumDelta(series, 'retransmittedPacketsReceived'),
    packetsLost: sumDelta(series, 'packetsLost'),
    packetsReceived: sumDelta(series, 'packetsReceived'),
    jitterBufferMs: jitterBufferMs(series),
  };
}

/**
 * settledAt returns the time (ms epoch) of the first sample from which every later sample of
 * the series that decoded a new frame satisfies ok(sample) (e.g. the width that fits the
 * line), or undefined when the last such sample does not.
 */
export function settledAt(series, ok) {
  let at;
  for (let i = 1; i < series.length; i++) {
    if (delta(series[i - 1], series[i], 'framesDecoded') === 0) continue;
    if (ok(series[i])) at ??= series[i].at;
    else at = undefined;
  }
  return at;
}

/** firstAt returns the time (ms epoch) of the first sample at or after since with ok(sample). */
export function firstAt(series, since, ok) {
  return series.find((s) => s.at >= since && ok(s))?.at;
}

/**
 * report is the whole receiver report of a window: data is what the page's samples(since)
 * returned; from and to bound the window (ms epoch); the tracks are the first camera and
 * microphone of identity from.
 */
export function report(data, { from, to, publisher } = {}) {
  const video = trackSeries(data.samples, { kind: 'video', source: 'camera', from: publisher });
  const audio = trackSeries(data.samples, { kind: 'audio', source: 'microphone', from: publisher });
  const start = from ?? data.samples[0]?.at ?? 0;
  const end = to ?? data.samples.at(-1)?.at ?? start;
  const vw = within(video, start, end);
  const aw = within(audio, start, end);
  return {
    windowMs: end - start,
    ttffMs: data.firstFrameMs ?? data.firstDecodedMs,
    firstDecodedMs: data.firstDecodedMs,
    audio: audioReport(aw),
    video: videoReport(vw, start, end),
    rttMs: median([...vw, ...aw].map((s) => (s.rtt === undefined ? undefined : s.rtt * 1000))),
    avSyncMs: avSyncMs(aw, vw),
    streamStates: [...new Set(vw.map((s) => s.streamState).filter(Boolean))],
  };
}

/**
 * avSyncMs returns the median, over the samples that saw both, of how far ahead of the video
 * the audio plays (ms of capture time; negative: behind): Chromium's estimatedPlayoutTimestamp
 * of each (the sender's NTP time of what plays now), each less its report's timestamp, so the
 * few ms between the two getStats() calls do not count. undefined without the counters.
 */
export function avSyncMs(audio, video) {
  const byAt = new Map(audio.map((s) => [s.at, s]));
  const offsets = [];
  for (const v of video) {
    const a = byAt.get(v.at);
    if (!a?.estimatedPlayoutTimestamp || !v.estimatedPlayoutTimestamp || !a.timestamp || !v.timestamp) continue;
    offsets.push((a.estimatedPlayoutTimestamp - a.timestamp) - (v.estimatedPlayoutTimestamp - v.timestamp));
  }
  return median(offsets);
}

/** spread summarizes numbers as { median, min, max, n } (undefined ones left out). */
export function spread(values) {
  const v = values.filter((x) => Number.isFinite(x));
  if (!v.length) return { n: 0 };
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/**
 * fmtSpread renders a spread as "median (min-max)" with d decimals, scaled by k (e.g. 100 for a
 * share in percent); '-' when empty.
 */
export function fmtSpread(s, { d = 1, k = 1 } = {}) {
  if (!s.n) return '-';
  const f = (x) => (x * k).toFixed(d);
  return s.n === 1 ? f(s.median) : `${f(s.median)} (${f(s.min)}-${f(s.max)})`;
}
