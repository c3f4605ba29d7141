// What the tests of test/browser share on top of the common harness (harness.mjs): the
// bundled test page, a TestPage around each Playwright page, and the Suite that holds the
// server, the page server and the browser.
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { buildSanke, launchChromium, removeDir, SankeServer, serveStatic, stamp, tempDir } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));

/** Screenshots, page logs and the server log of failed tests go here. */
export const ARTIFACTS = resolve(here, '..', 'artifacts');
/** The bundled test page (npm run build). */
export const DIST = resolve(here, '..', 'dist');

/** launch starts Chromium (with the flags of issue 3) with a fresh profile under dir. */
export function launch(dir, opts) {
  return launchChromium(chromium, dir, opts);
}

/** TestPage wraps a Playwright page running the test app; it keeps the page's console output. */
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
    this.tmp = await tempDir('sanke-browsertest');
    await mkdir(join(this.tmp, 'data'), { recursive: true });
    const [bin, pages] = await Promise.all([
      buildSanke(this.tmp),
      existsSync(join(DIST, 'app.js')) ? serveStatic(DIST) : Promise.reject(new Error('dist/app.js missing: run npm run build')),
    ]);
    this.pages = pages;
    this.server = new SankeServer({ bin, workDir: this.tmp, logLevel: process.env.SANKE_BROWSERTEST_LOG_LEVEL || 'debug' });
    await this.server.start();
    this.browser = await launch(this.tmp);
    console.log(`${stamp()} sanke at ${this.server.httpUrl} (udp ${this.server.udpPort}, tcp ${this.server.tcpPort}), ` +
      `pages at ${this.pages.url}, chromium ${this.browser.version()}`);
  }

  async teardown() {
    await this.browser?.close().catch(() => {});
    await this.server?.stop('SIGTERM').catch(() => {});
    await this.pages?.close().catch(() => {});
    if (this.tmp) await removeDir(this.tmp, 'SANKE_BROWSERTEST_KEEP');
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
