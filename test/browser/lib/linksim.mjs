// A weak link for the browser tests and the rural benchmark: `sanke linksim` (internal/linksim,
// an impairing TURN relay) in its own process, so its CPU is not the test runner's. A page that
// connects with the relay's iceServers and iceTransportPolicy 'relay' gets its media through
// the relay: random or bursty loss, delay, jitter and a rate limit each way, to any server
// (Sanke or livekit-server alike). Like harness.mjs this imports only Node's own modules.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { freeUdpPort, pollUntil } from './harness.mjs';

/**
 * linkArgs turns link settings into `sanke linksim` flags. Keys: loss ('20%' or 0.2), burst,
 * delay, jitter (durations: '50ms' or milliseconds), rate ('3mbit' or bits per second), queue;
 * up and down are objects of the same keys for one direction only; steps is a list of
 * { at: '60s' | ms, ...keys } (keys may be 'down.rate' etc.) applied that long after start.
 */
export function linkArgs(opts = {}) {
  const dur = (v) => (typeof v === 'number' ? `${v}ms` : String(v));
  const pct = (v) => (typeof v === 'number' ? `${+(v * 100).toFixed(4)}%` : String(v));
  const rate = (v) => (typeof v === 'number' ? `${Math.round(v / 1000)}kbit` : String(v));
  const fmt = { loss: pct, burst: dur, delay: dur, jitter: dur, rate, queue: dur };
  const value = (key, v) => {
    const f = fmt[key.replace(/^(up|down)\./, '')];
    if (!f) throw new Error(`linksim: unknown link setting ${key}`);
    return f(v);
  };
  const list = (o) => Object.entries(o).map(([k, v]) => `${k}=${value(k, v)}`).join(',');
  const args = [];
  for (const [k, v] of Object.entries(opts)) {
    if (['up', 'down', 'steps', 'seed'].includes(k) || v === undefined) continue;
    args.push(`--${k}`, value(k, v));
  }
  if (opts.seed) args.push('--seed', String(opts.seed));
  if (opts.up && Object.keys(opts.up).length) args.push('--up', list(opts.up));
  if (opts.down && Object.keys(opts.down).length) args.push('--down', list(opts.down));
  for (const { at, ...rest } of opts.steps ?? []) args.push('--step', `${dur(at)}:${list(rest)}`);
  return args;
}

/**
 * startLinkSim runs `<bin> linksim` on a free 127.0.0.1 port (UDP and TCP) with the link
 * settings of linkArgs and resolves, once the relay printed its RTCConfiguration (it is
 * listening then), with a LinkSim: { iceServers, iceTransportPolicy, rtcConfig, username,
 * credential, changes, set(), stop() }. changes lists the link changes the relay logged (its
 * --step schedule, set()), each with the wall-clock time it was read.
 */
export async function startLinkSim(bin, opts = {}) {
  const port = opts.port ?? await freeUdpPort();
  const args = ['linksim', '--listen', `127.0.0.1:${port}`, '--stats-every', '5s', '--control', ...linkArgs(opts.link ?? {})];
  // stdin carries set()'s changes; when this process ends, the relay's stdin closes.
  const proc = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const sim = new LinkSim(proc, args);
  const out = [];
  const ready = new Promise((res, rej) => {
    proc.stdout.on('data', (b) => {
      out.push(b.toString());
      try {
        res(JSON.parse(out.join('')));
      } catch {
        // not the whole JSON yet
      }
    });
    proc.once('exit', (code, signal) => rej(new Error(`sanke linksim exited (code ${code}, signal ${signal}) before it was ready:\n` +
      `sanke ${args.join(' ')}\n${sim.log.join('\n')}`)));
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30000);
  try {
    const conf = await ready;
    sim.iceServers = conf.iceServers;
    sim.iceTransportPolicy = conf.iceTransportPolicy;
    sim.username = conf.iceServers[0]?.username;
    sim.credential = conf.iceServers[0]?.credential;
  } finally {
    clearTimeout(timer);
  }
  return sim;
}

/** LinkSim is a running `sanke linksim` (see startLinkSim). */
export class LinkSim {
  constructor(proc, args) {
    this.proc = proc;
    this.args = args;
    this.log = [];
    this.changes = [];
    this.startedAt = Date.now();
    this.exited = new Promise((res) => proc.once('exit', (code, signal) => res({ code, signal })));
    createInterface({ input: proc.stderr }).on('line', (line) => {
      this.log.push(line);
      if (this.log.length > 2000) this.log.splice(0, this.log.length - 2000);
      if (line.includes('msg="link changed"')) this.changes.push({ at: Date.now(), line });
    });
  }

  /** rtcConfig is what a livekit-client page passes to Room.connect to go through the relay. */
  get rtcConfig() {
    return { iceServers: this.iceServers, iceTransportPolicy: this.iceTransportPolicy };
  }

  /**
   * set changes the link now (`sanke linksim --control`): settings as in linkArgs, keys may be
   * 'down.rate' etc. It resolves with the change's record once the relay logged it.
   */
  async set(settings) {
    const n = this.changes.length;
    const line = linkArgs({ steps: [{ at: 0, ...settings }] })[1].replace(/^0ms:/, '');
    this.proc.stdin.write(`${line}\n`);
    return pollUntil(() => this.changes[n], { timeout: 10000, interval: 20, what: `linksim applying ${line}`,
      describe: () => this.log.slice(-5).join('\n') });
  }

  /** counters returns the relay's last logged counters line (packets, lost, overflow each way). */
  counters() {
    return this.log.filter((l) => l.includes('msg=counters') || l.includes('msg=stopped')).at(-1);
  }

  /** stop ends the relay (SIGTERM; it logs its final counters) and waits for its exit. */
  async stop() {
    const proc = this.proc;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(timer);
  }
}
