// The rural scenarios of issue 14, shared by the CI tests (tests/rural.test.mjs) and the
// benchmark (bench/rural.mjs, scripts/rural-bench.sh): a publisher on a clean link, a Chromium
// receiver forced through `sanke linksim` (loss, delay, jitter, rate, a rate schedule), its
// getStats() sampled (page/sampler.js) and turned into the receiver report (report.mjs), next
// to what the server says of itself (its Prometheus counters and log lines). The same run
// works against Sanke and against livekit-server 1.13.5.
import { execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FilePublisher, freeTcpPort, freeUdpPort, pollUntil, sleep } from './harness.mjs';
import { LineLog } from './linelog.mjs';
import { startLinkSim } from './linksim.mjs';
import { audioReport, freezes, report, settledAt, spread, trackSeries, videoReport, widthShares, within } from './report.mjs';

const execFileP = promisify(execFile);

/** The link of each scenario (both ways; delay is one way, so RTT is twice it). */
export const SCENARIOS = {
  clean: { title: '0% loss (control), 100 ms RTT, 3 Mbit/s', link: { delay: 50, rate: '3mbit' } },
  loss20: { title: '20% random loss, 100 ms RTT, 3 Mbit/s', link: { loss: 0.2, delay: 50, rate: '3mbit' } },
  thin1m: { title: '1 Mbit/s, 50 ms RTT, 2% loss', link: { rate: '1mbit', delay: 25, loss: 0.02 }, fits: 1_000_000 },
  drop: { title: '3 Mbit/s falling to 500 kbit/s and back, 50 ms RTT', link: { rate: '3mbit', delay: 25 }, drop: '500kbit' },
  bursty: { title: 'bursty loss (Gilbert-Elliott, 10% average, 50 ms bursts), 100 ms RTT, 3 Mbit/s',
    link: { loss: 0.1, burst: 50, delay: 50, rate: '3mbit' } },
  // The publisher (a pupil called on) behind the relay, the receiver (the teacher) on a clean
  // link: runUplink.
  uplink: { title: 'uplink: the publisher\'s 3 Mbit/s falling to 1 Mbit/s with 5% loss, 100 ms RTT', link: { rate: '3mbit', delay: 50 },
    thin: { rate: '1mbit', loss: 0.05 }, line: 1_000_000, uplink: true },
};

/** The key and secret both servers sign with in the benchmark. */
export const BENCH_KEY = 'ruralkey';
export const BENCH_SECRET = 'rural-bench-secret-0123456789abcdef012345';

/** parseMetrics sums the samples of a Prometheus text exposition by metric name. */
export function parseMetrics(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)/);
    if (!m) continue;
    const v = Number(m[2]);
    if (Number.isFinite(v)) out[m[1]] = (out[m[1]] ?? 0) + v;
  }
  return out;
}

/** metricDeltas returns, for the metrics named like re, their increase from a to b. */
function metricDeltas(a, b, re) {
  const out = {};
  for (const [k, v] of Object.entries(b)) if (re.test(k) && !/_bucket$|_sum$|_count$/.test(k)) out[k] = v - (a[k] ?? 0);
  return out;
}

/**
 * LiveKitServer runs livekit-server (1.13.5 in the benchmark) on loopback with one UDP port,
 * no ICE-TCP and no TURN, logging at info, with Prometheus on a port of its own. Its log is
 * kept like SankeServer's.
 */
export class LiveKitServer {
  constructor({ bin, workDir, sankeBin }) {
    this.bin = bin;
    this.workDir = workDir;
    this.sankeBin = sankeBin;
    this.log = new LineLog(50000);
    this.name = 'livekit';
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}`;
  }

  get metricsUrl() {
    return `http://127.0.0.1:${this.promPort}/metrics`;
  }

  async start() {
    this.port = await freeTcpPort();
    this.promPort = await freeTcpPort();
    this.udpPort = await freeUdpPort();
    const conf = join(this.workDir, 'livekit.yaml');
    await writeFile(conf, `port: ${this.port}
bind_addresses: ["127.0.0.1"]
prometheus:
  port: ${this.promPort}
rtc:
  udp_port: ${this.udpPort}
  tcp_port: 0
  use_external_ip: false
  node_ip: 127.0.0.1
  enable_loopback_candidate: true
keys:
  ${BENCH_KEY}: ${BENCH_SECRET}
logging:
  level: info
`);
    const proc = spawn(this.bin, ['--config', conf], { cwd: this.workDir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    this.exited = new Promise((res) => proc.once('exit', (code, signal) => res({ code, signal })));
    this.log.follow(proc.stdout);
    this.log.follow(proc.stderr);
    let exited = false;
    this.exited.then(() => { exited = true; });
    await pollUntil(async () => {
      if (exited) throw new Error(`livekit-server exited during start:\n${this.log.tail(30).join('\n')}`);
      const res = await fetch(`http://127.0.0.1:${this.port}/`).catch(() => undefined);
      return res?.ok;
    }, { timeout: 60000, interval: 200, what: 'livekit-server answering' });
  }

  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 15000);
    await this.exited;
    clearTimeout(timer);
  }

  mark() {
    return this.log.mark();
  }

  since(mark) {
    return this.log.since(mark);
  }

  async token(room, identity) {
    const { stdout } = await execFileP(this.sankeBin, ['token', '--room', room, '--identity', identity,
      '--api-key', BENCH_KEY, '--api-secret', BENCH_SECRET]);
    return stdout.trim();
  }
}

/** scrape reads the server's Prometheus counters (Sanke's /metrics, LiveKit's port), or {}. */
async function scrape(server) {
  const url = server.metricsUrl ?? `${server.httpUrl}/metrics`;
  const res = await fetch(url).catch(() => undefined);
  return res?.ok ? parseMetrics(await res.text()) : {};
}

/**
 * serverLog reads what a server's log says of the downlink: Sanke's allocator's "downlink
 * budget" changes (reasons, budgets, the last layers); LiveKit's, best effort, counted lines
 * about congestion, its stream allocator, probes and pauses.
 */
function serverLog(name, lines) {
  if (name === 'sanke') {
    const budget = lines.filter((l) => l.includes('msg="downlink budget"'));
    const field = (l, k) => l.match(new RegExp(`${k}=("[^"]*"|\\S+)`))?.[1]?.replace(/"/g, '');
    const why = {};
    for (const l of budget) why[field(l, 'why')] = (why[field(l, 'why')] ?? 0) + 1;
    const kbps = budget.map((l) => Number(field(l, 'budget_kbps'))).filter(Number.isFinite);
    return {
      budgetChanges: budget.length,
      why,
      budgetKbps: kbps.length ? { first: kbps[0], min: Math.min(...kbps), max: Math.max(...kbps), last: kbps.at(-1) } : undefined,
      lastLayers: budget.length ? field(budget.at(-1), 'layers') : undefined,
    };
  }
  const count = (re) => lines.filter((l) => re.test(l)).length;
  return {
    bestEffort: true,
    congestionLines: count(/congest/i),
    allocatorLines: count(/stream ?allocator/i),
    probeLines: count(/probe/i),
    pausedLines: count(/pause/i),
  };
}

/** openPage opens the test page with query in a fresh context of browser. */
async function openPage(browser, pagesUrl, query) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${pagesUrl}/index.html?${new URLSearchParams(query)}`);
  await page.waitForFunction(() => window.sanke !== undefined, null, { timeout: 15000 });
  return { page, context, call: (m, ...a) => page.evaluate(([x, y]) => window.sanke[x](...y), [m, a]) };
}

/**
 * Publisher puts the camera and microphone of identity (default 'teacher') into a room, on a
 * clean link unless rtcConfig (a linksim relay's) says otherwise: kind 'chromium' is the test
 * page's fake camera (1280x720, simulcast q/h/f) and microphone; kind 'file' is
 * test/browser/filepublisher (pre-encoded layers, bitrates independent of the host's load;
 * bin is its binary).
 */
export class Publisher {
  constructor({ kind, browser, pagesUrl, bin, identity = 'teacher', rtcConfig }) {
    Object.assign(this, { kind, browser, pagesUrl, bin, identity, rtcConfig });
  }

  async start(server, room) {
    const token = await server.token(room, this.identity);
    if (this.kind === 'file') {
      this.file = new FilePublisher(this.bin);
      this.info = await this.file.start(server.wsUrl, token);
      return this.info;
    }
    const query = { label: `publisher ${this.identity}` };
    if (this.rtcConfig) query.rtc = JSON.stringify(this.rtcConfig);
    this.p = await openPage(this.browser, this.pagesUrl, query);
    await this.p.call('connect', server.wsUrl, token);
    await this.p.call('publishCamera');
    await this.p.call('publishMicrophone');
    return { kind: 'chromium' };
  }

  /**
   * layers returns what the publisher sends per simulcast layer, by rid: { at, bytesSent,
   * frameWidth, framesPerSecond, qualityLimitationReason } (a Chromium publisher; the file
   * publisher's layers are the files', in info.layers).
   */
  async layers() {
    if (!this.p) return undefined;
    const st = await this.p.call('stats').catch(() => undefined);
    const cam = st?.local.find((l) => l.source === 'camera');
    const out = {};
    for (const o of cam?.outbound ?? []) {
      out[o.rid ?? ''] = { at: Date.now(), bytesSent: o.bytesSent, frameWidth: o.frameWidth, framesPerSecond: o.framesPerSecond,
        qualityLimitationReason: o.qualityLimitationReason };
    }
    return out;
  }

  /**
   * sendSample returns what a Chromium publisher sends, as its getStats() says now: { at (the
   * stats' time, ms epoch), bytes (RTP payload and headers of every layer and the audio),
   * audioNacks and audioResent (NACKs the microphone's stream received, packets it resent),
   * layers by rid ({ bytes, width, fps, limit (qualityLimitationReason), active }), estimate
   * (the selected pair's availableOutgoingBitrate), candidate (its local candidate's type),
   * extensions (the header extensions negotiated for the camera and the microphone) };
   * undefined when the page does not answer.
   */
  async sendSample() {
    const st = await this.p?.call('stats').catch(() => undefined);
    if (!st) return undefined;
    const cam = st.local.find((l) => l.source === 'camera');
    const mic = st.local.find((l) => l.source === 'microphone');
    const sent = (o) => (o?.bytesSent ?? 0) + (o?.headerBytesSent ?? 0);
    const layers = {};
    for (const o of cam?.outbound ?? []) {
      layers[o.rid ?? ''] = { bytes: sent(o), width: o.frameWidth, fps: o.framesPerSecond, limit: o.qualityLimitationReason, active: o.active };
    }
    const audio = (mic?.outbound ?? []).reduce((a, o) => a + sent(o), 0);
    const sum = (key) => (mic?.outbound ?? []).reduce((a, o) => a + (o[key] ?? 0), 0);
    const at = cam?.outbound?.[0]?.timestamp;
    return {
      at: at > 1e12 ? Math.round(at) : Date.now(),
      bytes: audio + Object.values(layers).reduce((a, l) => a + l.bytes, 0),
      audioBytes: audio,
      audioNacks: sum('nackCount'),
      audioResent: sum('retransmittedPacketsSent'),
      layers,
      estimate: cam?.candidate?.availableOutgoingBitrate ?? mic?.candidate?.availableOutgoingBitrate,
      candidate: cam?.candidate?.candidateType ?? mic?.candidate?.candidateType,
      extensions: { camera: cam?.headerExtensions, microphone: mic?.headerExtensions },
    };
  }

  async stop() {
    await this.file?.stop();
    await this.p?.call('disconnect').catch(() => {});
    await this.p?.context.close().catch(() => {});
  }
}

/**
 * receive connects the receiving page rx (openPage, sampling) to room as identity and resolves,
 * once it decoded a frame, with the time of that frame (ms epoch); what names the wait.
 */
async function receive(rx, server, room, identity, what) {
  // A page in the background of its window presents no frames (the time to first frame).
  await rx.page.bringToFront();
  await rx.call('connect', server.wsUrl, await server.token(room, identity));
  const first = await pollUntil(async () => {
    const d = await rx.call('samples', 0);
    return d.firstDecodedMs !== undefined ? d : undefined;
  }, { timeout: 45000, interval: 250, what });
  return first.startEpoch + first.firstDecodedMs;
}

/**
 * runScenario runs one scenario once: a fresh room on server with publisher, a linksim relay
 * with the scenario's link, and a Chromium receiver through it. It measures windowMs after
 * the receiver's first frame and warmMs of settling (drop scenarios: the line falls warmMs
 * after the first frame, comes back dropMs later, and the window runs to recoverMs after
 * that). It returns the run's record: the receiver report, the scenario's own figures
 * (settling, the drop's way down and back up) and the server side; with keep, also the raw
 * samples.
 */
export async function runScenario({
  name, server, serverName, sankeBin, browser, pagesUrl, publisher, windowMs = 20000, warmMs = 5000,
  dropMs = 60000, recoverMs = 20000, keep = false, room = `rural-${name}-${Date.now()}`,
}) {
  const sc = SCENARIOS[name];
  if (!sc) throw new Error(`unknown scenario ${name}`);
  if (sc.uplink) return runUplink({ name, server, serverName, sankeBin, browser, pagesUrl, windowMs, warmMs, keep, room });
  const record = { scenario: name, title: sc.title, server: serverName, started: new Date().toISOString(), windowMs };
  let sim;
  let rx;
  try {
    await publisher.start(server, room);
    sim = await startLinkSim(sankeBin, { link: sc.link });
    record.linksim = sim.args.slice(1).join(' ');
    rx = await openPage(browser, pagesUrl, { label: `rural ${name}`, rtc: JSON.stringify(sim.rtcConfig), sample: '250',
      videoWidth: '1280', videoHeight: '720' });
    const mark = server.mark();
    const firstAt = await receive(rx, server, room, 'pupil', `${serverName} ${name}: the receiver's first decoded frame`);
    let from;
    let to;
    let before;
    let pubBefore;
    if (sc.drop) {
      // Settle, then 5 s of the full line inside the window, then the drop and the way back.
      await sleep(Math.max(0, firstAt + warmMs - Date.now()));
      before = await scrape(server);
      pubBefore = await publisher.layers();
      await sleep(5000);
      const c1 = (await sim.set({ rate: sc.drop })).at;
      await sleep(dropMs);
      const c2 = (await sim.set({ rate: sc.link.rate })).at;
      await sleep(recoverMs);
      record.drop = { at: c1, back: c2 };
      from = c1 - 5000;
      to = Date.now();
    } else {
      from = firstAt + warmMs;
      to = from + windowMs;
      await sleep(Math.max(0, from - Date.now()));
      before = await scrape(server);
      pubBefore = await publisher.layers();
      await sleep(Math.max(0, to - Date.now()));
    }
    const after = await scrape(server);
    record.publisher = publisherLayers(pubBefore, await publisher.layers(), publisher.info);
    const data = await rx.call('samples', 0);
    record.report = report(data, { from, to, publisher: 'teacher' });
    const video = trackSeries(data.samples, { kind: 'video', source: 'camera', from: 'teacher' });
    if (sc.fits) {
      // The layer that fits the line, or a higher one, held for good (from connecting): a
      // higher layer the line happens to carry (its freezes are counted after) is no failure.
      // exact*: that layer itself held for good, and the longest freeze after.
      const fitWidth = fittingWidth(record.publisher, sc.fits);
      const held = (pred) => {
        const at = settledAt(within(video, data.startEpoch, to), pred);
        return at === undefined ? [undefined, undefined] : [at - data.startEpoch, freezes(within(video, at, to), at, to).longestMs];
      };
      const [ms, longestFreezeAfterMs] = held((s) => fitWidth > 0 && s.frameWidth >= fitWidth);
      const [exactMs, exactFreezeAfterMs] = held((s) => s.frameWidth === fitWidth);
      record.settle = { fitWidth, ms, longestFreezeAfterMs, exactMs, exactFreezeAfterMs };
    }
    if (record.drop) record.drop = dropFigures(record.drop, video, trackSeries(data.samples, { kind: 'audio', source: 'microphone', from: 'teacher' }), to);
    record.serverSide = { counters: metricDeltas(before, after, /retrans|nack|pli|rtx|probe|padding/i), log: serverLog(serverName, server.since(mark)) };
    await sim.stop(); // its last line has the whole run's counters
    record.linksimCounters = sim.counters();
    if (keep) record.samples = data;
    return record;
  } finally {
    await rx?.context.close().catch(() => {});
    await publisher.stop().catch(() => {});
    await sim?.stop();
  }
}

/**
 * publisherLayers returns the publisher's layers over the window, by rid: the bitrate sent
 * (bits per second) and the width, frame rate and limitation at the end; for the file
 * publisher, its files' layers.
 */
function publisherLayers(a, b, info) {
  if (!a || !b) return info?.layers;
  const out = {};
  for (const [rid, x] of Object.entries(b)) {
    const y = a[rid];
    out[rid] = { ...x, bps: y && x.at > y.at ? Math.round(((x.bytesSent - y.bytesSent) * 8000) / (x.at - y.at)) : undefined };
    delete out[rid].at;
    delete out[rid].bytesSent;
  }
  return out;
}

/**
 * fittingWidth returns the width of the publisher's largest layer that fits a line of bps
 * (publisherLayers' record): its bitrate with 10% for headers and retransmissions, plus the
 * voice with RED at distance 1 (86 kbit/s), within 90% of the line; 0 when none does or the
 * bitrates are unknown. The 10% left is the room a layer's keyframes need: a 1280x720 layer
 * of 790 kbit/s on a 1 Mbit/s line ran it at 96%, and each of its keyframes (a switch up, a
 * recovery) stood the line's 200 ms queue full for seconds at 35-60% loss.
 */
export function fittingWidth(layers, bps) {
  const list = Array.isArray(layers)
    ? layers.map((l) => ({ width: l.width, bps: l.bitrate }))
    : Object.values(layers ?? {}).map((l) => ({ width: l.frameWidth, bps: l.bps }));
  const fit = list.filter((l) => l.width > 0 && l.bps > 0 && l.bps * 1.1 + 86000 <= 0.9 * bps);
  return Math.max(0, ...fit.map((l) => l.width));
}

/**
 * dropFigures: the way down and back up of a line that fell at c1 and came back at c2. The
 * width held before the fall is the one decoded most of its last 5 s; down is when the
 * receiver held a smaller width for good (until c2), up when it held that width again for
 * good; audio and video in between are reported as over a window.
 */
export function dropFigures({ at: c1, back: c2 }, video, audio, to) {
  const pre = widthShares(within(video, c1 - 5000, c1));
  const preWidth = Number(Object.entries(pre).filter(([w]) => w !== '0').sort((a, b) => b[1] - a[1])[0]?.[0] ?? 0);
  const down = settledAt(within(video, c1, c2), (s) => s.frameWidth > 0 && s.frameWidth < preWidth);
  const up = settledAt(within(video, c2, to), (s) => s.frameWidth >= preWidth);
  return {
    at: c1,
    back: c2,
    preWidth,
    downMs: down === undefined ? undefined : down - c1,
    upMs: up === undefined ? undefined : up - c2,
    audioLow: audioReport(within(audio, c1, c2)),
    videoLow: videoReport(within(video, c1, c2), c1, c2),
  };
}

/**
 * sendRates: what a publisher sent between from and to (ms epoch), from its sendSample()
 * series: bits per second in all (RTP payload and headers), of the audio and of each layer
 * (with its width, limitation and active flag at the end), the NACKs its audio received and
 * the audio packets it sent again, the median bandwidth estimate and the limitations its
 * layers reported.
 */
export function sendRates(series, from, to) {
  const w = series.filter((s) => s.at >= from && s.at <= to);
  if (w.length < 2 || w.at(-1).at <= w[0].at) return { samples: w.length };
  const a = w[0];
  const b = w.at(-1);
  const bps = (x, y) => Math.round(((y - x) * 8000) / (b.at - a.at));
  const layers = {};
  for (const [rid, l] of Object.entries(b.layers)) {
    layers[rid] = { bps: bps(a.layers[rid]?.bytes ?? 0, l.bytes), width: l.width, limit: l.limit, active: l.active };
  }
  return {
    samples: w.length,
    ms: b.at - a.at,
    bps: bps(a.bytes, b.bytes),
    audioBps: bps(a.audioBytes, b.audioBytes),
    audioNacks: b.audioNacks - a.audioNacks,
    audioResent: b.audioResent - a.audioResent,
    layers,
    estimate: spread(w.map((s) => s.estimate)).median,
    limits: [...new Set(w.flatMap((s) => Object.values(s.layers).map((l) => l.limit)).filter(Boolean))],
    candidates: [...new Set(w.map((s) => s.candidate).filter(Boolean))],
  };
}

/**
 * runUplink runs an uplink scenario once: the publisher (a Chromium pupil, fake camera
 * 1280x720 simulcast and fake microphone) forced through a linksim relay with the scenario's
 * link, a Chromium teacher on a clean link receiving it. Once the teacher decodes video, the
 * publisher's bandwidth estimate is given up to 40 s to climb over 1.2 times the thin line
 * (Chromium's probes and increases, judged by the server's transport-wide feedback; a start
 * whose keyframe burst overflowed the relay's queue once held it under that for 13 s) and
 * warmMs pass; then the line falls to sc.thin. The publisher has adapted when its estimate is under the line and it sent under it
 * over 2 s; the window of windowMs starts then (at the latest 30 s after the fall) and at least
 * warmMs after the fall. The record: the teacher's report over the window, uplink (climb, way
 * down, what the publisher sent before the fall and in the window), the relay's counters.
 */
async function runUplink({ name, server, serverName, sankeBin, browser, pagesUrl, windowMs, warmMs, keep, room }) {
  const sc = SCENARIOS[name];
  const record = { scenario: name, title: sc.title, server: serverName, started: new Date().toISOString(), windowMs };
  const sends = [];
  let sim;
  let pub;
  let rx;
  let stopped = false;
  let sampling;
  const lastSend = () => JSON.stringify(sends.at(-1));
  try {
    sim = await startLinkSim(sankeBin, { link: sc.link });
    record.linksim = sim.args.slice(1).join(' ');
    pub = new Publisher({ kind: 'chromium', browser, pagesUrl, identity: 'pupil', rtcConfig: sim.rtcConfig });
    await pub.start(server, room);
    sampling = (async () => {
      while (!stopped) {
        const s = await pub.sendSample();
        if (s) sends.push(s);
        await sleep(500);
      }
    })();
    rx = await openPage(browser, pagesUrl, { label: `teacher ${name}`, sample: '250', videoWidth: '1280', videoHeight: '720' });
    const mark = server.mark();
    const firstAt = await receive(rx, server, room, 'teacher', `${serverName} ${name}: the teacher's first decoded frame`);
    const published = sends[0]?.at ?? firstAt;
    const climbed = await pollUntil(() => (sends.at(-1)?.estimate >= 1.2 * sc.line ? sends.at(-1).at : undefined),
      { timeout: 40000, interval: 250, what: `the publisher's estimate over ${1.2 * sc.line} bit/s on the full line`, describe: lastSend })
      .catch(() => undefined);
    await sleep(Math.max(0, firstAt + warmMs - Date.now()));
    const pre = sendRates(sends, Date.now() - 3000, Date.now());
    const before = await scrape(server);
    const fell = (await sim.set(sc.thin)).at;
    const adapted = await pollUntil(() => {
      const last = sends.at(-1);
      if (!last || last.at < fell + 2000 || !(last.estimate < sc.line)) return undefined;
      return sendRates(sends, last.at - 2000, last.at).bps < sc.line ? last.at : undefined;
    }, { timeout: 30000, interval: 250, what: `the publisher under ${sc.line} bit/s`, describe: lastSend }).catch(() => undefined);
    const from = Math.max(adapted ?? 0, fell + warmMs, Date.now());
    const to = from + windowMs;
    await sleep(Math.max(0, to - Date.now()));
    // The window is judged on the publisher's samples too: wait for one taken after it.
    await pollUntil(() => sends.at(-1)?.at >= to, { timeout: 15000, interval: 100, what: 'a publisher sample after the window', describe: lastSend });
    const after = await scrape(server);
    const data = await rx.call('samples', 0);
    record.report = report(data, { from, to, publisher: 'pupil' });
    const video = within(trackSeries(data.samples, { kind: 'video', source: 'camera', from: 'pupil' }), to - 5000, to);
    record.uplink = {
      line: sc.line,
      extensions: sends.at(-1)?.extensions,
      climbMs: climbed === undefined ? undefined : climbed - published,
      before: pre,
      fell,
      downMs: adapted === undefined ? undefined : adapted - fell,
      window: sendRates(sends, from, to),
      framesLast5s: video.length > 1 ? (video.at(-1).framesDecoded ?? 0) - (video[0].framesDecoded ?? 0) : 0,
    };
    record.publisher = record.uplink.window.layers;
    record.serverSide = { counters: metricDeltas(before, after, /retrans|nack|pli|rtx|probe|padding/i), log: serverLog(serverName, server.since(mark)) };
    await sim.stop();
    record.linksimCounters = sim.counters();
    if (keep) Object.assign(record, { samples: data, sends });
    return record;
  } finally {
    stopped = true;
    await sampling;
    await rx?.context.close().catch(() => {});
    await pub?.stop().catch(() => {});
    await sim?.stop();
  }
}
