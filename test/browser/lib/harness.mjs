// Test harness for the browser suite: builds and runs the Sanke binary, serves the bundled test
// pages from another origin, launches Debian's Chromium through playwright-core, cuts websockets
// with a small TCP proxy, and polls with deadlines. Nothing here asserts on Sanke's behaviour.
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
import { chromium } from 'playwright-core';

const execFileP = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));

/** Root of the Sanke repository (test/browser/../..); SANKE_REPO_ROOT builds another checkout. */
export const REPO_ROOT = process.env.SANKE_REPO_ROOT || resolve(here, '..', '..', '..');
/** Screenshots, page logs and the server log of failed tests go here. */
export const ARTIFACTS = resolve(here, '..', 'artifacts');
/** The bundled test page (npm run build). */
export const DIST = resolve(here, '..', 'dist');

/** Chromium flags, as required by issue 3 (plus Playwright's pipe and a fresh profile). */
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

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Milliseconds since the suite's process started, for log lines. */
export function stamp() {
  return `[${(performance.now() / 1000).toFixed(1)}s]`;
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
      const err = new Error(`timed out after ${timeout} ms waiting for ${what}` +
        (lastErr ? `; last error: ${lastErr.stack || lastErr}` : '') + (detail ? `; last value: ${detail}` : ''));
      throw err;
    }
    await sleep(interval);
  }
}

// --- ports --------------------------------------------------------------------------------

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

// --- the Sanke server ---------------------------------------------------------------------

function goBinary() {
  if (process.env.GO) return process.env.GO;
  for (const dir of (process.env.PATH || '').split(':')) {
    if (dir && existsSync(join(dir, 'go'))) return join(dir, 'go');
  }
  if (existsSync('/usr/local/go/bin/go')) return '/usr/local/go/bin/go';
  return 'go';
}

/** buildSanke runs `go build -o <dir>/sanke ./cmd/sanke` from the repository root. */
export async function buildSanke(dir) {
  const out = join(dir, 'sanke');
  const started = Date.now();
  try {
    await execFileP(goBinary(), ['build', '-o', out, './cmd/sanke'], {
      cwd: REPO_ROOT,
      maxBuffer: 16 << 20,
      env: process.env,
    });
  } catch (e) {
    throw new Error(`go build ./cmd/sanke failed:\n${e.stderr || e.message}`);
  }
  console.log(`${stamp()} built ${out} in ${Date.now() - started} ms`);
  return out;
}

/**
 * SankeServer runs `sanke serve --dev` on fixed ports, so that it can be stopped and started
 * again on the same ports (the restart test). Its output is kept for failure reports. env adds
 * SANKE_* configuration variables (e.g. the TURN relay's).
 */
export class SankeServer {
  constructor({ bin, workDir, env = {}, args = [] }) {
    this.bin = bin;
    this.workDir = workDir;
    this.env = env;
    this.extraArgs = args;
    this.log = [];
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
    if (this.log.length > 20000) this.log.splice(0, this.log.length - 20000);
  }

  async start() {
    if (!this.port) await this.allocatePorts();
    this.starts += 1;
    const args = ['serve', '--dev', '--port', String(this.port), '--udp-port', String(this.udpPort),
      '--tcp-port', String(this.tcpPort), '--data-dir', join(this.workDir, 'data'),
      '--log-level', process.env.SANKE_BROWSERTEST_LOG_LEVEL || 'debug', ...this.extraArgs];
    this.record(`----- start #${this.starts}: sanke ${args.join(' ')}`);
    const proc = spawn(this.bin, args, { cwd: this.workDir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.env } });
    this.proc = proc;
    this.exited = new Promise((res) => proc.once('exit', (code, signal) => {
      this.record(`----- exited code=${code} signal=${signal}`);
      res({ code, signal });
    }));
    const onData = (buf) => {
      for (const line of buf.toString().split('\n')) if (line) this.record(line);
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
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
    return this.log.slice(-n).join('\n');
  }

  /** lines returns the server log lines recorded since mark (see mark()). */
  mark() {
    return this.log.length;
  }

  since(mark) {
    return this.log.slice(mark);
  }

  async token(room, identity, extra = []) {
    const { stdout } = await execFileP(this.bin, ['token', '--dev', '--room', room, '--identity', identity, ...extra],
      { cwd: this.workDir });
    return stdout.trim();
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
    url: `http://${host}:${server.address().port}`,
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
 * 10.232.x.2: a Chromium started in it (launchChromium with its chromium()) reaches the host
 * only through the pair, whose host end shape() limits with tc's token bucket filter, as a
 * rural school's line. It needs root; available() says whether it can be made here.
 */
export class NetnsLink {
  static available() {
    return process.getuid?.() === 0;
  }

  static async create(dir) {
    const id = Math.floor(Math.random() * 60000);
    const link = new NetnsLink();
    link.ns = `sanke-bt-${id}`;
    link.hostDev = `skbt${id}h`;
    const nsDev = `skbt${id}n`;
    const subnet = `10.232.${4 * (id % 64)}`;
    link.hostIP = `${subnet}.1`;
    const run = (...args) => execFileP(args[0], args.slice(1));
    await run('ip', 'netns', 'add', link.ns);
    try {
      await run('ip', 'link', 'add', link.hostDev, 'type', 'veth', 'peer', 'name', nsDev);
      await run('ip', 'link', 'set', nsDev, 'netns', link.ns);
      await run('ip', 'addr', 'add', `${link.hostIP}/30`, 'dev', link.hostDev);
      await run('ip', 'link', 'set', link.hostDev, 'up');
      await run('ip', '-n', link.ns, 'addr', 'add', `${subnet}.2/30`, 'dev', nsDev);
      await run('ip', '-n', link.ns, 'link', 'set', nsDev, 'up');
      await run('ip', '-n', link.ns, 'link', 'set', 'lo', 'up');
    } catch (e) {
      await link.close();
      throw e;
    }
    // Playwright starts the browser with its control pipe on fds 3 and 4; ip netns exec
    // keeps them open across the exec.
    link.wrapper = join(dir, `chromium-in-${link.ns}.sh`);
    await writeFile(link.wrapper, `#!/bin/sh\nexec ip netns exec ${link.ns} ${CHROMIUM_PATH} "$@"\n`, { mode: 0o755 });
    return link;
  }

  /** chromium launches Chromium inside the namespace. */
  chromium(profileDir) {
    return launchChromium(profileDir, { executablePath: this.wrapper });
  }

  /** shape limits what the host sends into the namespace to rate (e.g. '1mbit'), 100 ms of queue. */
  async shape(rate) {
    await execFileP('tc', ['qdisc', 'replace', 'dev', this.hostDev, 'root', 'tbf', 'rate', rate, 'burst', '16kb', 'latency', '100ms']);
  }

  async close() {
    await execFileP('ip', ['netns', 'del', this.ns]).catch(() => {}); // takes the veth pair along
    await execFileP('ip', ['link', 'del', this.hostDev]).catch(() => {});
  }
}

// --- Chromium -----------------------------------------------------------------------------

/**
 * launchChromium starts /usr/bin/chromium with exactly CHROMIUM_FLAGS and a fresh
 * --user-data-dir. Playwright's own default switches are not used; it only needs its
 * control pipe (--remote-debugging-pipe) and --no-startup-window for a non-persistent launch.
 */
export async function launchChromium(profileDir, { executablePath = CHROMIUM_PATH } = {}) {
  return chromium.launch({
    executablePath,
    headless: true,
    ignoreDefaultArgs: true,
    args: [...CHROMIUM_FLAGS, `--user-data-dir=${profileDir}`, '--remote-debugging-pipe', '--no-startup-window'],
    timeout: 60000,
  });
}

/** Page wraps a Playwright page running the test app; it keeps the page's console output. */
export class TestPage {
  constructor(page, name) {
    this.page = page;
    this.name = name;
    this.console = [];
    page.on('console', (m) => this.note(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => this.note(`pageerror: ${e.stack || e}`));
    page.on('crash', () => this.note('PAGE CRASHED'));
  }

  note(line) {
    this.console.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
    if (this.console.length > 3000) this.console.splice(0, this.console.length - 3000);
  }

  eval(fn, arg) {
    return this.page.evaluate(fn, arg);
  }

  call(method, ...args) {
    return this.page.evaluate(([m, a]) => window.sanke[m](...a), [method, args]);
  }

  stats() {
    return this.call('stats');
  }

  state() {
    return this.call('state');
  }
}

/**
 * Suite holds what every test shares: the server, the page server and the browser. Each test
 * opens its pages in a fresh browser context and closes it when done (see scenario()).
 */
export class Suite {
  async setup() {
    this.started = Date.now();
    this.tmp = await mkdtemp(join(os.tmpdir(), 'sanke-browsertest-'));
    await mkdir(join(this.tmp, 'data'), { recursive: true });
    const [bin, pages] = await Promise.all([
      buildSanke(this.tmp),
      existsSync(join(DIST, 'app.js')) ? serveStatic(DIST) : Promise.reject(new Error('dist/app.js missing: run npm run build')),
    ]);
    this.pages = pages;
    this.server = new SankeServer({ bin, workDir: this.tmp });
    await this.server.start();
    this.browser = await launchChromium(join(this.tmp, 'chromium-profile'));
    console.log(`${stamp()} sanke at ${this.server.httpUrl} (udp ${this.server.udpPort}, tcp ${this.server.tcpPort}), ` +
      `pages at ${this.pages.url}, chromium ${this.browser.version()}`);
  }

  async teardown() {
    await this.browser?.close().catch(() => {});
    await this.server?.stop('SIGTERM').catch(() => {});
    await this.pages?.close().catch(() => {});
    if (this.tmp && !process.env.SANKE_BROWSERTEST_KEEP) await rm(this.tmp, { recursive: true, force: true });
  }

  /** newContext opens a browser context; open pages in it with openPage. */
  async newContext() {
    return this.browser.newContext({ viewport: { width: 1400, height: 900 } });
  }

  async openPage(context, name, query = {}) {
    const page = await context.newPage();
    const tp = new TestPage(page, name);
    const q = new URLSearchParams({ label: name, ...query });
    await page.goto(`${this.pages.url}/index.html?${q}`);
    await page.waitForFunction(() => window.sanke !== undefined, null, { timeout: 15000 });
    return tp;
  }

  /**
   * scenario runs body(ctx) with a fresh browser context; on failure it saves a screenshot and
   * the console log of every page and the server log under artifacts/<test>/, and prints the
   * server log tail. The context is always closed.
   */
  async scenario(testName, body) {
    const context = await this.newContext();
    const pages = [];
    const open = async (name, query) => {
      const p = await this.openPage(context, name, query);
      pages.push(p);
      return p;
    };
    const mark = this.server.mark();
    const started = Date.now();
    try {
      await body({ open, context, server: this.server, suite: this });
      console.log(`${stamp()} ${testName}: passed in ${Date.now() - started} ms`);
      if (process.env.SANKE_BROWSERTEST_ARTIFACTS === 'always') await this.saveArtifacts(testName, pages, mark, false);
    } catch (e) {
      await this.saveArtifacts(testName, pages, mark).catch((err) => console.log(`saving artifacts failed: ${err}`));
      throw e;
    } finally {
      await context.close().catch(() => {});
    }
  }

  async saveArtifacts(testName, pages, mark, failed = true) {
    const dir = join(ARTIFACTS, testName.replace(/[^a-zA-Z0-9._-]+/g, '_'));
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    for (const p of pages) {
      const base = join(dir, p.name.replace(/[^a-zA-Z0-9._-]+/g, '_'));
      // A page in the background renders no frames (no Playwright default switches here), so
      // bring each one to the front before its screenshot.
      await p.page.bringToFront().catch(() => {});
      await p.page.screenshot({ path: `${base}.png`, fullPage: true, timeout: 10000 }).catch((e) => p.note(`screenshot failed: ${e}`));
      let state = '';
      try {
        state = JSON.stringify({ state: await p.state(), stats: await p.stats() }, null, 2);
      } catch (e) {
        state = `state unavailable: ${e}`;
      }
      await writeFile(`${base}.state.json`, state);
      await writeFile(`${base}.console.log`, p.console.join('\n'));
    }
    await writeFile(join(dir, 'server.log'), this.server.since(mark).join('\n'));
    if (!failed) return;
    console.log(`\n${stamp()} ${testName} FAILED: artifacts in ${dir}\n----- server log tail -----\n` +
      `${this.server.tail(80)}\n----- end of server log -----`);
  }
}
