// The web client on a tablet (issue 6: "works on a tablet", "large, legible controls"):
// Chromium emulating a 10" tablet (1024x768 CSS px at deviceScaleFactor 2, touch, mobile
// viewport), in landscape and rotated to portrait. For the sign-in screen, the session list,
// the teacher console and the teaching-point screen it asserts: no horizontal overflow, the
// main controls at least 44x44 CSS px (the touch-target size of WCAG 2.5.5 and Apple's HIG),
// and the controls that matter on screen without scrolling and not covered by anything.
// A tap raises the teaching point's hand and the teacher sees it. Screenshots:
// test-artifacts/tablet-*.png.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  assertNoCSPViolations, Sanke, dataset, launch, log, missingChromium, newPage, pollUntil, prerequisite, screenshot, signIn, sleep, startClass, teardown, tempDir,
  videoPlaying,
} from './helpers.mjs';

const SESSION = 'E2E-DELIVERY';
const LANDSCAPE = { width: 1024, height: 768 };
const PORTRAIT = { width: 768, height: 1024 };
const TABLET = { isMobile: true, hasTouch: true, deviceScaleFactor: 2 };
const MIN = 44;

/**
 * checkLayout measures the page and the controls (CSS selectors): sizes, whether each is
 * inside the viewport (no scrolling needed) and on top at its centre. "visible" lists the
 * controls that must be on screen; every control found must be at least MIN x MIN.
 */
async function checkLayout(page, what, controls, visible = controls) {
  const m = await page.evaluate((sels) => {
    const se = document.scrollingElement;
    const out = { scrollWidth: se.scrollWidth, innerWidth, innerHeight, controls: {} };
    for (const sel of sels) {
      const el = document.querySelector(sel);
      if (!el) continue;
      const r = el.getBoundingClientRect();
      const cx = r.left + r.width / 2;
      const cy = r.top + r.height / 2;
      const inView = r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight + 0.5 && r.right <= innerWidth + 0.5;
      const top = inView ? document.elementFromPoint(cx, cy) : null;
      out.controls[sel] = { w: Math.round(r.width), h: Math.round(r.height), inView, onTop: !!top && (el === top || el.contains(top)) };
    }
    return out;
  }, controls);
  const problems = [];
  if (m.scrollWidth > m.innerWidth) problems.push(`horizontal overflow: scrollWidth ${m.scrollWidth} > innerWidth ${m.innerWidth}`);
  for (const sel of controls) {
    const c = m.controls[sel];
    if (!c) {
      if (visible.includes(sel)) problems.push(`${sel} missing`);
      continue;
    }
    if (c.w < MIN || c.h < MIN) problems.push(`${sel} is ${c.w}x${c.h} (< ${MIN}x${MIN})`);
    if (visible.includes(sel) && !c.inView) problems.push(`${sel} is not on screen without scrolling`);
    else if (visible.includes(sel) && !c.onTop) problems.push(`${sel} is covered`);
  }
  log(`${what}: ${m.innerWidth}x${m.innerHeight}, ${Object.keys(m.controls).length} controls checked${problems.length ? `; problems: ${problems.join('; ')}` : ''}`);
  assert.deepEqual(problems, [], `${what} on a tablet`);
}

const SIGN_IN = ['input[name=account]', 'input[name=password]', '[data-testid=login-form] button[type=submit]', '[data-testid=tab-admin]', '[data-testid=lang]'];
const TEACHER = [
  '[data-testid=toggle-mic]', '[data-testid=toggle-cam]', '[data-testid=share-slides]', '[data-testid=toggle-record]', '[data-testid=toggle-chat]',
  '[data-testid=end-class]', '[data-testid=call-T1]', '[data-testid=mode-lecture]', '[data-testid=mode-free]', '[data-testid=next-slide]',
];
const POINT = [
  '[data-testid=raise-hand]', '[data-testid=layout-slides]', '[data-testid=layout-teacher]', '[data-testid=layout-split]', '[data-testid=toggle-lowbw]',
  '[data-testid=toggle-chat]', '[data-testid=fullscreen]', '[data-testid=leave]',
];

// What this file needs that a machine may lack (see prerequisite in the harness).
const missing = missingChromium();

describe('web client on a tablet', { timeout: 240_000 }, () => {
  let dir;
  let sanke;
  let browser;
  const pages = {};

  before(async () => {
    if (missing) return; // every test skips (fails in CI) with the reason
    dir = await tempDir();
    sanke = new Sanke(dir);
    await sanke.build();
    const now = Date.now();
    await sanke.start(dataset({ deliveryStart: now - 60_000, deliveryEnd: now + 20 * 60_000, researchStart: now + 60 * 60_000, researchEnd: now + 90 * 60_000 }), `class-${SESSION}`);
    browser = await launch(dir);
  });

  after(() => teardown({ pages, sanke, browsers: [browser], dir, label: 'tablet' }));

  it('sign-in and session list in landscape and portrait', async (t) => {
    if (!prerequisite(t, missing)) return;
    for (const [name, viewport] of [['landscape', LANDSCAPE], ['portrait', PORTRAIT]]) {
      const page = (pages[`signin-${name}`] = await newPage(browser, `signin-${name}`, viewport, TABLET));
      await page.goto(`${sanke.url}/`);
      await page.waitForSelector('[data-testid=login-form]');
      await checkLayout(page, `sign-in (${name})`, SIGN_IN);
      await screenshot(page, `tablet-${name}-01-sign-in`);
      // Typing and a tap on the sign-in button.
      await page.fill('input[name=account]', 'T2');
      await page.fill('input[name=password]', 'shangpuxi-tp2');
      await page.tap('[data-testid=login-form] button[type=submit]');
      await page.waitForSelector(`[data-testid=join-${SESSION}]:not([disabled])`);
      await checkLayout(page, `session list (${name})`, [`[data-testid=join-${SESSION}]`, '[data-testid=nav-recordings]']);
      await screenshot(page, `tablet-${name}-02-sessions`);
      await page.close();
    }
  });

  it('teacher console and teaching-point screen: sizes, no overflow, rotation, tap to raise the hand', async (t) => {
    if (!prerequisite(t, missing)) return;
    const base = sanke.url;
    const teacher = (pages.teacher = await newPage(browser, 'tablet-teacher', LANDSCAPE, TABLET));
    await startClass(teacher, base, SESSION);
    const tp = (pages.tp = await newPage(browser, 'tablet-tp1', LANDSCAPE, TABLET));
    await signIn(tp, base, 'T1');
    await tp.tap(`[data-testid=join-${SESSION}]`);
    await tp.waitForSelector('[data-testid=device-check]');
    await checkLayout(tp, 'device check (landscape)', ['[data-testid=start]', '[data-testid=select-camera]', '[data-testid=select-mic]']);
    await tp.tap('[data-testid=start]');
    await tp.waitForSelector('[data-testid=point-screen]');
    await videoPlaying(tp, '[data-testid=teacher-video]');
    await videoPlaying(tp, '[data-testid=slides-video]');
    await teacher.waitForSelector('[data-testid=tp-T1][data-state=online]');
    await videoPlaying(teacher, '[data-testid=tp-video-T1]');

    for (const [name, viewport] of [['landscape', LANDSCAPE], ['portrait', PORTRAIT]]) {
      await teacher.setViewportSize(viewport);
      await tp.setViewportSize(viewport);
      await sleep(600); // layout and video resize after the rotation
      await checkLayout(teacher, `teacher console (${name})`, TEACHER);
      await checkLayout(tp, `teaching-point screen (${name})`, POINT);
      // The stage keeps a usable size: the slides fill most of the width.
      const stage = await tp.evaluate(() => {
        const r = document.querySelector('.stage').getBoundingClientRect();
        return { w: r.width, h: r.height };
      });
      assert.ok(stage.w >= viewport.width * 0.9 && stage.h >= 300, `the teaching point's stage is large in ${name}: ${JSON.stringify(stage)}`);

      // A tap raises the hand; the teacher sees it; another tap lowers it.
      await tp.tap('[data-testid=raise-hand]');
      await teacher.waitForSelector('[data-testid=tp-T1][data-hand=raised]', { timeout: 10_000 });
      await tp.waitForSelector('[data-testid=raise-hand][data-raised=true]');
      await sleep(300);
      await screenshot(teacher, `tablet-${name}-03-teacher-console`);
      await screenshot(tp, `tablet-${name}-04-teaching-point`);
      await tp.tap('[data-testid=raise-hand]');
      await teacher.waitForSelector('[data-testid=tp-T1][data-hand=""]', { timeout: 10_000 });
    }

    // A tap on the layout switch shows the teacher large (portrait).
    await tp.tap('[data-testid=layout-teacher]');
    await pollUntil(() => tp.evaluate(() => document.querySelector('[data-testid=point-screen]').classList.contains('layout-teacher')), { what: 'teacher layout' });
    await videoPlaying(tp, '[data-testid=teacher-video]');
    await screenshot(tp, 'tablet-portrait-05-teacher-large');
  });

  it('no page broke the Content-Security-Policy the server sends', (t) => prerequisite(t, missing) && assertNoCSPViolations(pages, sanke.url));
});
