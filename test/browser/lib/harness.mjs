// The Node harness shared by both browser suites (test/browser and web-client/e2e): builds and
// runs the Sanke binary, polls with deadlines, serves pages from another origin, cuts
// websockets with a small TCP proxy, runs a weak link in a network namespace, publishes
// pre-encoded media from Go, launches Debian's Chromium and Firefox, and decides what a
// missing prerequisite does (skip, or fail in CI). Nothing here asserts on Sanke's behaviour.
//
// Each suite has its own package.json and node_modules, so this module imports only Node's
// own modules: the browser drivers (playwright-core's chromium, puppeteer-core) come from the
// caller.
import { execFile, spawn } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { LineLog } from './linelog.mjs';

const execFileP = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));

/** Root of the Sanke repository (test/browser/lib/../../..); SANKE_REPO_ROOT builds another checkout. */
export const REPO_ROOT = process.env.SANKE_REPO_ROOT || resolve(here, '..', '..', '..');

/** The Chromium flags of issues 3 and 6 (plus Playwright's pipe and a fresh profile per launch). */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
];

export const CHROMIUM_PATH = process.env.SANKE_CHROMIUM || '/usr/bin/chromium';
export const FIREFOX_PATH = process.env.SANKE_FIREFOX || '/usr/bin/firefox-esr';

/**
 * Firefox preferences for the tests: fake camera and microphone without a permission prompt,
 * ICE candidates on loopback (the server listens on 127.0.0.1; Firefox leaves loopback out of
 * ICE by default) and no mDNS obfuscation of host candidates; quiet start.
 */
export const FIREFOX_PREFS = {
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  'media.peerconnection.ice.loopback': true,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'intl.accept_languages': 'zh-CN, zh',
  'browser.shell.checkDefaultBrowser': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'app.update.enabled': false,
};

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** stamp is the seconds since the suite's process started, for log lines. */
export function stamp() {
  return `[${(performance.now() / 1000).toFixed(1)}s]`;
}

/** log prints a line with stamp(). */
export function log(...args) {
  console.log(stamp(), ...args);
}

// --- prerequisites ------------------------------------------------------------------------

/**
 * prerequisite handles a missing prerequisite of test t (root, a network namespace, a
 * browser, Firefox, IPv6): reason says what is missing, or is empty when nothing is. Outside
 * CI the test skips with the reason and prerequisite returns false (the caller returns); in
 * CI (CI=true) a machine missing it is a broken run, so the test fails with the reason.
 * It returns true when the test can go on.
 */
export function prerequisite(t, reason) {
  if (!reason) return true;
  if (process.env.CI === 'true') {
    throw new Error(`missing prerequisite: ${reason} (CI=true: a missing prerequisite fails the test instead of skipping it)`);
  }
  t.skip(`missing prerequisite: ${reason}`);
  return false;
}

/** missingExecutable returns why path cannot run (for prerequisite), or '' when it can. */
export function missingExecutable(path, install) {
  return existsSync(path) ? '' : `${path} is not installed (${install})`;
}

/** missingChromium says why Chromium cannot run here, or ''. */
export function missingChromium() {
  return missingExecutable(CHROMIUM_PATH, 'apt-get install chromium, or SANKE_CHROMIUM=<path>');
}

/** missingFirefox says why Firefox cannot run here, or ''. */
export function missingFirefox() {
  return missingExecutable(FIREFOX_PATH, 'apt-get install firefox-esr, or SANKE_FIREFOX=<path>');
}

/**
 * pollUntil calls fn until it returns a truthy value and returns that value. It never asserts
 * on elapsed time itself: on timeout it throws with `what` and the last value fn returned
 * (through describe, if given) so a failure says what was being waited for.
 */
export async function pollUntil(fn, { timeout = 20000, interval = 250, what = 'condition', describe } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await fn();
      lastErr = undefined;
      if (last) return last;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) {
      let detail = '';
      try {
        detail = describe ? describe(last) : JSON.stringify(last);
      } catch {
        detail = String(last);
      }
      throw new Error(`timed out after ${timeout} ms waiting for ${what}` +
        (lastErr ? `; last error: ${lastErr.stack || lastErr}` : '') + (detail ? `; last value: ${detail}` : ''));
    }
    await sleep(interval);
  }
}

// --- ports and temporary directories ------------------------------------------------------

export function freeTcpPort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

export function freeUdpPort() {
  return new Promise((res, rej) => {
    const s = dgram.createSocket('udp4');
    s.once('error', rej);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** tempDir makes a fresh temporary directory named after prefix. */
export function tempDir(prefix) {
  return mkdtemp(join(os.tmpdir(), `${prefix}-`));
}

/** removeDir removes dir unless keepEnv (e.g. SANKE_BROWSERTEST_KEEP) is set. */
export async function removeDir(dir, keepEnv) {
  if (process.env[keepEnv]) {
    log(`kept ${dir} (${keepEnv})`);
    return;
  }
  await rm(dir, { recursive: true, force: true });
}

// --- Go programs: the Sanke server and the file publisher ---------------------------------

function goBinary() {
  if (process.env.GO) return process.env.GO;
  for (const dir of (process.env.PATH || '').split(':')) {
    if (dir && existsSync(join(dir, 'go'))) return join(dir, 'go');
  }
  if (existsSync('/usr/local/go/bin/go')) return '/usr/local/go/bin/go';
  return 'go';
}

/** goBuild runs `go build -o <dir>/<name> <pkg>` from the repository root and returns the binary. */
export async function goBuild(dir, pkg, name) {
  const out = join(dir, name);
  const started = Date.now();
  try {
    await execFileP(goBinary(), ['build', '-o', out, pkg], { cwd: REPO_ROOT, maxBuffer: 16 << 20, env: process.env });
  } catch (e) {
    throw new Error(`go build ${pkg} failed:\n${e.stderr || e.message}`);
  }
  log(`built ${out} in ${Date.now() - started} ms`);
  return out;
}

/** buildSanke builds ./cmd/sanke into dir. */
export function buildSanke(dir) {
  return goBuild(dir, './cmd/sanke', 'sanke');
}

/**
 * SankeServer runs `sanke serve --dev` on fixed ports, so that it can be stopped and started
 * again on the same ports (the restart tests), with its data under workDir/data. args adds
 * flags (e.g. --config), env adds SANKE_* variables (e.g. the TURN relay's). Its output is
 * kept for failure reports.
 */
export class SankeServer {
  constructor({ bin, workDir, env = {}, args = [], logLevel = 'debug' }) {
    this.bin = bin;
    this.workDir = workDir;
    this.env = env;
    this.extraArgs = args;
    this.logLevel = logLevel;
    this.log = new LineLog();
    this.proc = undefined;
    this.starts = 0;
  }

  async allocatePorts() {
    this.port = await freeTcpPort();
    this.tcpPort = await freeTcpPort();
    this.udpPort = await freeUdpPort();
  }

  get httpUrl() {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}`;
  }

  record(line) {
    this.log.push(line);
  }

  async start() {
    if (!this.port) await this.allocatePorts();
    this.starts += 1;
    const args = ['serve', '--dev', '--port', String(this.port), '--udp-port', String(this.udpPort),
      '--tcp-port', String(this.tcpPort), '--data-dir', join(this.workDir, 'data'),
      '--log-level', this.logLevel, ...this.extraArgs];
    this.record(`----- start #${this.starts}: sanke ${args.join(' ')}`);
    const proc = spawn(this.bin, args, { cwd: this.workDir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.env } });
    this.proc = proc;
    this.exited = new Promise((res) => proc.once('exit', (code, signal) => {
      this.record(`----- exited code=${code} signal=${signal}`);
      res({ code, signal });
    }));
    this.log.follow(proc.stdout);
    this.log.follow(proc.stderr);
    let exited = false;
    this.exited.then(() => { exited = true; });
    await pollUntil(async () => {
      if (exited) throw new Error(`sanke exited during start:\n${this.tail(40)}`);
      const res = await fetch(`${this.httpUrl}/healthz`).catch(() => undefined);
      return res && res.ok;
    }, { timeout: 30000, interval: 100, what: 'sanke /healthz' });
    this.startedAt = Date.now();
  }

  /** stop sends signal (SIGTERM: graceful shutdown; SIGKILL: crash) and waits for the exit. */
  async stop(signal = 'SIGTERM') {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 20000);
    await this.exited;
    clearTimeout(timer);
    this.proc = undefined;
  }

  tail(n = 60) {
    return this.log.tail(n).join('\n');
  }

  /** mark returns a position in the log for since(). */
  mark() {
    return this.log.mark();
  }

  /** since returns the server log lines recorded since mark. */
  since(mark) {
    return this.log.since(mark);
  }

  async token(room, identity, extra = []) {
    const { stdout } = await execFileP(this.bin, ['token', '--dev', '--room', room, '--identity', identity, ...extra],
      { cwd: this.workDir });
    return stdout.trim();
  }
}

/**
 * FilePublisher runs test/browser/filepublisher (build it with goBuild): a Go SDK participant
 * publishing testmedia's pre-encoded VP8 simulcast layers and Opus clip, so the layers'
 * bitrates are those of the files whatever the host's load. start() resolves with the line
 * it prints once published: { video, audio, layers: [{ rid, width, height, bitrate }] }.
 */
export class FilePublisher {
  constructor(bin) {
    this.bin = bin;
    this.log = new LineLog(5000);
  }

  async start(url, token) {
    // stdin stays open: the publisher leaves when it closes, so it never outlives this process.
    const proc = spawn(this.bin, ['-url', url, '-token', token], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc = proc;
    this.exited = new Promise((res) => proc.once('exit', (code, signal) => res({ code, signal })));
    this.log.follow(proc.stderr);
    const published = new Promise((res, rej) => {
      this.log.follow(proc.stdout, (line) => {
        try {
          const msg = JSON.parse(line);
          if (msg.event === 'published') res(msg);
        } catch {
          // not the JSON line
        }
      });
      this.exited.then(({ code, signal }) => rej(new Error(`filepublisher exited (code ${code}, signal ${signal}) before publishing:\n${this.log.tail(200).join('\n')}`)));
    });
    return published;
  }

  /** stop closes the publisher's stdin (it leaves the room) and waits for its exit. */
  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.stdin.end();
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(timer);
  }
}

// --- static pages -------------------------------------------------------------------------

const contentTypes = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
};

/**
 * serveStatic serves dir on 127.0.0.1 (an origin other than the SFU's), or on host (whose
 * address the returned url then carries).
 */
/** urlHost writes an IP address as a URL's host: an IPv6 address in brackets. */
export function urlHost(ip) {
  return ip.includes(':') ? `[${ip}]` : ip;
}

export async function serveStatic(dir, host = '127.0.0.1') {
  const root = resolve(dir);
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    let path = normalize(join(root, decodeURIComponent(url.pathname)));
    if (path !== root && !path.startsWith(root + sep)) {
      res.writeHead(403).end();
      return;
    }
    try {
      if ((await stat(path)).isDirectory()) path = join(path, 'index.html');
      await stat(path);
    } catch {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': contentTypes[extname(path)] || 'application/octet-stream', 'Cache-Control': 'no-store' });
    createReadStream(path).pipe(res);
  });
  await new Promise((r) => server.listen(0, host, r));
  return {
    url: `http://${urlHost(host)}:${server.address().port}`,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  };
}

// --- websocket-cutting proxy --------------------------------------------------------------

/**
 * TcpProxy forwards 127.0.0.1:<port> to the server's HTTP port. cut() resets every open
 * connection (the websocket of a page that connected through it); refuseNext(n) resets the
 * next n new connections (a failed reconnect attempt: its websocket and its validate fetch).
 */
export class TcpProxy {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.sockets = new Set();
    this.toRefuse = 0;
    this.accepted = 0;
    this.refused = 0;
  }

  async listen() {
    this.server = net.createServer((client) => {
      if (this.toRefuse > 0) {
        this.toRefuse -= 1;
        this.refused += 1;
        client.resetAndDestroy?.() ?? client.destroy();
        return;
      }
      this.accepted += 1;
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      this.sockets.add(client);
      this.sockets.add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = this.server.address().port;
    return this;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** cut resets every open connection and returns how many there were. */
  cut() {
    const n = this.sockets.size;
    for (const s of this.sockets) s.resetAndDestroy?.() ?? s.destroy();
    this.sockets.clear();
    return n;
  }

  refuseNext(n) {
    this.toRefuse = n;
  }

  async close() {
    this.cut();
    await new Promise((r) => this.server.close(() => r()));
  }
}

// --- a weak link in a network namespace ---------------------------------------------------

/**
 * NetnsLink is a network namespace joined to the host by a veth pair, 10.232.x.1 (host) to
 * 10.232.x.2: a Chromium started in it (launchChromium with its wrapper as executablePath)
 * reaches the host only through the pair, whose host end shape() limits with tc's token bucket
 * filter, as a rural school's line. missing() says why it cannot be made here.
 */
export class NetnsLink {
  static missing() {
    return process.getuid?.() === 0 ? '' : 'root, for a network namespace (CI runs as root)';
  }

  /**
   * create makes the namespace and its veth pair: 10.232.x.1 (host) to 10.232.x.2, or with
   * ipv6 fd00:232:x::1 to fd00:232:x::2 (nodad: usable at once) and nothing else, its
   * loopback down: no IPv4 address at all in the namespace.
   */
  static async create(dir, { ipv6 = false } = {}) {
    const id = Math.floor(Math.random() * 60000);
    const link = new NetnsLink();
    link.ns = `sanke-bt-${id}`;
    link.hostDev = `skbt${id}h`;
    const nsDev = `skbt${id}n`;
    link.id = id;
    link.nsDev = nsDev;
    const run = (...args) => execFileP(args[0], args.slice(1));
    await run('ip', 'netns', 'add', link.ns);
    try {
      await run('ip', 'link', 'add', link.hostDev, 'type', 'veth', 'peer', 'name', nsDev);
      await run('ip', 'link', 'set', nsDev, 'netns', link.ns);
      if (ipv6) {
        const prefix = `fd00:232:${id.toString(16)}::`;
        link.hostIP = `${prefix}1`;
        await run('ip', 'addr', 'add', `${link.hostIP}/64`, 'dev', link.hostDev, 'nodad');
        await run('ip', '-n', link.ns, 'addr', 'add', `${prefix}2/64`, 'dev', nsDev, 'nodad');
        await run('ip', '-n', link.ns, 'link', 'set', nsDev, 'up');
        // Through the host, as an IPv6-only network's router: Chromium takes a network
        // without a default route for one it cannot use.
        await run('ip', '-n', link.ns, '-6', 'route', 'add', 'default', 'via', link.hostIP);
      } else {
        const subnet = `10.232.${4 * (id % 64)}`;
        link.hostIP = `${subnet}.1`;
        link.nsIP = `${subnet}.2`;
        await run('ip', 'addr', 'add', `${link.hostIP}/30`, 'dev', link.hostDev);
        await run('ip', '-n', link.ns, 'addr', 'add', `${subnet}.2/30`, 'dev', nsDev);
        await run('ip', '-n', link.ns, 'link', 'set', 'lo', 'up');
      }
      await run('ip', 'link', 'set', link.hostDev, 'up');
      await run('ip', '-n', link.ns, 'link', 'set', nsDev, 'up');
    } catch (e) {
      await link.close();
      throw e;
    }
    // Playwright starts the browser with its control pipe on fds 3 and 4; ip netns exec
    // keeps them open across the exec.
    // In the IPv6-only namespace Chromium's mDNS responder, which names its host candidates
    // (WebRtcHideLocalIpsWithMdns), does not answer, and Chromium then offers no host
    // candidate at all (checked by gathering there: nothing; with the feature off, the IPv6
    // address). The feature is off for it, as it is for a page holding camera permission.
    const extra = ipv6 ? ' --disable-features=WebRtcHideLocalIpsWithMdns' : '';
    link.wrapper = join(dir, `chromium-in-${link.ns}.sh`);
    await writeFile(link.wrapper, `#!/bin/sh\nexec ip netns exec ${link.ns} ${CHROMIUM_PATH} "$@"${extra}\n`, { mode: 0o755 });
    return link;
  }

  /** host is hostIP as a URL's host (IPv6 in brackets). */
  get host() {
    return urlHost(this.hostIP);
  }

  /** shape limits what the host sends into the namespace to rate (e.g. '1mbit'), 100 ms of queue. */
  async shape(rate) {
    await execFileP('tc', ['qdisc', 'replace', 'dev', this.hostDev, 'root', 'tbf', 'rate', rate, 'burst', '16kb', 'latency', '100ms']);
  }

  /**
   * blockUDP makes the namespace's routing refuse every UDP packet, sent or received (a
   * firewall that passes TCP only): action 'prohibit' fails sends at once, 'blackhole' drops
   * silently. The rule goes before the local table's, which would deliver incoming packets
   * first.
   */
  async blockUDP(action = 'prohibit') {
    const ip = (...args) => execFileP('ip', ['-n', this.ns, ...args]);
    await ip('rule', 'add', 'pref', '10', 'ipproto', 'udp', action);
    await ip('rule', 'add', 'pref', '20', 'lookup', 'local');
    await ip('rule', 'del', 'pref', '0', 'lookup', 'local');
  }

  /**
   * switchAddress moves the namespace to another network, as a phone from Wi-Fi to a hotspot:
   * a second veth pair with its own /30 (10.233.x) becomes the default route, the old address
   * goes, and the TCP connections from it are destroyed (ss -K), as the operating system does
   * when an interface goes away; the server stays reachable at hostIP through the new route.
   */
  async switchAddress() {
    const run = (...args) => execFileP(args[0], args.slice(1));
    const hostDev = `skhs${this.id}h`;
    const nsDev = `skhs${this.id}n`;
    const subnet = `10.233.${4 * (this.id % 64)}`;
    this.extraDevs = [...(this.extraDevs ?? []), hostDev];
    await run('ip', 'link', 'add', hostDev, 'type', 'veth', 'peer', 'name', nsDev);
    await run('ip', 'link', 'set', nsDev, 'netns', this.ns);
    await run('ip', 'addr', 'add', `${subnet}.1/30`, 'dev', hostDev);
    await run('ip', 'link', 'set', hostDev, 'up');
    await run('ip', '-n', this.ns, 'addr', 'add', `${subnet}.2/30`, 'dev', nsDev);
    await run('ip', '-n', this.ns, 'link', 'set', nsDev, 'up');
    await run('ip', '-n', this.ns, 'addr', 'del', `${this.nsIP}/30`, 'dev', this.nsDev);
    await run('ip', '-n', this.ns, 'route', 'replace', 'default', 'via', `${subnet}.1`);
    await run('ip', 'netns', 'exec', this.ns, 'ss', '-K', '-t', 'src', this.nsIP);
    this.nsIP = `${subnet}.2`;
  }

  async close() {
    await execFileP('ip', ['netns', 'del', this.ns]).catch(() => {}); // takes the veth pair along
    await execFileP('ip', ['link', 'del', this.hostDev]).catch(() => {});
    for (const dev of this.extraDevs ?? []) await execFileP('ip', ['link', 'del', dev]).catch(() => {});
  }
}

// --- browsers -----------------------------------------------------------------------------

/**
 * launchChromium starts Chromium (playwright-core's `chromium`, from the caller) with exactly
 * CHROMIUM_FLAGS and a fresh --user-data-dir under dir. Playwright's own default switches are
 * not used; it only needs its control pipe (--remote-debugging-pipe) and --no-startup-window
 * for a non-persistent launch.
 */
export async function launchChromium(chromium, dir, { executablePath = CHROMIUM_PATH } = {}) {
  const profile = join(dir, `chromium-profile-${Math.random().toString(36).slice(2, 8)}`);
  await mkdir(profile, { recursive: true });
  return chromium.launch({
    executablePath,
    headless: true,
    ignoreDefaultArgs: true,
    args: [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, '--remote-debugging-pipe', '--no-startup-window'],
    timeout: 60000,
  });
}

/**
 * launchFirefox starts Debian's Firefox ESR headless with a fresh profile under dir, driven by
 * puppeteer-core (from the caller) over WebDriver BiDi (stock Firefox speaks it; playwright
 * needs its own patched build). Days in the web client are local days: the browser runs in
 * Asia/Shanghai.
 */
export async function launchFirefox(puppeteer, dir) {
  const profile = join(dir, `firefox-profile-${Math.random().toString(36).slice(2, 8)}`);
  await mkdir(profile, { recursive: true });
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX_PATH,
    protocol: 'webDriverBiDi',
    headless: true,
    userDataDir: profile,
    extraPrefsFirefox: FIREFOX_PREFS,
    env: { ...process.env, TZ: 'Asia/Shanghai' },
    timeout: 60_000,
  });
}
