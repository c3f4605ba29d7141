// The web client in Firefox (issue 6: "works in current Chromium and Firefox"): Debian's
// Firefox ESR, driven by puppeteer-core over WebDriver BiDi with fake media, against a real
// sanke. A teacher in Chromium teaches a delivery class; the teaching point in Firefox
// signs in, passes the device check (preview, device names, microphone level), plays the
// teacher's camera, slides and voice, publishes its
// own camera (the teacher plays it), raises its hand (the teacher sees it), is called on and
// publishes its microphone (the teacher receives it). A supervisor in Firefox opens the
// dashboard of its region. Screenshots: test-artifacts/ff-*.png.
// SANKE_SKIP_FIREFOX=1 skips this file (a choice, so even in CI); SANKE_FIREFOX=<path> uses another
// Firefox. Without Firefox (or Chromium) its tests skip with the reason, and fail in CI.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  assertNoCSPViolations, Sanke, audioFlows, chartDrawn, compareCoverage, dataset, launch, launchFirefox, log, missingChromium, missingFirefox, newFirefoxPage,
  newPage, pollUntil, prerequisite, screenshot, signIn, sleep, startClass, teardown, tempDir, videoPlaying,
} from './helpers.mjs';

const SESSION = 'E2E-DELIVERY';
const skip = process.env.SANKE_SKIP_FIREFOX === '1' ? 'SANKE_SKIP_FIREFOX=1' : false;

// What this file needs that a machine may lack (see prerequisite in the harness).
const missing = missingChromium() || missingFirefox();

describe('web client in Firefox', { timeout: 240_000, skip }, () => {
  let dir;
  let sanke;
  let chromium;
  let firefox;
  const pages = {};

  before(async () => {
    if (missing) return; // every test skips (fails in CI) with the reason
    dir = await tempDir();
    sanke = new Sanke(dir);
    await sanke.build();
    const now = Date.now();
    // The class is on: its room is open from the start.
    await sanke.start(dataset({ deliveryStart: now - 60_000, deliveryEnd: now + 20 * 60_000, researchStart: now + 60 * 60_000, researchEnd: now + 90 * 60_000 }), `class-${SESSION}`);
    [chromium, firefox] = await Promise.all([launch(dir), launchFirefox(dir)]);
    log(`sanke at ${sanke.url}; ${await firefox.version()}`);
  });

  after(() => teardown({ pages, sanke, browsers: [firefox, chromium], dir, label: 'firefox' }));

  it('a teaching point in Firefox plays the class, raises its hand and speaks when called on', async (t) => {
    if (!prerequisite(t, missing)) return;
    const base = sanke.url;
    const teacher = (pages.teacher = await newPage(chromium, 'teacher'));
    await startClass(teacher, base, SESSION);

    const tp = (pages.tp = await newFirefoxPage(firefox, 'firefox-tp1'));
    await tp.goto(`${base}/`);
    await tp.waitForSelector('[data-testid=login-form]');
    await screenshot(tp, 'ff-01-sign-in');
    await signIn(tp, base, 'T1');
    await tp.locator(`[data-testid=join-${SESSION}]:not([disabled])`).click();
    await tp.waitForSelector('[data-testid=device-check]');
    const preview = await videoPlaying(tp, '[data-testid=preview-video]');
    log(`Firefox camera preview ${preview.width}x${preview.height}`);
    // The device choices show the devices in use; the microphone meter moves (after the tap
    // Firefox needs to start web audio).
    const chosen = await pollUntil(() => tp.evaluate(() => {
      const s = ['camera', 'mic'].map((k) => document.querySelector(`[data-testid=select-${k}]`));
      return s.every((e) => e && e.selectedIndex >= 0) && s.map((e) => e.options[e.selectedIndex].textContent);
    }), { what: 'camera and microphone shown in the device check' });
    log(`Firefox device check shows ${chosen.join(', ')}`);
    // The microphone meter needs web audio. Firefox starts an AudioContext only with an audio
    // output device, and this headless machine has none (no /dev/snd, no sound server): the
    // context stays suspended even after a click. The screen must then offer the tap that
    // starts it rather than a meter stuck at zero; with a device, the tap makes it move.
    const level = () => tp.evaluate(() => Number(document.querySelector('[data-testid=mic-level]').dataset.level));
    if (await tp.$('[data-testid=mic-test]')) {
      await tp.locator('[data-testid=mic-test]').click();
      await sleep(1000);
      if ((await level()) === 0) {
        assert.ok(await tp.$('[data-testid=mic-test]'), 'a suspended meter keeps offering its button');
        log('Firefox: web audio suspended (no audio output device here); the meter offers its button');
      }
    } else {
      await pollUntil(async () => (await level()) > 0.05, { what: 'the microphone level moves in Firefox' });
    }
    await screenshot(tp, 'ff-02-device-check');
    await tp.locator('[data-testid=start]').click();
    await tp.waitForSelector('[data-testid=point-screen]');

    // The teacher's camera and slides play in Firefox (decoded frames keep coming).
    const cam = await videoPlaying(tp, '[data-testid=teacher-video]');
    const slides = await videoPlaying(tp, '[data-testid=slides-video]');
    log(`Firefox plays the teacher ${cam.width}x${cam.height}, slides ${slides.width}x${slides.height}`);
    assert.ok(slides.width >= 1280, `slides at a high resolution in Firefox (${slides.width}x${slides.height})`);
    // And the teacher's voice: its audio element plays and packets keep coming.
    await audioFlows(tp, 'M1', "the teacher's voice in Firefox", {
      timeout: 20_000,
      waitMore: () => pollUntil(() => tp.evaluate(async () => {
        const els = [...document.querySelectorAll('.audio-sink audio')];
        const t1 = els.map((e) => e.currentTime);
        await new Promise((r) => setTimeout(r, 500));
        return els.some((e, i) => !e.paused && e.currentTime > t1[i]);
      }), { what: "the teacher's audio element plays in Firefox" }),
    });

    // Firefox publishes the classroom camera; the teacher plays it.
    await teacher.waitForSelector('[data-testid=tp-T1][data-state=online]');
    await pollUntil(() => tp.evaluate(() => window.__sanke?.class?.room.localParticipant.isCameraEnabled), { what: 'Firefox camera published' });
    await videoPlaying(teacher, '[data-testid=tp-video-T1]');
    await sleep(500);
    await screenshot(tp, 'ff-03-teaching-point');

    // Hand up in Firefox; the teacher sees it.
    await tp.locator('[data-testid=raise-hand]:not([disabled])').click();
    await teacher.waitForSelector('[data-testid=tp-T1][data-hand=raised]', { timeout: 10_000 });
    await tp.waitForSelector('[data-testid=raise-hand][data-raised=true]', { timeout: 10_000 });
    await screenshot(tp, 'ff-04-hand-raised');

    // Called on: Firefox publishes its microphone and the teacher receives it.
    await teacher.click('[data-testid=call-T1]');
    await tp.waitForSelector('[data-testid=called-on]', { timeout: 10_000 });
    await pollUntil(() => tp.evaluate(() => window.__sanke.class.room.localParticipant.isMicrophoneEnabled), { what: 'Firefox publishes its microphone' });
    await audioFlows(teacher, 'T1', "Firefox's microphone at the teacher");
    await screenshot(tp, 'ff-05-called-on');
    await teacher.click('[data-testid=end-call-T1]');
    await pollUntil(() => tp.evaluate(() => !window.__sanke.class.room.localParticipant.isMicrophoneEnabled), { what: 'Firefox microphone off after the call' });

    // The layout switch works in Firefox.
    await tp.locator('[data-testid=layout-teacher]').click();
    await videoPlaying(tp, '[data-testid=teacher-video]');
    await screenshot(tp, 'ff-06-teacher-large');
  });

  it('a supervisor in Firefox opens the dashboard of its region', async (t) => {
    if (!prerequisite(t, missing)) return;
    const sup = (pages.supervisor = await newFirefoxPage(firefox, 'firefox-supervisor', { width: 1440, height: 1000 }));
    await signIn(sup, sanke.url, 'HH-SUP');
    await sup.locator('[data-testid=nav-dashboard]').click();
    await sup.waitForSelector('[data-testid=coverage-table] tbody tr');
    const rep = await compareCoverage(sup, sanke, 'county', '431200');
    assert.equal(rep.region, '431200');
    for (const id of ['chart-time', 'chart-groups']) await chartDrawn(sup, id);
    await sleep(800); // chart animations
    await screenshot(sup, 'ff-07-dashboard');
  });

  it('no page broke the Content-Security-Policy the server sends', (t) => prerequisite(t, missing) && assertNoCSPViolations(pages, sanke.url));
});
