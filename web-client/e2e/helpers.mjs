// What the web client's browser tests share on top of the common harness of both browser
// suites (test/browser/lib/harness.mjs, which this folder imports by path): the sanke binary
// built from this checkout (so the embedded web-client/dist is what is tested) run with the
// classroom service on a generated dataset whose sessions happen now, Debian's Chromium
// through playwright-core and Firefox ESR through puppeteer-core (both from this package's
// node_modules), and the classroom's pages: sign-in, class start, playing video and audio,
// the coverage table, the Content-Security-Policy. Screenshots go to web-client/test-artifacts/.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';
import {
  buildSanke, launchChromium, launchFirefox as launchFirefoxWith, log, pollUntil, REPO_ROOT, removeDir, SankeServer, sleep, tempDir as makeTempDir,
} from '../../test/browser/lib/harness.mjs';

export { log, missingChromium, missingFirefox, pollUntil, prerequisite, sleep } from '../../test/browser/lib/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));

/** Screenshots of every screen (and logs of failures) land here; the folder is gitignored. */
export const ARTIFACTS = resolve(here, '..', 'test-artifacts');
export const ADMIN_KEY = 'e2e-admin-key-0123456789abcdef';

/** The sample's regions, schools, classrooms and pairings (what comes before its terms). */
const SAMPLE_STRUCTURE = readFileSync(join(REPO_ROOT, 'classroom/sample/sample.yaml'), 'utf8').split(/^terms:/m)[0];

/** iso is a timetable time: an instant in ms, to the second, in UTC. */
export const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** deliverySession is the timetable entry of the delivery class E2E-DELIVERY. */
export function deliverySession(start, end) {
  return { id: 'E2E-DELIVERY', course_type: 1, pairing: 'P-MUSIC', grade: 3, start: iso(start), end: iso(end) };
}

/** The sample classrooms (classroom/sample/sample.yaml) with sessions relative to now. */
export function dataset({ deliveryStart, deliveryEnd, researchStart, researchEnd }) {
  return `${SAMPLE_STRUCTURE}sessions:
  - ${JSON.stringify(deliverySession(deliveryStart, deliveryEnd))}
  - {id: E2E-RESEARCH, course_type: 2, subject: 美术, grade: 4, master: M2, receivers: [T3, T4, T5], start: "${iso(researchStart)}", end: "${iso(researchEnd)}"}
accounts:
  - {id: M1, kind: classroom, classroom: M1, password: music-master-1}
  - {id: M2, kind: classroom, classroom: M2, password: art-master-22}
  - {id: T1, kind: classroom, classroom: T1, password: houtang-tp-1}
  - {id: T2, kind: classroom, classroom: T2, password: shangpuxi-tp2}
  - {id: T3, kind: classroom, classroom: T3, password: beidouxi-tp3}
  - {id: T4, kind: classroom, classroom: T4, password: longzhuang-4}
  - {id: T5, kind: classroom, classroom: T5, password: tongxihe-tp5}
  - {id: HH-SUP, kind: supervisor, name: 怀化市教育局巡课员, region: "431200", password: huaihua-supervisor}
`;
}

export const PASSWORDS = {
  M1: 'music-master-1',
  M2: 'art-master-22',
  T1: 'houtang-tp-1',
  T2: 'shangpuxi-tp2',
  T3: 'beidouxi-tp3',
  'HH-SUP': 'huaihua-supervisor',
};

/**
 * Sanke is the sanke binary built from this checkout, run with the classroom service (admin
 * key ADMIN_KEY) and automatic recording of one room, on a temporary data directory.
 */
export class Sanke extends SankeServer {
  constructor(dir) {
    super({ workDir: dir, logLevel: 'info' });
  }

  async build() {
    this.bin = await buildSanke(this.workDir);
  }

  /** start writes the dataset and a configuration recording room, and starts the server. */
  async start(datasetYaml, room) {
    const dir = this.workDir;
    await writeFile(join(dir, 'dataset.yaml'), datasetYaml);
    await writeFile(
      join(dir, 'sanke.yaml'),
      `dev: true
room:
  departure_timeout: 2s
recording:
  auto_rooms: ["${room}"]
  flush_interval: 1s
classroom:
  enabled: true
  dataset: [${JSON.stringify(join(dir, 'dataset.yaml'))}]
  admin_key: ${ADMIN_KEY}
  sample_interval: 1s
  finalize_delay: 3s
  valid_share: 0.3
  password_cost: 4
`,
    );
    this.extraArgs = ['--config', join(dir, 'sanke.yaml')];
    await super.start();
  }

  get url() {
    return this.httpUrl;
  }

  /** api calls the classroom API with the admin key: GET path, or method with body as JSON. */
  async api(path, method = 'GET', body = undefined) {
    const headers = { Authorization: `Bearer ${ADMIN_KEY}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(`${this.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
    return r.json();
  }
}

export function tempDir() {
  return makeTempDir('sanke-webclient');
}

/** launch starts Chromium (the flags of issue 6) with a fresh profile under dir. */
export function launch(dir) {
  return launchChromium(chromium, dir);
}

/** launchFirefox starts Firefox ESR with a fresh profile under dir (see the harness). */
export function launchFirefox(dir) {
  return launchFirefoxWith(puppeteer, dir);
}

/** newFirefoxPage opens a page in its own browser context (own sessionStorage), like newPage. */
export async function newFirefoxPage(browser, name, viewport = { width: 1366, height: 768 }) {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  await page.setViewport(viewport);
  return instrument(page, name);
}

/** Console messages that report a Content-Security-Policy violation (ours, Chromium's, Firefox's). */
const CSP_MESSAGE = /csp violation|content[- ]security[- ]policy|refused to (load|execute|apply|connect|frame|create)/i;

/** reportCSPViolations runs in every page before its scripts: violations go to the console. */
function reportCSPViolations() {
  document.addEventListener('securitypolicyviolation', (e) => {
    console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile || ''}:${e.lineNumber || 0})`);
  });
}

/**
 * instrument names a page, collects its console and page errors for saveLogs (and the
 * Content-Security-Policy violations for assertNoCSPViolations) and accepts its dialogs; the
 * same for playwright and puppeteer pages.
 */
async function instrument(page, name) {
  page.sankeName = name;
  page.consoleLog = [];
  page.cspViolations = [];
  if (page.addInitScript) await page.addInitScript(reportCSPViolations);
  else await page.evaluateOnNewDocument(reportCSPViolations);
  page.on('console', (m) => {
    const line = `[${m.type()}] ${m.text()}`;
    page.consoleLog.push(line);
    if (CSP_MESSAGE.test(m.text())) page.cspViolations.push(line);
  });
  page.on('pageerror', (e) => page.consoleLog.push(`[pageerror] ${e.stack || e.message}`));
  page.on('dialog', (d) => void d.accept());
  return page;
}

/**
 * assertNoCSPViolations checks that the server sends the web client's Content-Security-Policy
 * and that no page broke it (an inline script or style, eval, a source it does not allow).
 */
export async function assertNoCSPViolations(pages, base) {
  const resp = await fetch(`${base}/`);
  const csp = resp.headers.get('content-security-policy') || '';
  for (const want of ["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"]) assert.ok(csp.includes(want), `Content-Security-Policy ${JSON.stringify(csp)} lacks ${want}`);
  assert.equal(resp.headers.get('x-frame-options'), 'DENY');
  const violations = Object.values(pages).filter(Boolean).flatMap((p) => p.cspViolations.map((v) => `${p.sankeName}: ${v}`));
  assert.deepEqual(violations, [], 'pages broke the Content-Security-Policy');
}

/**
 * newPage opens a page in a fresh context (its own sessionStorage: one classroom each);
 * device adds context options (a tablet: isMobile, hasTouch, deviceScaleFactor).
 */
export async function newPage(browser, name, viewport = { width: 1366, height: 768 }, device = {}) {
  // The classroom service's time zone (classroom.timezone): days in the client are local days.
  const ctx = await browser.newContext({ viewport, locale: 'zh-CN', timezoneId: 'Asia/Shanghai', permissions: ['camera', 'microphone'], ...device });
  return instrument(await ctx.newPage(), name);
}

export async function screenshot(page, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  log(`screenshot ${file}`);
  return file;
}

export async function saveLogs(pages, server, name) {
  await mkdir(join(ARTIFACTS, 'logs'), { recursive: true });
  for (const p of pages) {
    if (p) await writeFile(join(ARTIFACTS, 'logs', `${name}-${p.sankeName}.console.log`), (p.consoleLog || []).join('\n'));
  }
  if (server) await writeFile(join(ARTIFACTS, 'logs', `${name}-server.log`), server.log.join('\n'));
}

/**
 * signIn signs a page in with a classroom or supervisor account. Locators have the same
 * fill/click in playwright and puppeteer, so it drives Chromium and Firefox pages alike.
 */
export async function signIn(page, base, account) {
  await page.goto(`${base}/`);
  await page.locator('input[name=account]').fill(account);
  await page.locator('input[name=password]').fill(PASSWORDS[account]);
  await page.locator('[data-testid=login-form] button[type=submit]').click();
  await page.waitForSelector('[data-testid=sessions]');
}

/**
 * compareCoverage asserts that the dashboard's table (one row per group and the total) shows
 * what GET /api/v1/coverage answers (admin key) for the period on screen, grouped by groupBy,
 * for region (all regions when empty). It retries while the table is still loading a new
 * choice, and returns the API's report.
 */
export async function compareCoverage(page, sanke, groupBy, region = '') {
  const once = async () => {
    const q = await page.evaluate(() => ({
      from: document.querySelector('[data-testid=from]').value,
      to: document.querySelector('[data-testid=to]').value,
    }));
    const rep = await sanke.api(`/api/v1/coverage?from=${q.from}&to=${q.to}&group_by=${groupBy}${region ? `&region=${region}` : ''}`);
    const table = await page.$$eval('[data-testid=coverage-table] tr[data-key]', (trs) =>
      trs.map((tr) => ({
        key: tr.dataset.key,
        cells: Object.fromEntries([...tr.querySelectorAll('td[data-col]')].map((td) => [td.dataset.col, { value: td.dataset.value, text: td.textContent }])),
      })),
    );
    const byKey = new Map(table.map((r) => [r.key, r.cells]));
    assert.equal(table.length, rep.groups.length + 1, `one row per group plus the total (${groupBy})`);
    const check = (cells, g, what) => {
      for (const col of ['teaching_points', 'covered_teaching_points', 'coverage_rate', 'scheduled', 'valid', 'delivery_rate', 'routine_rate']) {
        const want = g[col] === null ? '' : String(g[col]);
        assert.equal(cells[col].value, want, `${what} ${col}`);
      }
      const hours = Object.values(g.class_hours ?? {}).reduce((s, v) => s + v.hours, 0);
      assert.ok(Math.abs(Number(cells.class_hours.value) - hours) < 0.01, `${what} class hours`);
      if (g.coverage_rate !== null) assert.ok(cells.coverage_rate.text.endsWith('%'), `${what} coverage shown as a percentage`);
    };
    for (const g of rep.groups) {
      const cells = byKey.get(groupBy.split(',').map((d) => g.key[d] ?? '').join('\u0000'));
      assert.ok(cells, `row for ${JSON.stringify(g.key)}`);
      check(cells, g, JSON.stringify(g.key));
    }
    check(byKey.get('total'), rep.total, 'total');
    return rep;
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await once();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(300);
    }
  }
}

/** chartDrawn waits until an ECharts canvas under [data-testid=id] has non-blank pixels. */
export async function chartDrawn(page, id) {
  await pollUntil(() => page.evaluate((sel) => {
    const c = document.querySelector(`[data-testid=${sel}] canvas`);
    if (!c || c.width === 0) return false;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 16) if (d[i] > 0) n++;
    return n > 500;
  }, id), { what: `${id} canvas drawn on ${page.sankeName}` });
}

/**
 * videoPlaying: the element plays (not paused, has a size, its clock advances) and, for a
 * remote track, the track's decoder keeps producing frames (inbound-rtp framesDecoded).
 * Headless Chromium without a GPU presents few frames, so totalVideoFrames is not used.
 */
export async function videoPlaying(page, selector, timeout = 30000) {
  return pollUntil(
    () =>
      page.evaluate(async (sel) => {
        const v = document.querySelector(sel);
        if (!v || v.videoWidth === 0 || v.paused || v.readyState < 2) return false;
        // A stopped track leaves Chromium's element ticking on a frozen frame: the track must be live.
        if (v.srcObject?.getVideoTracks().some((t) => t.readyState !== 'live')) return false;
        const sid = v.dataset.track;
        const decoded = async () => {
          for (const live of Object.values(window.__sanke ?? {})) {
            for (const p of live.room.remoteParticipants.values()) {
              for (const pub of p.trackPublications.values()) {
                if (pub.trackSid === sid && pub.track?.receiver) {
                  let n = 0;
                  (await pub.track.receiver.getStats()).forEach((s) => {
                    if (s.type === 'inbound-rtp') n += s.framesDecoded ?? 0;
                  });
                  return n;
                }
              }
            }
          }
          return undefined;
        };
        const t1 = v.currentTime;
        const f1 = await decoded();
        await new Promise((r) => setTimeout(r, 600));
        const f2 = await decoded();
        if (!(v.currentTime > t1)) return false;
        if (f1 !== undefined && !(f2 > f1)) return false;
        return { width: v.videoWidth, height: v.videoHeight, framesDecoded: f2 };
      }, selector),
    { timeout, what: `${selector} playing on ${page.sankeName}` },
  );
}

/** slideSvg draws a 1920x1080 slide (what a teacher exports from PowerPoint). */
export function slideSvg(n, title, lines) {
  const body = lines.map((l, i) => `<text x="140" y="${420 + i * 110}" font-size="64" fill="#1f2937">${l}</text>`).join('');
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="1920" height="1080" viewBox="0 0 1920 1080">
<rect width="1920" height="1080" fill="#ffffff"/><rect width="1920" height="180" fill="#0f5c4d"/>
<text x="140" y="118" font-size="72" fill="#ffffff" font-weight="bold">${title}</text>
<text x="1780" y="1020" font-size="40" fill="#6b7280" text-anchor="end">${n}</text>${body}</svg>`);
}

/** audioPackets reports the audio packets a page receives from identity (0 when it has no track). */
export async function audioPackets(page, identity) {
  return page.evaluate(async (id) => {
    const live = window.__sanke?.class;
    const p = live?.room.remoteParticipants.get(id);
    const pub = p && [...p.audioTrackPublications.values()].find((x) => x.source === 'microphone');
    const track = pub?.track;
    if (!track || !pub.isSubscribed) return { subscribed: false, packets: 0, muted: pub?.isMuted ?? null };
    const stats = await track.receiver?.getStats();
    let packets = 0;
    stats?.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') packets += s.packetsReceived;
    });
    return { subscribed: true, packets, muted: pub.isMuted };
  }, identity);
}

/**
 * audioFlows waits until page receives identity's microphone, then checks that its packets
 * keep coming (after a second and, first, after waitMore, e.g. an audio element check). It
 * returns the packet counts seen.
 */
export async function audioFlows(page, identity, what, { timeout = 15000, waitMore } = {}) {
  const first = await pollUntil(async () => {
    const a = await audioPackets(page, identity);
    return a.subscribed && a.packets > 0 && a;
  }, { what: `${what}: audio received`, timeout });
  if (waitMore) await waitMore();
  await sleep(1000);
  const second = await audioPackets(page, identity);
  assert.ok(second.packets > first.packets, `${what}: audio keeps flowing (${first.packets} -> ${second.packets})`);
  return { first: first.packets, second: second.packets };
}

/** teardown saves the pages' logs and the server log under label, then stops everything. */
export async function teardown({ pages, sanke, browsers, dir, label }) {
  await saveLogs(Object.values(pages), sanke, label).catch(() => undefined);
  for (const b of browsers) await b?.close().catch(() => undefined);
  await sanke?.stop().catch(() => undefined);
  if (dir) await removeDir(dir, 'SANKE_WEBCLIENT_KEEP');
}

/**
 * startClass: a signed-in teacher page joins a session (device check, then the console),
 * publishes its camera and, with slides, two slide images. Works on playwright pages.
 */
export async function startClass(page, base, session, { slides = true } = {}) {
  await signIn(page, base, 'M1');
  await page.locator(`[data-testid=join-${session}]:not([disabled])`).click();
  await page.waitForSelector('[data-testid=device-check]');
  await page.locator('[data-testid=start]').click();
  await page.waitForSelector('[data-testid=teacher-console]');
  await pollUntil(() => page.evaluate(() => window.__sanke?.class?.room.localParticipant.isCameraEnabled), { what: 'the teacher camera published', interval: 100 });
  if (!slides) return;
  await page.setInputFiles('[data-testid=slides-input]', [
    { name: '01.svg', mimeType: 'image/svg+xml', buffer: slideSvg(1, '第三单元 · 歌曲《小星星》', ['一、学唱歌曲：一闪一闪亮晶晶', '二、认识节拍：四二拍 ♩ ♩ | ♩ ♩', '三、分组合唱与律动']) },
    { name: '02.svg', mimeType: 'image/svg+xml', buffer: slideSvg(2, '课堂练习', ['跟着老师拍手打节奏', '请教学点的同学一起唱']) },
  ]);
  await pollUntil(() => page.evaluate(() => window.__sanke.class.room.localParticipant.isScreenShareEnabled), { what: 'teacher publishes the slides' });
}
