// Browser tests of issue 6, in order against one sanke server (a class's life):
//   1. a teacher and two teaching points join a scheduled delivery class: both teaching points
//      play the teacher's video and the slides; one raises its hand, the teacher sees it and
//      calls on it, the other teaching point receives its audio; ending the call mutes it;
//   2. a supervisor's wall plays the class thumbnail, and the class does not see the supervisor;
//   3. the research room and the recordings screen (the class was recorded automatically);
//   4. the coverage dashboard shows the numbers of the coverage API for the finished class,
//      and its chart canvases are drawn;
//   5. a supervisor signed in with its own account opens the dashboard of its region (only).
// Every screen is saved as a PNG under web-client/test-artifacts/.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  assertNoCSPViolations, ARTIFACTS, Sanke, audioFlows, audioPackets, chartDrawn, compareCoverage, dataset, launch, log, newPage, pollUntil, screenshot, signIn, sleep, slideSvg, teardown, tempDir,
  videoPlaying, deliverySession,
  missingChromium, prerequisite,
} from './helpers.mjs';

const SESSION = 'E2E-DELIVERY';

// A regression seen before (fixed in sfu/room/publish.go): TrackInfo.codecs[].mime_type "vp8"
// instead of "video/VP8" makes livekit-client 2.23 throw in publishTrack for every video track.
const BUG_CODEC_MIME = 'server bug: TrackInfo.codecs[].mime_type is not a MIME type ("vp8" instead of "video/VP8"); ' +
  'livekit-client 2.23 throws in publishTrack for every video track (sfu/room/publish.go)';
const ROOM = `class-${SESSION}`;

// What this file needs that a machine may lack (see prerequisite in the harness).
const missing = missingChromium();

describe('web client against a real sanke', { timeout: 300_000 }, () => {
  let dir;
  let sanke;
  let browser;
  const pages = {};
  let deliveryStart;
  let deliveryEnd;

  before(async () => {
    if (missing) return; // every test skips (fails in CI) with the reason
    dir = await tempDir();
    sanke = new Sanke(dir);
    await sanke.build();
    const now = Date.now();
    // The class is scheduled long enough for the slowest machine to get through tests 1-3;
    // test 3 ends it and moves its scheduled end to then, so its record is made soon after.
    deliveryStart = now + 20_000;
    deliveryEnd = deliveryStart + 30 * 60_000;
    await sanke.start(dataset({ deliveryStart, deliveryEnd, researchStart: now - 60_000, researchEnd: now + 30 * 60_000 }), ROOM);
    log(`sanke at ${sanke.url}; artifacts in ${ARTIFACTS}`);
    browser = await launch(dir);
  });

  after(() => teardown({ pages, sanke, browsers: [browser], dir, label: 'run' }));

  it('1. delivery class: teacher video and slides at both teaching points; hand, call-on, audio, end of call', async (t) => {
    if (!prerequisite(t, missing)) return;
    const base = sanke.url;
    const teacher = (pages.teacher = await newPage(browser, 'teacher'));
    const tp1 = (pages.tp1 = await newPage(browser, 'tp1'));
    const tp2 = (pages.tp2 = await newPage(browser, 'tp2'));

    await teacher.goto(`${base}/`);
    await teacher.waitForSelector('[data-testid=login-form]');
    await screenshot(teacher, '01-sign-in');

    await signIn(teacher, base, 'M1');
    await teacher.waitForSelector(`[data-testid=join-${SESSION}]:not([disabled])`);
    await screenshot(teacher, '02-today-sessions-teacher');
    await teacher.click(`[data-testid=join-${SESSION}]`);
    await teacher.waitForSelector('[data-testid=device-check]');
    await videoPlaying(teacher, '[data-testid=preview-video]');
    await screenshot(teacher, '03-teacher-device-check');
    await teacher.click('[data-testid=start]');
    await teacher.waitForSelector('[data-testid=teacher-console]');
    const camera = await pollUntil(() => teacher.evaluate(() => {
      if (window.__sanke?.class?.room.localParticipant.isCameraEnabled) return 'published';
      return (document.querySelector('.toasts')?.innerText ?? '').includes("reading 'toLowerCase'") ? 'codec-bug' : false;
    }), { what: 'the teacher camera published', interval: 100 });
    assert.equal(camera, 'published', BUG_CODEC_MIME);
    await teacher.setInputFiles('[data-testid=slides-input]', [
      { name: '01.svg', mimeType: 'image/svg+xml', buffer: slideSvg(1, '第三单元 · 歌曲《小星星》', ['一、学唱歌曲：一闪一闪亮晶晶', '二、认识节拍：四二拍 ♩ ♩ | ♩ ♩', '三、分组合唱与律动']) },
      { name: '02.svg', mimeType: 'image/svg+xml', buffer: slideSvg(2, '课堂练习', ['跟着老师拍手打节奏', '请教学点的同学一起唱']) },
    ]);
    await pollUntil(() => teacher.evaluate(() => window.__sanke.class.room.localParticipant.isScreenShareEnabled), { what: 'teacher publishes the slides' });

    for (const [page, account] of [[tp1, 'T1'], [tp2, 'T2']]) {
      await signIn(page, base, account);
      await page.click(`[data-testid=join-${SESSION}]`);
      await page.waitForSelector('[data-testid=device-check]');
      await page.click('[data-testid=start]');
      await page.waitForSelector('[data-testid=point-screen]');
    }
    for (const page of [tp1, tp2]) {
      const v = await videoPlaying(page, '[data-testid=teacher-video]');
      const s = await videoPlaying(page, '[data-testid=slides-video]');
      log(`${page.sankeName}: teacher video ${v.width}x${v.height}, slides ${s.width}x${s.height}`);
      assert.ok(s.width >= 1280, `slides are sent at a high resolution (${s.width}x${s.height})`);
    }
    // The teacher's grid shows both teaching points connected with their video.
    for (const id of ['T1', 'T2']) {
      await teacher.waitForSelector(`[data-testid=tp-${id}][data-state=online]`);
      await videoPlaying(teacher, `[data-testid=tp-video-${id}]`);
    }
    await pollUntil(() => teacher.evaluate(() => [...document.querySelectorAll('[data-quality]')].some((e) => e.dataset.quality !== 'unknown')), {
      what: 'a connection quality from the server', timeout: 20000,
    });
    await screenshot(tp2, '05-teaching-point-slides-large');

    // T1 raises its hand; the teacher sees it.
    await tp1.click('[data-testid=raise-hand]');
    await teacher.waitForSelector('[data-testid=tp-T1][data-hand=raised]', { timeout: 10000 });
    await tp1.waitForSelector('[data-testid=raise-hand][data-raised=true]');
    await screenshot(teacher, '04-teacher-console-hand-raised');

    // Before the call, T2 receives no audio from T1 (T1 may not publish its microphone).
    assert.equal((await audioPackets(tp2, 'T1')).subscribed, false, 'T1 has no microphone before it is called on');

    await teacher.click('[data-testid=call-T1]');
    await tp1.waitForSelector('[data-testid=called-on]', { timeout: 10000 });
    await pollUntil(() => tp1.evaluate(() => window.__sanke.class.room.localParticipant.isMicrophoneEnabled), { what: 'T1 publishes its microphone' });
    await audioFlows(tp2, 'T1', "T1's microphone at T2");
    await tp2.click('[data-testid=layout-teacher]');
    await videoPlaying(tp2, '[data-testid=teacher-video]');
    await screenshot(tp1, '06-teaching-point-called-on');
    await screenshot(tp2, '07-teaching-point-teacher-large');
    await teacher.waitForSelector('[data-testid=tp-T1][data-called=true]');
    await screenshot(teacher, '08-teacher-console-called-on');

    // Ending the call withdraws T1's microphone: T2 no longer receives it.
    await teacher.click('[data-testid=end-call-T1]');
    await pollUntil(async () => !(await audioPackets(tp2, 'T1')).subscribed, { what: "T1's audio gone at T2", timeout: 15000 });
    await pollUntil(() => tp1.evaluate(() => !window.__sanke.class.room.localParticipant.isMicrophoneEnabled), { what: 'T1 microphone off' });
    assert.equal(await tp1.$('[data-testid=called-on]'), null, 'T1 no longer shows the called-on banner');
  });

  it('2. supervisor wall: the class thumbnail plays, and the class does not see the supervisor', async (t) => {
    if (!prerequisite(t, missing)) return;
    const sup = (pages.supervisor = await newPage(browser, 'supervisor', { width: 1440, height: 900 }));
    await signIn(sup, sanke.url, 'HH-SUP');
    await sup.click('[data-testid=nav-wall]');
    // Attached is enough here: videoPlaying below asserts what matters (the thumbnail plays).
    // Waiting for "visible" timed out once on a loaded 2-core CI host with the tile on screen.
    await sup.waitForSelector(`[data-testid=wall-${SESSION}]`, { state: 'attached', timeout: 60_000 });
    const v = await videoPlaying(sup, `[data-testid=wall-video-${SESSION}]`);
    log(`wall thumbnail ${v.width}x${v.height}`);
    assert.ok(v.width <= 640, `the wall gets a low layer (${v.width}x${v.height})`);
    await sleep(500);
    await screenshot(sup, '09-supervisor-wall');

    // The supervisor is connected (hidden) and no class page lists it.
    await pollUntil(() => sup.evaluate((s) => window.__sanke[`wall-${s}`]?.room.state === 'connected', SESSION), { what: 'supervisor connected' });
    for (const name of ['teacher', 'tp1', 'tp2']) {
      const seen = await pages[name].evaluate(() => ({
        ids: [...window.__sanke.class.room.remoteParticipants.keys()],
        text: document.body.innerText,
      }));
      assert.ok(!seen.ids.some((id) => id.startsWith('supervisor')), `${name} does not see the supervisor: ${seen.ids}`);
      assert.ok(!seen.text.includes('巡课员'), `${name}'s screen does not name the supervisor`);
    }
    await sup.click(`[data-testid=wall-${SESSION}]`);
    await sup.waitForSelector('[data-testid=wall-full]');
    await videoPlaying(sup, '[data-testid=wall-full-video]');
    const listed = await sup.$$eval('[data-testid=wall-participants] li', (els) => els.map((e) => e.textContent));
    assert.ok(listed.length >= 3, `the full view lists the class: ${listed}`);
    await screenshot(sup, '10-supervisor-watching-class');
    await sup.close();
  });

  it('3. research room and recordings', async (t) => {
    if (!prerequisite(t, missing)) return;
    const m2 = (pages.research = await newPage(browser, 'research-m2'));
    await signIn(m2, sanke.url, 'M2');
    await m2.click('[data-testid=join-E2E-RESEARCH]');
    await m2.click('[data-testid=start]');
    await m2.waitForSelector('[data-testid=research-room]');
    await videoPlaying(m2, '[data-testid=gallery] video');
    await screenshot(m2, '11-research-room');
    await m2.close();

    // The class has been recorded automatically (recording.auto_rooms); the teacher ends it
    // once the teaching points have been connected long enough for a valid session.
    const teacher = pages.teacher;
    await teacher.waitForSelector('[data-testid=rec-indicator]', { timeout: 20000 });
    const validAt = deliveryStart + 35_000;
    if (Date.now() < validAt) await sleep(validAt - Date.now());
    await teacher.click('[data-testid=end-class]');
    // The timetable follows the class, which ended: its scheduled end moves to now (to the
    // second), so its record is made finalize_delay from now, not at the end of the long schedule.
    deliveryEnd = Math.ceil((Date.now() + 1000) / 1000) * 1000;
    await sanke.api(`/api/v1/sessions/${SESSION}`, 'PUT', deliverySession(deliveryStart, deliveryEnd));
    await pages.tp1.waitForSelector('[data-testid=class-ended]', { timeout: 10000 });
    await pages.tp2.waitForSelector('[data-testid=class-ended]', { timeout: 10000 });
    await screenshot(pages.tp1, '12-teaching-point-class-ended');
    await pages.tp1.close();
    await pages.tp2.close();

    await teacher.waitForSelector('[data-testid=nav-recordings]');
    await pollUntil(async () => {
      await teacher.goto(`${sanke.url}/recordings`);
      await teacher.waitForSelector(`[data-testid=rec-session-${SESSION}]`);
      return teacher.$(`[data-testid=rec-session-${SESSION}] [data-testid^=recording-]`);
    }, { what: 'a stored recording of the class', timeout: 45000, interval: 2000 });
    // Every file listed loads in the player; those with video play it. A participant's first
    // file may hold its microphone alone (its camera came after the recorder's gather window,
    // which a loaded machine makes likely), so the check is on all of them, not the first.
    const files = await teacher.$$eval(`[data-testid=rec-session-${SESSION}] [data-testid^=play-]`, (bs) => bs.map((b) => b.dataset.testid));
    const played = [];
    for (const id of files) {
      await teacher.click(`[data-testid="${id}"]`);
      const state = await pollUntil(() => teacher.evaluate((src) => {
        const v = document.querySelector('[data-testid=player-video]');
        if (!v || !v.currentSrc || v.currentSrc === src || v.readyState < 2) return false;
        if (v.videoWidth === 0) return { src: v.currentSrc, kind: 'audio' };
        return v.currentTime > 0.3 ? { src: v.currentSrc, kind: 'video' } : false;
      }, played.at(-1)?.src ?? ''), { what: `the recorded file ${id} plays`, timeout: 20000 });
      log(`${id}: ${state.kind}`);
      played.push(state);
    }
    assert.ok(played.some((p) => p.kind === 'video'), `no recorded file of the class plays video: ${files.join(', ')}`);
    await screenshot(teacher, '13-recordings');
    await teacher.close();
  });

  it('4. coverage dashboard shows the coverage API numbers and draws its charts', async (t) => {
    if (!prerequisite(t, missing)) return;
    // Wait for the class record (finalized finalize_delay after the scheduled end).
    await pollUntil(async () => JSON.stringify(await sanke.api('/api/v1/records')).includes(SESSION), {
      what: 'the session record', timeout: Math.min(120_000, Math.max(30000, deliveryEnd - Date.now() + 30000)), interval: 1000,
    });
    const admin = (pages.admin = await newPage(browser, 'admin', { width: 1440, height: 1000 }));
    await admin.goto(`${sanke.url}/`);
    await admin.click('[data-testid=tab-admin]');
    await admin.fill('input[name=admin-token]', 'e2e-admin-key-0123456789abcdef');
    await admin.click('[data-testid=login-form] button[type=submit]');
    await admin.waitForSelector('[data-testid=coverage-table] tbody tr');

    const county = await compareCoverage(admin, sanke, 'county');
    log(`coverage total: ${JSON.stringify({ tps: county.total.teaching_points, covered: county.total.covered_teaching_points, scheduled: county.total.scheduled, valid: county.total.valid })}`);
    assert.ok(county.total.scheduled >= 2, 'the finished class is counted');
    const kpi = await admin.textContent('[data-testid=kpi-coverage]');
    assert.ok(kpi.includes(`${county.total.covered_teaching_points}/${county.total.teaching_points}`), `KPI shows ${kpi}`);

    // Chart canvases are drawn (pixels that are not blank).
    for (const id of ['chart-time', 'chart-groups']) await chartDrawn(admin, id);
    await sleep(800); // chart animations
    await admin.hover('[data-testid=chart-groups] canvas'); // a tooltip (drawn on the canvas: CSP)
    await sleep(300);
    await screenshot(admin, '14-coverage-dashboard');

    await admin.selectOption('[data-testid=group-by]', 'teaching_point');
    await pollUntil(() => admin.evaluate(() => document.querySelectorAll('[data-testid=coverage-table] tbody tr').length >= 5), { what: 'teaching point rows' });
    const tp = await compareCoverage(admin, sanke, 'teaching_point');
    const week = await sanke.api(`/api/v1/coverage?from=${await admin.inputValue('[data-testid=from]')}&to=${await admin.inputValue('[data-testid=to]')}&group_by=teaching_point`);
    const notCovered = week.groups.filter((g) => g.covered_teaching_points === 0).map((g) => g.key.teaching_point).sort();
    const shown = (await admin.$$eval('[data-testid^=unserved-]', (els) => els.map((e) => e.dataset.testid.replace('unserved-', '')))).sort();
    assert.ok(notCovered.every((id) => shown.includes(id)) || shown.length > 0, `unserved teaching points shown: ${shown}`);
    assert.ok(tp.groups.length >= 5);
    await sleep(800);
    await screenshot(admin, '15-coverage-by-teaching-point');
    await admin.click('[data-testid=lang]');
    await sleep(800);
    await screenshot(admin, '16-coverage-english');
  });

  it('5. a supervisor opens the dashboard of its own region, and only of its region', async (t) => {
    if (!prerequisite(t, missing)) return;
    const sup = (pages.supdash = await newPage(browser, 'supervisor-dashboard', { width: 1440, height: 1000 }));
    await signIn(sup, sanke.url, 'HH-SUP'); // 怀化市教育局巡课员, region 431200
    await sup.click('[data-testid=nav-dashboard]');
    await sup.waitForSelector('[data-testid=coverage-table] tbody tr');
    assert.equal(await sup.inputValue('[data-testid=region]'), '431200', 'the dashboard starts at the supervisor\'s region');
    await pollUntil(async () => (await sup.$$eval('[data-testid=region] option', (os) => os.map((o) => o.value))).join() === '431200,431223,431224', {
      what: 'the region choice is the supervisor\'s city and its counties',
    });
    const city = await compareCoverage(sup, sanke, 'county', '431200');
    assert.equal(city.region, '431200');
    assert.ok(city.total.scheduled >= 2, 'the finished class is counted');
    const kpi = await sup.textContent('[data-testid=kpi-coverage]');
    assert.ok(kpi.includes(`${city.total.covered_teaching_points}/${city.total.teaching_points}`), `KPI shows ${kpi}`);
    await chartDrawn(sup, 'chart-groups');
    // The dashboard's requests carry the supervisor's sign-in token: another city is refused.
    const refused = await sup.evaluate(async () => {
      const { token } = JSON.parse(sessionStorage.getItem('sanke.auth'));
      const get = (q) => fetch(`/api/v1/coverage${q}`, { headers: { Authorization: `Bearer ${token}` } }).then((r) => r.status);
      return { other: await get('?region=430100'), none: await get('') };
    });
    assert.deepEqual(refused, { other: 403, none: 200 });
    await sleep(800);
    await screenshot(sup, '17-supervisor-dashboard');
    await sup.selectOption('[data-testid=region]', '431223');
    const county = await compareCoverage(sup, sanke, 'county', '431223');
    assert.equal(county.total.teaching_points, 2, '辰溪县 has two teaching points');
    // 退出登录 ends the sign-in on the server: the token is refused afterwards.
    const { token } = JSON.parse(await sup.evaluate(() => sessionStorage.getItem('sanke.auth')));
    await sup.click('[data-testid=sign-out]');
    await sup.waitForSelector('[data-testid=login-form]');
    const status = await sup.evaluate((tok) => fetch('/api/v1/me', { headers: { Authorization: `Bearer ${tok}` } }).then((r) => r.status), token);
    assert.equal(status, 401, 'the sign-in token still works after 退出登录');
    await sup.close();
  });

  it('6. no page broke the Content-Security-Policy the server sends', (t) => prerequisite(t, missing) && assertNoCSPViolations(pages, sanke.url));
});
