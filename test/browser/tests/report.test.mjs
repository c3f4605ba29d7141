// Unit tests of lib/report.mjs on stat series shaped as page/sampler.js records them: the
// freeze and concealment arithmetic of the rural report. No browser needed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fittingWidth, parseMetrics } from '../lib/rural.mjs';
import { audioReport, avSyncMs, fmtSpread, freezes, report, settledAt, spread, trackSeries, videoReport, widthShares } from '../lib/report.mjs';

const T0 = 1_700_000_000_000;

/**
 * videoSeries samples every `step` ms for `ms` ms a video decoding `fps` frames per second,
 * except during the stalls ([from, to) in ms after T0), at width(t); base frames were decoded
 * before the window.
 */
function videoSeries({ ms, step = 250, fps = 30, stalls = [], width = () => 1280, chromium = {}, base = 1000 }) {
  const out = [];
  let frames = base;
  let last = 0;
  for (let t = 0; t <= ms; t += step) {
    // Frames presented in (last, t], minus those in stalls.
    for (let f = Math.floor((last * fps) / 1000) + 1; f <= Math.floor((t * fps) / 1000); f++) {
      const ft = (f * 1000) / fps;
      if (!stalls.some(([a, b]) => ft >= a && ft < b)) frames++;
    }
    last = t;
    out.push({ at: T0 + t, t, framesDecoded: frames, frameWidth: width(t), freezeCount: chromium.count?.(t) ?? 0,
      totalFreezesDuration: chromium.seconds?.(t) ?? 0, packetsReceived: t, packetsLost: 0 });
  }
  return out;
}

function audioSeries({ ms, step = 250, concealedPerStep = () => 0, silentPerStep = () => 0 }) {
  const out = [];
  let total = 0;
  let concealed = 0;
  let silent = 0;
  for (let t = 0; t <= ms; t += step) {
    out.push({ at: T0 + t, t, totalSamplesReceived: total, concealedSamples: concealed, silentConcealedSamples: silent,
      packetsReceived: t / 20, packetsLost: 0 });
    total += 48 * step;
    concealed += concealedPerStep(t);
    silent += silentPerStep(t);
  }
  return out;
}

describe('report.mjs', () => {
  it('a smooth video has no freeze, its frame rate and one width', () => {
    const s = videoSeries({ ms: 20000 });
    const r = videoReport(s, T0, T0 + 20000);
    assert.equal(r.gapFreezes, 0);
    assert.equal(r.gapFrozenMs, 0);
    assert.equal(r.frozenShare, 0);
    assert.ok(Math.abs(r.fps - 30) < 0.5, `fps ${r.fps}`);
    assert.deepEqual(r.widths, { 1280: 1 });
  });

  it('a 1.5 s stall is one freeze of about 1.5 s (within a sampling step), a 100 ms one none', () => {
    const s = videoSeries({ ms: 20000, stalls: [[5000, 6500], [10000, 10100]] });
    const f = freezes(s, T0, T0 + 20000);
    assert.equal(f.count, 1, JSON.stringify(f));
    assert.ok(f.list[0].ms >= 1250 && f.list[0].ms <= 1750, JSON.stringify(f));
    assert.ok(f.list[0].from >= T0 + 4750 && f.list[0].from <= T0 + 5000, JSON.stringify(f));
    const r = videoReport(s, T0, T0 + 20000);
    assert.equal(r.longestFreezeMs, f.list[0].ms);
    assert.ok(Math.abs(r.gapFrozenShare - f.list[0].ms / 20000) < 1e-9);
    // The width held is 0 (no frame) for the stall's samples.
    assert.ok(r.widths[0] > 0.05 && r.widths[0] < 0.09, JSON.stringify(r.widths));
  });

  it('a window frozen but for two frames is frozen, whatever the mean frame rate over it', () => {
    const s = videoSeries({ ms: 8000, stalls: [[100, 8001]] });
    const f = freezes(s, T0, T0 + 8000);
    assert.ok(f.totalMs >= 7500, JSON.stringify(f));
    assert.ok(f.thresholdMs <= 600, JSON.stringify(f));
  });

  it('nothing decoded after the last frame and before the first counts as frozen', () => {
    const s = videoSeries({ ms: 10000, stalls: [[0, 2000], [8000, 11000]], base: 0 });
    const f = freezes(s, T0, T0 + 10000);
    assert.equal(f.count, 2, JSON.stringify(f));
    assert.equal(f.list[0].edge, 'before the first frame');
    assert.equal(f.list[1].edge, 'after the last frame');
    assert.ok(Math.abs(f.totalMs - 4000) <= 500, JSON.stringify(f));
    const none = freezes(s.map((x) => ({ ...x, framesDecoded: 0 })), T0, T0 + 10000);
    assert.equal(none.totalMs, 10000);
  });

  it('Chromium\'s freeze counters are counted as increases over the window', () => {
    const s = videoSeries({ ms: 10000, chromium: { count: (t) => (t >= 4000 ? 3 : 1), seconds: (t) => (t >= 4000 ? 2.5 : 0.5) } });
    const r = videoReport(s, T0, T0 + 10000);
    assert.equal(r.freezeCount, 2);
    assert.equal(r.totalFreezesMs, 2000);
    assert.ok(Math.abs(r.chromiumFrozenShare - 0.2) < 1e-9);
    assert.equal(r.frozenShare, 0.2, 'the larger of Chromium\'s and ours');
  });

  it('a replaced track (counters back to zero) adds up across the reset', () => {
    const a = videoSeries({ ms: 5000 });
    const b = videoSeries({ ms: 5000, base: 0 }).map((x) => ({ ...x, at: x.at + 5250 }));
    const r = videoReport([...a, ...b], T0, T0 + 10250);
    assert.ok(Math.abs(r.framesDecoded - 300) <= 2, `frames ${r.framesDecoded}`);
  });

  it('the concealed ratio is Δconcealed / ΔtotalSamplesReceived', () => {
    // 20 steps of 250 ms = 240 000 samples; 2 400 concealed in each of 5 steps = 12 000: 5%.
    const s = audioSeries({ ms: 5000, concealedPerStep: (t) => (t >= 1000 && t < 2250 ? 2400 : 0) });
    const r = audioReport(s);
    assert.equal(r.totalSamples, 240000);
    assert.equal(r.concealedSamples, 12000);
    assert.equal(r.concealedRatio, 0.05);
    // Over a later window only: nothing concealed.
    assert.equal(audioReport(s.filter((x) => x.t >= 2500)).concealedRatio, 0);
  });

  it('the audible concealed ratio leaves out the samples Chromium found silent', () => {
    // 5% concealed as above, 3 of every 4 concealed samples silent (a loss in a pause): 1.25% heard.
    const s = audioSeries({ ms: 5000, concealedPerStep: (t) => (t >= 1000 && t < 2250 ? 2400 : 0),
      silentPerStep: (t) => (t >= 1000 && t < 2250 ? 1800 : 0) });
    const r = audioReport(s);
    assert.equal(r.concealedRatio, 0.05);
    assert.equal(r.silentConcealedSamples, 9000);
    assert.equal(r.audibleConcealedRatio, 0.0125);
  });

  it('the jitter buffer delay is the mean over what was emitted in the window', () => {
    // 100 emitted per step, 8 s of delay each step (80 ms each) before 2 s, 24 s (240 ms) after.
    const s = audioSeries({ ms: 4000 }).map((x) => ({ ...x, jitterBufferEmittedCount: x.t / 2.5,
      jitterBufferDelay: x.t < 2000 ? (x.t / 250) * 8 : 64 + ((x.t - 2000) / 250) * 24 }));
    assert.equal(Math.round(audioReport(s).jitterBufferMs), 160);
    assert.equal(Math.round(audioReport(s.filter((x) => x.t >= 2000)).jitterBufferMs), 240);
    assert.equal(audioReport(s.map(({ jitterBufferDelay, ...x }) => x)).jitterBufferMs, undefined);
  });

  it('audio ahead of video: the playout timestamps compared at each sample, less each report\'s time', () => {
    // The video plays what was captured 300 ms before the audio does; its stats were read 5 ms later.
    const audio = [0, 250, 500].map((t) => ({ at: T0 + t, timestamp: T0 + t, estimatedPlayoutTimestamp: 9000 + t }));
    const video = [0, 250, 500].map((t) => ({ at: T0 + t, timestamp: T0 + t + 5, estimatedPlayoutTimestamp: 8700 + t + 5 }));
    assert.equal(avSyncMs(audio, video), 300);
    assert.equal(avSyncMs(audio, video.map(({ estimatedPlayoutTimestamp, ...v }) => v)), undefined);
  });

  it('settledAt finds when the width that fits holds for good', () => {
    const s = videoSeries({ ms: 10000, width: (t) => (t < 3000 ? 1280 : t < 4000 ? 320 : 640) });
    assert.equal(settledAt(s, (x) => x.frameWidth === 640), T0 + 4000);
    assert.equal(settledAt(s, (x) => x.frameWidth <= 640), T0 + 3000);
    assert.equal(settledAt(s, (x) => x.frameWidth === 1280), undefined);
    assert.deepEqual(Object.keys(widthShares(s)).sort(), ['1280', '320', '640']);
  });

  it('report picks the publisher\'s camera and microphone out of the page samples', () => {
    const v = videoSeries({ ms: 4000 });
    const a = audioSeries({ ms: 4000, concealedPerStep: () => 120 });
    const samples = v.map((x, i) => ({
      at: x.at,
      t: x.t,
      tracks: [
        { trackSid: 'TR_v', kind: 'video', source: 'camera', from: 'teacher', in: x, rtt: 0.1 },
        { trackSid: 'TR_a', kind: 'audio', source: 'microphone', from: 'teacher', in: a[i], rtt: 0.12 },
        { trackSid: 'TR_o', kind: 'video', source: 'camera', from: 'other', in: { framesDecoded: 0 } },
      ],
    }));
    assert.equal(trackSeries(samples, { kind: 'video', from: 'teacher' }).length, v.length);
    const r = report({ samples, firstDecodedMs: 700 }, { publisher: 'teacher' });
    assert.equal(r.ttffMs, 700);
    assert.equal(r.windowMs, 4000);
    assert.ok(Math.abs(r.audio.concealedRatio - 0.01) < 1e-9, `${r.audio.concealedRatio}`);
    assert.ok(Math.abs(r.video.fps - 30) < 0.5);
    assert.equal(r.rttMs, 110);
  });

  // A series recorded by R1 (tests/rural.test.mjs): 16 s of a Chromium receiver through linksim
  // at 20% loss (testdata/rural-loss20-sanke.json, the note in it says where from).
  it('a recorded series at 20% loss: concealment and freezes as the raw counters say', () => {
    const rec = JSON.parse(readFileSync(new URL('./testdata/rural-loss20-sanke.json', import.meta.url), 'utf8'));
    const v = trackSeries(rec.samples, { kind: 'video', source: 'camera', from: 'teacher' });
    const a = trackSeries(rec.samples, { kind: 'audio', source: 'microphone', from: 'teacher' });
    const [from, to] = [v[0].at, v.at(-1).at];
    // Audio: no counter reset in the recording, so the ratio is that of the end values.
    const raw = (a.at(-1).concealedSamples - a[0].concealedSamples) / (a.at(-1).totalSamplesReceived - a[0].totalSamplesReceived);
    assert.equal(audioReport(a).concealedRatio, raw);
    assert.ok(raw > 0.15 && raw < 0.25, `a 20% loss conceals about 20% of the samples: ${raw}`);
    // Video: every freeze found spans samples without a new frame and ends on a new frame, and
    // every stretch without one at least the threshold long is a freeze found.
    const f = freezes(v, from, to);
    const at = new Map(v.map((s, i) => [s.at, i]));
    for (const fr of f.list) {
      const [i, j] = [at.get(fr.from), at.get(fr.to)];
      assert.ok(i !== undefined && j !== undefined && j > i + 1, JSON.stringify(fr));
      for (let k = i + 1; k < j; k++) assert.equal(v[k].framesDecoded, v[i].framesDecoded, `no frame inside ${JSON.stringify(fr)}`);
      assert.ok(v[j].framesDecoded > v[j - 1].framesDecoded, `a frame ends ${JSON.stringify(fr)}`);
    }
    let runStart = 0;
    for (let k = 1; k < v.length; k++) {
      if (v[k].framesDecoded === v[k - 1].framesDecoded) continue;
      if (v[k].at - v[runStart].at >= f.thresholdMs && k > runStart + 1) {
        assert.ok(f.list.some((fr) => fr.from === v[runStart].at && fr.to === v[k].at), `stall ${runStart}..${k} found`);
      }
      runStart = k;
    }
    // Read off the recording by eye: framesDecoded stays at 290 for 15 samples (3.7 s).
    assert.equal(f.longestMs, 3737);
    assert.equal(f.count, 7);
    const r = videoReport(v, from, to);
    // Chromium counted 18 freezes here, the short ones included that 250 ms sampling cannot
    // see: the frozen share is the larger figure.
    assert.equal(r.freezeCount, v.at(-1).freezeCount - v[0].freezeCount);
    assert.ok(r.chromiumFrozenShare > r.gapFrozenShare);
    assert.equal(r.frozenShare, r.chromiumFrozenShare);
    assert.ok(Math.abs(r.gapFrozenShare - f.totalMs / (to - from)) < 1e-12);
  });

  it('the layer that fits a line, from the files\' bitrates or a Chromium publisher\'s measured ones', () => {
    const files = [{ rid: 'q', width: 320, bitrate: 160000 }, { rid: 'h', width: 640, bitrate: 530000 }, { rid: 'f', width: 1280, bitrate: 1600000 }];
    assert.equal(fittingWidth(files, 1_000_000), 640);
    assert.equal(fittingWidth(files, 200_000), 0);
    const chromium = { f: { frameWidth: 1280, bps: 760000 }, h: { frameWidth: 640, bps: 335000 }, q: { frameWidth: 320, bps: undefined } };
    // 1280 px would run a 1 Mbit/s line at 96% with the voice: no room for its keyframes.
    assert.equal(fittingWidth(chromium, 1_000_000), 640);
    assert.equal(fittingWidth(chromium, 1_200_000), 1280);
    assert.equal(fittingWidth(chromium, 550_000), 640);
    assert.equal(fittingWidth(undefined, 1_000_000), 0);
  });

  it('Prometheus counters are summed by name over their labels', () => {
    const m = parseMetrics('# HELP x\nsanke_nacks_total 12\nlivekit_nack_total{kind="video"} 3\nlivekit_nack_total{kind="audio"} 4\nbad line\n');
    assert.deepEqual(m, { sanke_nacks_total: 12, livekit_nack_total: 7 });
  });

  it('spreads render as median (min-max)', () => {
    assert.equal(fmtSpread(spread([0.2, 0.04, 0.1]), { k: 100 }), '10.0 (4.0-20.0)');
    assert.equal(fmtSpread(spread([undefined])), '-');
    assert.equal(fmtSpread(spread([3]), { d: 0 }), '3');
  });
});
