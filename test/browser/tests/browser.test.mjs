// Issue 3: the unmodified npm livekit-client (2.23.0) against Sanke, in headless Chromium.
//
// One Sanke server, one page server and one Chromium are shared by every test (suite.setup);
// each test opens its pages in a fresh browser context and its own room. The restart tests
// run last because they restart the server. Every wait is a poll with a deadline; on failure
// suite.scenario saves screenshots, page logs and the server log under artifacts/<test>/.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdir } from 'node:fs/promises';
import { join as joinPath } from 'node:path';
import {
  FilePublisher, freeTcpPort, goBuild, missingChromium, NetnsLink, pollUntil, prerequisite, SankeServer, serveStatic, sleep, stamp,
  TcpProxy,
} from '../lib/harness.mjs';
import { DIST, launch, Suite, TestPage } from '../lib/suite.mjs';

const suite = new Suite();

// Server bugs these tests found that are not fixed yet: test id -> reason. A listed test is
// skipped with its reason; remove the entry once the server is fixed (or run everything with
// SANKE_BROWSERTEST_NO_SKIP=1). The codec MIME type, SRTP role and shutdown leave bugs it
// found are fixed; test 10's failures were the harness's log (lib/linelog.mjs), not ICE.
const KNOWN_SERVER_BUGS = {};

/**
 * browserTest declares test id: skipped while listed in KNOWN_SERVER_BUGS, and skipped (failed
 * in CI) without Chromium.
 */
function browserTest(name, id, body) {
  const reason = process.env.SANKE_BROWSERTEST_NO_SKIP ? undefined : KNOWN_SERVER_BUGS[id];
  it(name, { timeout: 120000, ...(reason ? { skip: reason } : {}) }, async (t) => {
    if (prerequisite(t, missingChromium())) await body(t);
  });
}

// --- helpers ------------------------------------------------------------------------------

async function join(page, room, identity, url = suite.server.wsUrl) {
  const token = await suite.server.token(room, identity);
  const info = await page.call('connect', url, token);
  assert.equal(info.identity, identity);
  assert.match(info.sid, /^PA_/);
  return info;
}

function remoteTrack(stats, { from, source }) {
  return stats.remote.find((r) => r.from?.identity === from && r.source === source && r.subscribed && r.inbound);
}

function brief(entry) {
  if (!entry) return 'no such subscribed track';
  const { trackSid, source, inbound, element } = entry;
  return JSON.stringify({ trackSid, source, inbound, element });
}

/**
 * waitVideoPlays waits until page decodes the video of (from, source) and framesDecoded keeps
 * increasing (by `frames` more after the first decoded frame), and the element has a size.
 */
async function waitVideoPlays(page, { from, source = 'camera', timeout = 20000, frames = 15, after: notTrack } = {}) {
  const what = `${page.name}: video ${source} from ${from} decoding`;
  const first = await pollUntil(async () => {
    const t = remoteTrack(await page.stats(), { from, source });
    if (t && notTrack && t.trackSid === notTrack) return undefined;
    return t?.inbound?.framesDecoded > 0 && t.element?.videoWidth > 0 ? t : undefined;
  }, { timeout, what, describe: () => 'see page state' }).catch(async (e) => {
    const t = remoteTrack(await page.stats(), { from, source });
    e.message += `; current: ${brief(t)}`;
    throw e;
  });
  const last = await pollUntil(async () => {
    const t = remoteTrack(await page.stats(), { from, source });
    return t?.trackSid === first.trackSid && t.inbound.framesDecoded >= first.inbound.framesDecoded + frames ? t : undefined;
  }, { timeout, what: `${what} (framesDecoded increasing past ${first.inbound.framesDecoded + frames})` });
  return { first, last };
}

/** waitAudioArrives waits until audio packets from `from` keep arriving. */
async function waitAudioArrives(page, { from, timeout = 20000, packets = 20 } = {}) {
  const what = `${page.name}: audio from ${from} arriving`;
  const first = await pollUntil(async () => {
    const t = remoteTrack(await page.stats(), { from, source: 'microphone' });
    return t?.inbound?.packetsReceived > 0 ? t : undefined;
  }, { timeout, what });
  return pollUntil(async () => {
    const t = remoteTrack(await page.stats(), { from, source: 'microphone' });
    return t?.trackSid === first.trackSid && t.inbound.packetsReceived >= first.inbound.packetsReceived + packets ? t : undefined;
  }, { timeout, what: `${what} (packetsReceived increasing past ${first.inbound.packetsReceived + packets})` });
}

/** cameraOutbound returns the publisher's outbound-rtp entries of its camera, by rid. */
async function cameraOutbound(page) {
  const st = await page.stats();
  const cam = st.local.find((l) => l.source === 'camera');
  const byRid = {};
  for (const o of cam?.outbound ?? []) byRid[o.rid ?? ''] = o;
  return byRid;
}

async function publishCameraAndMic(page) {
  const cam = await page.call('publishCamera');
  assert.match(cam.trackSid, /^TR_/);
  assert.equal(cam.settings.width, 1280, `fake camera capture width (settings ${JSON.stringify(cam.settings)})`);
  assert.equal(cam.settings.height, 720);
  const mic = await page.call('publishMicrophone');
  assert.match(mic.trackSid, /^TR_/);
  return { cam, mic };
}

/**
 * subscriberInNamespace runs scenario name with a subscriber's Chromium in a network namespace
 * (NetnsLink; IPv6-only with ipv6), a server of its own listening on bind, the page served on
 * the host's end of the link, and the file publisher (test/browser/filepublisher) on the host:
 * body({ link, server, publisher, pages, browser }). Everything is stopped afterwards; the
 * server's and the publisher's logs are printed when body fails.
 */
async function subscriberInNamespace(name, { ipv6 = false, bind }, body) {
  const workDir = joinPath(suite.tmp, name);
  await mkdir(joinPath(workDir, 'data'), { recursive: true });
  const publisherBin = await goBuild(suite.tmp, './test/browser/filepublisher', 'filepublisher');
  const link = await NetnsLink.create(suite.tmp, { ipv6 });
  const server = new SankeServer({ bin: suite.server.bin, workDir, args: ['--bind', bind] });
  const publisher = new FilePublisher(publisherBin);
  let pages;
  let browser;
  try {
    await server.start();
    pages = await serveStatic(DIST, link.hostIP);
    browser = await launch(suite.tmp, { executablePath: link.wrapper });
    await suite.scenario(name, () => body({ link, server, publisher, pages, browser })).catch((e) => {
      // pion's SRTP debug lines about the publisher's duplicates would fill the tail.
      const log = server.log.lines.filter((l) => !l.includes('duplicated packet')).slice(-100);
      console.log(`${name} server log (tail):\n${log.join('\n')}\nfilepublisher log:\n${publisher.log.tail(200).join('\n')}`);
      throw e;
    });
  } finally {
    await publisher.stop();
    await browser?.close().catch(() => {});
    await pages?.close().catch(() => {});
    await server.stop();
    await link.close();
  }
}

/** timeline renders the page's SDK events since `since` (ms epoch) as "+ms type" items. */
function timeline(state, since) {
  return state.events.filter((e) => e.at >= since).map((e) => `+${e.at - since} ${e.type}${e.sid ? ` ${e.sid}` : ''}` +
    `${e.state ? ` ${e.state}` : ''}${e.source ? ` ${e.source}` : ''}`).join(', ');
}

/**
 * assertSteady checks that nothing disturbed the pages' sessions: no reconnect, no disconnect,
 * and the server never rated a local connection as lost (livekit-client forces a full
 * reconnect after 10 s of LOST while publishing).
 */
async function assertSteady(pages) {
  for (const page of pages) {
    const st = await page.state();
    const bad = st.events.filter((e) => ['reconnecting', 'signalReconnecting', 'disconnected', 'trackSubscriptionFailed'].includes(e.type) ||
      (e.type === 'connectionQualityChanged' && e.local && e.quality === 'lost'));
    assert.deepEqual(bad, [], `${page.name}: unexpected events`);
  }
}

function eventsOf(state, type) {
  return state.events.filter((e) => e.type === type);
}

/** subscriberBehind opens the test page behind link and joins room as bob; close its context. */
async function subscriberBehind(browser, pages, link, server, room) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const sub = new TestPage(page, 'subscriber-behind-the-line');
  await page.goto(`${pages.url}/index.html?label=sub&videoWidth=1280&videoHeight=720`);
  await page.waitForFunction(() => window.sanke !== undefined, null, { timeout: 15000 });
  await join(sub, room, 'bob', `ws://${link.hostIP}:${server.port}`);
  return { sub, context };
}

// --- the suite ----------------------------------------------------------------------------

describe('livekit-client 2.23 in headless Chromium against Sanke', () => {
  // Without Chromium there is nothing to set up: every test skips (fails in CI) with the reason.
  before(() => (missingChromium() ? undefined : suite.setup()), { timeout: 240000 });
  after(() => suite.teardown(), { timeout: 60000 });

  browserTest('0. cross-origin validate: a refused join reaches the SDK as NotAllowed with the reason (CORS)', '0', async () => {
    await suite.scenario('0-validate-cors', async ({ open, server }) => {
      const page = await open('refused');
      // A token signed with the wrong secret: the websocket upgrade fails, the SDK fetches
      // /rtc/v1/validate from the page's origin and can only read the 401 through CORS.
      const bad = await server.token('validate-room', 'mallory', ['--api-key', 'devkey', '--api-secret', 'not-the-dev-secret-not-the-dev-secret']);
      const err = await page.call('connectExpectingError', server.wsUrl, bad);
      assert.ok(err, 'connect with a bad token succeeded');
      assert.equal(err.reasonName, 'NotAllowed', `SDK error: ${JSON.stringify(err)}`);
      assert.equal(err.status, 401, `SDK error: ${JSON.stringify(err)}`);
      // The SDK read the validate body (the server's reason) cross-origin.
      assert.match(err.message, /invalid authorization token/, `SDK error: ${JSON.stringify(err)}`);
    });
  });

  browserTest('1. camera (720p simulcast) + microphone reach two subscribers', '1', async () => {
    await suite.scenario('1-media', async ({ open }) => {
      const room = 'media-room';
      const pub = await open('publisher');
      const subA = await open('subscriber-a');
      const subB = await open('subscriber-b');
      await join(pub, room, 'alice');
      await publishCameraAndMic(pub);
      await Promise.all([join(subA, room, 'bob'), join(subB, room, 'carol')]);
      for (const sub of [subA, subB]) {
        const { last } = await waitVideoPlays(sub, { from: 'alice' });
        assert.ok(last.element.videoWidth > 0, `${sub.name}: videoWidth ${last.element.videoWidth}`);
        await waitAudioArrives(sub, { from: 'alice' });
        const st = await sub.state();
        const subscribed = eventsOf(st, 'trackSubscribed').filter((e) => e.from.identity === 'alice');
        assert.deepEqual(subscribed.map((e) => e.source).sort(), ['camera', 'microphone'], `${sub.name} TrackSubscribed events`);
        assert.equal(eventsOf(st, 'trackSubscriptionFailed').length, 0);
      }
      // The publisher really sends three simulcast layers of a 1280x720 capture.
      const out = await pollUntil(async () => {
        const o = await cameraOutbound(pub);
        return ['q', 'h', 'f'].every((r) => o[r]?.bytesSent > 0) ? o : undefined;
      }, { what: 'publisher outbound-rtp for rids q, h and f' });
      console.log(`${stamp()} publisher layers: ${['q', 'h', 'f'].map((r) => `${r}=${out[r].frameWidth}x${out[r].frameHeight}`).join(' ')}`);
      await assertSteady([pub, subA, subB]);
    });
  });

  browserTest('1b. lip sync: a camera and its microphone share a MediaStream, a screen share has its own, with one PeerConnection or two', '1b', async () => {
    await suite.scenario('1b-lip-sync', async ({ open }) => {
      const room = 'sync-room';
      const pub = await open('teacher');
      const single = await open('pupil-single');
      const dual = await open('pupil-dual', { singlePC: '0' });
      const teacher = await join(pub, room, 'teacher');
      await Promise.all([join(single, room, 'pupil-a'), join(dual, room, 'pupil-b')]);
      const cam = await pub.call('publishCamera');
      const mic = await pub.call('publishMicrophone');
      const screen = await pub.call('publishCanvas', { source: 'screen_share', name: 'slides' });
      const camera = `${teacher.sid}|camera`;
      for (const sub of [single, dual]) {
        assert.equal((await waitVideoPlays(sub, { from: 'teacher' })).last.trackSid, cam.trackSid, `${sub.name}: camera`);
        assert.equal((await waitVideoPlays(sub, { from: 'teacher', source: 'screen_share' })).last.trackSid, screen.trackSid, `${sub.name}: screen share`);
        await waitAudioArrives(sub, { from: 'teacher' });
        const st = await sub.stats();
        const stream = (source) => remoteTrack(st, { from: 'teacher', source })?.streamId;
        assert.equal(stream('camera'), camera, `${sub.name}: the camera's stream`);
        assert.equal(stream('microphone'), camera, `${sub.name}: the microphone's stream`);
        assert.equal(remoteTrack(st, { from: 'teacher', source: 'microphone' }).trackSid, mic.trackSid, `${sub.name}: microphone`);
        assert.equal(stream('screen_share'), `${teacher.sid}|screen`, `${sub.name}: the screen share's stream`);
      }
      // A camera published again is found as the new track, in the same stream: with two
      // PeerConnections on a transceiver of its own (a reused one keeps the first track's id).
      await pub.call('unpublishTrack', cam.trackSid);
      const cam2 = await pub.call('publishCanvas', { source: 'camera', name: 'camera2' });
      for (const sub of [single, dual]) {
        const { last } = await waitVideoPlays(sub, { from: 'teacher', after: cam.trackSid });
        assert.equal(last.trackSid, cam2.trackSid, `${sub.name}: second camera`);
        assert.equal(last.streamId, camera, `${sub.name}: the second camera's stream`);
        assert.equal(eventsOf(await sub.state(), 'trackSubscriptionFailed').length, 0, `${sub.name}: subscription failures`);
      }
      await assertSteady([pub, single, dual]);
    });
  });

  browserTest('2. adaptive stream picks a lower layer for a small element; dynacast stops the unwatched layer', '2', async () => {
    await suite.scenario('2-simulcast-dynacast', async ({ open }) => {
      const room = 'simulcast-room';
      // adaptiveStream and dynacast are opt-in Room options of livekit-client 2.23.
      const pub = await open('publisher', { dynacast: '1', adaptiveStream: '1' });
      const small = await open('subscriber-small', { adaptiveStream: '1', videoWidth: '160', videoHeight: '90' });
      const large = await open('subscriber-large', { adaptiveStream: '1', videoWidth: '1280', videoHeight: '720' });
      await join(pub, room, 'alice');
      await publishCameraAndMic(pub);
      await Promise.all([join(small, room, 'small'), join(large, room, 'large')]);
      await Promise.all([waitVideoPlays(small, { from: 'alice' }), waitVideoPlays(large, { from: 'alice' })]);

      const width = async (page) => remoteTrack(await page.stats(), { from: 'alice', source: 'camera' })?.inbound?.frameWidth;
      // What the publisher encodes per layer right now (320, 640 and 1280 px unless Chromium's
      // CPU adaptation scaled a layer down).
      const layerWidth = async (rid) => (await cameraOutbound(pub))[rid]?.frameWidth;
      const widths = async () => `small=${await width(small)} large=${await width(large)} ` +
        `publisher q=${await layerWidth('q')} h=${await layerWidth('h')} f=${await layerWidth('f')}`;
      // The small (160x90) element gets the low layer, the large (1280x720) one the high layer.
      await pollUntil(async () => (await width(small)) === (await layerWidth('q')) && (await width(large)) === (await layerWidth('f')),
        { timeout: 45000, what: 'small subscriber decoding layer q and large subscriber layer f', describe: () => '' })
        .catch(async (e) => {
          e.message += `; ${await widths()}`;
          throw e;
        });
      console.log(`${stamp()} decoded widths: ${await widths()}`);
      assert.ok((await width(large)) > (await width(small)), await widths());

      // The high layer is enabled (the SDK applied subscribed_quality_update: encoding active) and
      // being sent. Chromium may hold an enabled layer back while its bandwidth estimate ramps
      // up (qualityLimitationReason "bandwidth"), hence the generous deadline.
      const fSending = async () => {
        const a = (await cameraOutbound(pub)).f;
        return pollUntil(async () => {
          const b = (await cameraOutbound(pub)).f;
          return b && a && b.active !== false && b.bytesSent > a.bytesSent && b.framesEncoded > a.framesEncoded ? b : undefined;
        }, { timeout: 45000, what: 'publisher sending rid f (active, bytesSent and framesEncoded increasing)',
          describe: () => '' }).catch(async (e) => {
          e.message += `; rid f now: ${JSON.stringify((await cameraOutbound(pub)).f)}`;
          throw e;
        });
      };
      // The high layer is paused by dynacast: its encoding is inactive (not merely starved of
      // bandwidth) and two samples at least 2 s apart show no progress.
      const fStopped = () => {
        let prev;
        return pollUntil(async () => {
          const cur = { ...(await cameraOutbound(pub)).f, at: Date.now() };
          if (cur.active !== false) {
            prev = undefined;
          } else if (prev && cur.at - prev.at >= 2000) {
            if (cur.bytesSent === prev.bytesSent && cur.framesEncoded === prev.framesEncoded) return cur;
            prev = cur;
          } else if (!prev || cur.bytesSent !== prev.bytesSent) {
            prev = cur;
          }
          return undefined;
        }, { timeout: 30000, interval: 500, what: 'publisher to stop sending rid f (dynacast: encoding inactive, no progress)',
          describe: () => JSON.stringify(prev) }).catch(async (e) => {
          e.message += `; rid f now: ${JSON.stringify((await cameraOutbound(pub)).f)}`;
          throw e;
        });
      };
      await fSending();

      // Nobody wants the high layer any more: the large element shrinks.
      await large.call('setVideoSize', 160, 90);
      const shrunkAt = Date.now();
      await pollUntil(async () => (await width(large)) === (await layerWidth('q')), { timeout: 20000, what: 'shrunk subscriber switching to layer q' });
      const stopped = await fStopped();
      console.log(`${stamp()} rid f paused (confirmed ${Date.now() - shrunkAt} ms after the element shrank): ` +
        `active=${stopped.active} bytesSent=${stopped.bytesSent} framesEncoded=${stopped.framesEncoded}`);
      const sending = await cameraOutbound(pub);
      assert.ok(sending.q.bytesSent > 0, 'low layer still sent');
      await waitVideoPlays(small, { from: 'alice' });
      await waitVideoPlays(large, { from: 'alice' });

      // Someone wants it again: the publisher resumes rid f and the subscriber gets 1280 px.
      await large.call('setVideoSize', 1280, 720);
      const grownAt = Date.now();
      await fSending();
      console.log(`${stamp()} rid f sent again ${Date.now() - grownAt} ms after the element grew`);
      await pollUntil(async () => (await width(large)) === (await layerWidth('f')), { timeout: 30000, what: 'large subscriber back on layer f' });
      await assertSteady([pub, small, large]);
    });
  });

  browserTest('3. a canvas published as screen share reaches subscribers as a separate screen_share track', '3', async () => {
    await suite.scenario('3-screen-share', async ({ open }) => {
      const room = 'screen-room';
      const pub = await open('presenter');
      const subA = await open('viewer-a');
      const subB = await open('viewer-b');
      await join(pub, room, 'teacher');
      await Promise.all([join(subA, room, 'pupil-a'), join(subB, room, 'pupil-b')]);
      const cam = await pub.call('publishCamera');
      const screen = await pub.call('publishCanvas', { source: 'screen_share', name: 'slides' });
      assert.notEqual(screen.trackSid, cam.trackSid);
      for (const sub of [subA, subB]) {
        const { last } = await waitVideoPlays(sub, { from: 'teacher', source: 'screen_share' });
        assert.equal(last.trackSid, screen.trackSid);
        assert.equal(last.kind, 'video');
        const camera = await waitVideoPlays(sub, { from: 'teacher', source: 'camera' });
        assert.equal(camera.last.trackSid, cam.trackSid);
        const st = await sub.state();
        const subs = eventsOf(st, 'trackSubscribed').filter((e) => e.from.identity === 'teacher');
        assert.deepEqual(subs.map((e) => e.source).sort(), ['camera', 'screen_share'], `${sub.name} TrackSubscribed`);
      }
      await assertSteady([pub, subA, subB]);
    });
  });

  browserTest('3b. a subscriber receives more videos than the SDK\'s 3 initial receive sections', '3b', async () => {
    await suite.scenario('3b-many-tracks', async ({ open }) => {
      const room = 'many-tracks-room';
      const p1 = await open('publisher-1');
      const p2 = await open('publisher-2');
      const sub = await open('subscriber');
      await join(sub, room, 'viewer');
      await join(p1, room, 'p1');
      await join(p2, room, 'p2');
      // Four small canvas videos (two per publisher): the subscriber's single PeerConnection
      // starts with 3 video receive sections, so the server must ask for more
      // (media_sections_requirement) and bind the fourth after the re-offer.
      const small = { width: 320, height: 180 };
      const sids = [];
      for (const p of [p1, p2]) {
        sids.push((await p.call('publishCanvas', { ...small, source: 'camera', name: `${p.name}-cam` })).trackSid);
        sids.push((await p.call('publishCanvas', { ...small, source: 'screen_share', name: `${p.name}-screen` })).trackSid);
      }
      for (const from of ['p1', 'p2']) {
        for (const source of ['camera', 'screen_share']) {
          const { last } = await waitVideoPlays(sub, { from, source, frames: 10 });
          assert.ok(sids.includes(last.trackSid));
        }
      }
      const st = await sub.state();
      assert.equal(eventsOf(st, 'trackSubscribed').length, 4, 'TrackSubscribed events');
      await assertSteady([p1, p2, sub]);
    });
  });

  browserTest('4. chat: sendText and publishData arrive exactly once with the sender identity', '4', async () => {
    await suite.scenario('4-chat', async ({ open }) => {
      const room = 'chat-room';
      const names = ['ana', 'ben', 'cai'];
      const pages = {};
      for (const n of names) pages[n] = await open(n);
      for (const n of names) await join(pages[n], room, n);
      // Everyone sees everyone before chatting.
      for (const n of names) {
        await pollUntil(async () => (await pages[n].state()).remoteParticipants.length === names.length - 1,
          { what: `${n} seeing the other participants` });
      }
      const count = 3;
      for (const n of names) {
        for (let i = 1; i <= count; i++) {
          await pages[n].call('sendText', `text ${i} from ${n}`);
          await pages[n].call('publishData', `data ${i} from ${n}`);
        }
        // Markers: reliable packets of one sender arrive in order, so once a receiver has the
        // marker it has everything (and every duplicate) that sender sent before it.
        await pages[n].call('sendText', `end from ${n}`);
        await pages[n].call('publishData', `end from ${n}`);
      }
      for (const n of names) {
        const others = names.filter((o) => o !== n);
        const st = await pollUntil(async () => {
          const s = await pages[n].state();
          const done = others.every((o) => s.textReceived.some((m) => m.text === `end from ${o}`) &&
            s.dataReceived.some((m) => m.text === `end from ${o}`));
          return done ? s : undefined;
        }, { what: `${n} receiving every end marker`, describe: (s) => '' });
        const expectText = [];
        const expectData = [];
        for (const o of others) {
          for (let i = 1; i <= count; i++) {
            expectText.push(`${o}: text ${i} from ${o}`);
            expectData.push(`${o}: data ${i} from ${o}`);
          }
          expectText.push(`${o}: end from ${o}`);
          expectData.push(`${o}: end from ${o}`);
        }
        const gotText = st.textReceived.map((m) => `${m.from.identity}: ${m.text}`);
        const gotData = st.dataReceived.map((m) => `${m.from?.identity}: ${m.text}`);
        assert.deepEqual([...gotText].sort(), [...expectText].sort(), `${n}: text streams received`);
        assert.deepEqual([...gotData].sort(), [...expectData].sort(), `${n}: data packets received`);
        for (const m of st.dataReceived) {
          assert.equal(m.topic, 'chat-data');
          assert.equal(m.kind, 0, 'reliable kind');
        }
        for (const m of st.textReceived) assert.equal(m.topic, 'chat');
      }

      // A direct message (destination_identities) reaches only its addressee.
      await pages.ana.call('publishData', 'psst ben', ['ben']);
      await pages.ana.call('publishData', 'end of dm', []);
      for (const n of ['ben', 'cai']) {
        const st = await pollUntil(async () => {
          const s = await pages[n].state();
          return s.dataReceived.some((m) => m.text === 'end of dm') ? s : undefined;
        }, { what: `${n} receiving the broadcast after the direct message` });
        const dms = st.dataReceived.filter((m) => m.text === 'psst ben');
        assert.equal(dms.length, n === 'ben' ? 1 : 0, `${n}: direct messages received ${JSON.stringify(dms)}`);
        if (n === 'ben') assert.equal(dms[0].from.identity, 'ana');
      }
    });
  });

  browserTest('4b. RPC: performRpc reaches the addressed participant and its answer comes back', '4b', async () => {
    await suite.scenario('4b-rpc', async ({ open }) => {
      const room = 'rpc-room';
      const a = await open('caller');
      const b = await open('callee');
      await join(a, room, 'ana');
      await join(b, room, 'ben');
      await pollUntil(async () => (await a.state()).remoteParticipants.some((p) => p.identity === 'ben'), { what: 'ana seeing ben' });
      const answer = JSON.parse(await a.call('performRpc', 'ben', 'hello ben'));
      assert.deepEqual(answer, { by: 'ben', caller: 'ana', payload: 'hello ben' });
    });
  });

  browserTest('6. SRTP profile from getStats() transport stats is AEAD_AES_128_GCM', '6', async () => {
    await suite.scenario('6-srtp', async ({ open }) => {
      const room = 'srtp-room';
      const pub = await open('publisher');
      const sub = await open('subscriber');
      await join(pub, room, 'alice');
      await pub.call('publishMicrophone');
      await join(sub, room, 'bob');
      await waitAudioArrives(sub, { from: 'alice', packets: 5 });
      const seen = {};
      for (const page of [pub, sub]) {
        const st = await page.stats();
        assert.ok(st.transports.length > 0, `${page.name}: no transport stats`);
        seen[page.name] = st.transports.map(({ srtpCipher, dtlsCipher, tlsVersion, dtlsRole }) =>
          ({ srtpCipher, dtlsCipher, tlsVersion, dtlsRole }));
      }
      console.log(`${stamp()} negotiated: ${JSON.stringify(seen)}`);
      for (const [name, transports] of Object.entries(seen)) {
        // The IANA profile name; Chromium 156 reports it with BoringSSL's "SRTP_" prefix.
        for (const t of transports) assert.equal(t.srtpCipher?.replace(/^SRTP_/, ''), 'AEAD_AES_128_GCM', `${name}: ${JSON.stringify(t)}`);
      }
    });
  });

  browserTest('7. browsers allowed only relayed candidates meet through the embedded TURN relay over TCP', '7', async () => {
    // A second server with the relay on (TURN/TCP only), as for a school whose firewall passes
    // neither UDP nor the ICE-TCP port.
    const workDir = joinPath(suite.tmp, 'relay');
    await mkdir(joinPath(workDir, 'data'), { recursive: true });
    const turnPort = await freeTcpPort();
    const relay = new SankeServer({
      bin: suite.server.bin,
      workDir,
      env: { SANKE_TURN_ENABLED: 'true', SANKE_TURN_UDP_PORT: '0', SANKE_TURN_TCP_PORT: String(turnPort), SANKE_TURN_TLS_PORT: '0' },
    });
    await relay.start();
    try {
      await suite.scenario('7-turn-relay', async ({ open }) => {
        const room = 'relay-room';
        const pub = await open('publisher', { relay: '1' });
        const sub = await open('subscriber', { relay: '1' });
        await join(pub, room, 'alice', relay.wsUrl);
        await publishCameraAndMic(pub);
        await join(sub, room, 'bob', relay.wsUrl);
        await waitVideoPlays(sub, { from: 'alice' });
        await waitAudioArrives(sub, { from: 'alice' });
        const [ps, ss] = [await pub.stats(), await sub.stats()];
        const candidates = [...ps.local.map((l) => l.candidate), ...ss.remote.filter((r) => r.subscribed).map((r) => r.candidate)];
        console.log(`${stamp()} selected local candidates: ${JSON.stringify(candidates)}`);
        assert.ok(candidates.length >= 3, `candidates of ${candidates.length} tracks`);
        for (const c of candidates) {
          assert.equal(c?.candidateType, 'relay', JSON.stringify(c));
          assert.equal(c?.relayProtocol, 'tcp', JSON.stringify(c));
        }
      }).catch((e) => {
        console.log(`relay server log (tail):\n${relay.tail(60)}`);
        throw e;
      });
    } finally {
      await relay.stop();
    }
  });

  browserTest('8. a Chromium subscriber behind a narrow line gets the simulcast layer that fits', '8', async (t) => {
    // The subscriber's Chromium runs in a network namespace whose only way to the server is a
    // veth pair. Once it plays the top layer, the pair is shaped to between the publisher's
    // middle and top layers, as a rural line that degrades mid-class: the server must settle
    // on the middle layer from Chromium's receiver reports (rtc.downlink_control).
    // The publisher is the Go SDK playing pre-encoded layers (test/browser/filepublisher):
    // their bitrates are those of the files, not what a browser's encoder makes of the CPU
    // it gets on a busy machine.
    if (!prerequisite(t, NetnsLink.missing())) return;
    await subscriberInNamespace('8-weak-link', { bind: '0.0.0.0' }, async ({ link, server, publisher, pages, browser }) => {
      const room = 'weak-room';
      const pub = await publisher.start(server.wsUrl, await server.token(room, 'alice'));
      const bps = Object.fromEntries(pub.layers.map((l) => [l.rid, l.bitrate]));
      const line = Math.round((bps.h + 100000 + bps.f) / 2);
      console.log(`${stamp()} publisher layers q=${bps.q} h=${bps.h} f=${bps.f} bit/s (the files'); the line will carry ${line} bit/s`);
      assert.ok(bps.f > bps.h + 300000, `the top layer (${bps.f} bit/s) must be well above the middle one (${bps.h} bit/s) for this test`);

      const { sub, context } = await subscriberBehind(browser, pages, link, server, room);
      try {
        await pollUntil(async () => remoteTrack(await sub.stats(), { from: 'alice', source: 'camera' })?.inbound?.frameWidth === 1280,
          { timeout: 30000, what: 'the subscriber decoding the top layer before the line narrows' });
        // Shaped only now: the page itself (the SDK bundle) would not load through a token
        // bucket this small on a veth pair (its TCP segments come as 64 KB GSO packets).
        const mark = server.mark();
        await link.shape(`${Math.round(line / 1000)}kbit`);
        // The server's positive signal first: it cut the subscriber's downlink budget, from
        // the delay and loss of Chromium's transport-wide feedback (the estimate's layers
        // change: the subscriber held the top layer) or, without it, from its receiver reports.
        const cut = (l) => l.includes('msg="downlink estimate"') || (l.includes('downlink budget') && l.includes('why=congested'));
        await pollUntil(() => server.since(mark).some(cut),
          { timeout: 30000, what: 'server log: the downlink budget cut (a new estimate, or why=congested)' });
        const samples = [];
        for (let i = 0; i < 30; i++) {
          await sleep(1000);
          const tr = remoteTrack(await sub.stats(), { from: 'alice', source: 'camera' });
          samples.push({ width: tr?.inbound?.frameWidth ?? 0, lost: tr?.inbound?.packetsLost ?? 0, decoded: tr?.inbound?.framesDecoded ?? 0 });
        }
        console.log(`${stamp()} decoded width once a second after the cut: ${samples.map((s) => s.width).join(' ')}`);
        const budget = server.since(mark).filter((l) => l.includes('downlink budget') || l.includes('msg="downlink estimate"'));
        const brief = (l) => l.replace(/^time=\S+T(\S+)Z .*?(why|source)=/, '$1 $2=');
        console.log(`${stamp()} server: ${budget.length} budget changes:\n  ${budget.map(brief).join('\n  ')}`);
        const late = samples.slice(samples.length / 2);
        const fits = late.filter((s) => s.width > 0 && s.width <= 640).length / late.length;
        assert.ok(fits >= 0.6, `the subscriber decoded the middle layer or lower ${Math.round(fits * 100)}% of the last 15 s`);
        assert.ok(late.at(-1).decoded > late[0].decoded + 100, `frames kept decoding (${late[0].decoded} -> ${late.at(-1).decoded})`);
      } finally {
        await context.close().catch(() => {});
      }
    });
  });

  browserTest('8b. on a 180 kbit/s line the camera pauses (TrackStreamStateChanged), the voice keeps coming, and the camera resumes when the line is back', '8b', async (t) => {
    if (!prerequisite(t, NetnsLink.missing())) return;
    // As test 8, but the line narrows to less than the voice and the smallest layer need
    // together: the server pauses the camera for this subscriber (stream state paused) and
    // the microphone keeps arriving; when the line widens again the camera comes back.
    await subscriberInNamespace('8b-pause', { bind: '0.0.0.0' }, async ({ link, server, publisher, pages, browser }) => {
      const room = 'pause-room';
      await publisher.start(server.wsUrl, await server.token(room, 'alice'));
      const { sub, context } = await subscriberBehind(browser, pages, link, server, room);
      try {
        await waitVideoPlays(sub, { from: 'alice', timeout: 30000 });
        await waitAudioArrives(sub, { from: 'alice' });
        const streamStates = async () => eventsOf(await sub.state(), 'trackStreamStateChanged').filter((e) => e.source === 'camera');

        const narrowed = Date.now();
        await link.shape('180kbit');
        await pollUntil(async () => (await streamStates()).some((e) => e.state === 'paused'),
          { timeout: 30000, what: 'TrackStreamStateChanged paused for the camera' });
        console.log(`${stamp()} camera paused ${Date.now() - narrowed} ms after the line narrowed`);
        const mic = async () => remoteTrack(await sub.stats(), { from: 'alice', source: 'microphone' }).inbound;
        const before = await mic();
        await sleep(3000);
        const during = await mic();
        const packets = during.packetsReceived - before.packetsReceived;
        const concealed = (during.concealedSamples - before.concealedSamples) / Math.max(1, during.totalSamplesReceived - before.totalSamplesReceived);
        console.log(`${stamp()} while paused, 3 s: ${packets} audio packets, ${(100 * concealed).toFixed(1)}% of samples concealed`);
        const red = server.log.lines.filter((l) => l.includes('msg="red limit"') || l.includes('msg="red distance"'));
        console.log(`${stamp()} server, RED distances:\n  ${red.map((l) => l.replace(/^time=\S+T(\S+)Z .*?msg=/, '$1 ')).join('\n  ')}`);
        // The voice's RED redundancy is held to a share of the downlink's estimate (distance
        // 1 on this line), so it does not fill the line itself: two thirds of the packets
        // arrive, and what the child hears is whole (under 5% concealed).
        assert.ok(packets >= 100, `only ${packets} audio packets in 3 s while the camera is paused (150 sent)`);
        assert.ok(concealed < 0.05, `${(100 * concealed).toFixed(1)}% of the voice concealed while the camera is paused`);

        const restored = Date.now();
        await link.shape('20mbit');
        await pollUntil(async () => (await streamStates()).at(-1)?.state === 'active',
          { timeout: 40000, what: 'TrackStreamStateChanged active for the camera after the line is back' });
        console.log(`${stamp()} camera active ${Date.now() - restored} ms after the line came back; camera states: ` +
          `${(await streamStates()).map((e) => e.state).join(' ')}`);
        await waitVideoPlays(sub, { from: 'alice', timeout: 15000 });
      } finally {
        await context.close().catch(() => {});
      }
    });
  });

  browserTest('9. a Chromium subscriber whose network has only IPv6 gets media', '9', async (t) => {
    if (!prerequisite(t, NetnsLink.missing())) return;
    // The subscriber's Chromium runs in a network namespace with one IPv6 address and no IPv4
    // at all; the server listens on every address (::, its default), the publisher (Go SDK,
    // pre-encoded files) reaches it over IPv4 loopback. The page, signaling and media all go
    // over IPv6.
    await subscriberInNamespace('9-ipv6-only', { ipv6: true, bind: '::' }, async ({ link, server, publisher, pages, browser }) => {
      const room = 'ipv6-room';
      await publisher.start(server.wsUrl, await server.token(room, 'alice'));
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        const sub = new TestPage(page, 'subscriber-on-ipv6');
        await page.goto(`${pages.url}/index.html?label=sub`);
        await page.waitForFunction(() => window.sanke !== undefined, null, { timeout: 15000 });
        await join(sub, room, 'bob', `ws://${link.host}:${server.port}`);
        await waitVideoPlays(sub, { from: 'alice' });
        await waitAudioArrives(sub, { from: 'alice' });
        const camera = remoteTrack(await sub.stats(), { from: 'alice', source: 'camera' });
        console.log(`${stamp()} selected pair of the camera: ${JSON.stringify(camera.candidate)}`);
        assert.equal(camera.candidate?.protocol, 'udp', JSON.stringify(camera.candidate));
        assert.equal(camera.candidate?.remoteAddress, link.hostIP, `the server's side of the pair: ${JSON.stringify(camera.candidate)}`);
      } finally {
        await context.close().catch(() => {});
      }
    });
  });

  browserTest('10. a Chromium subscriber whose network changes, then whose UDP is blocked, keeps its session and its video', '10', async (t) => {
    if (!prerequisite(t, NetnsLink.missing())) return;
    // The subscriber's Chromium runs in a network namespace; the publisher is the Go SDK
    // playing pre-encoded layers (test/browser/filepublisher). First its network changes
    // (new address, old connections gone): livekit-client resumes in the same session (ICE
    // restart), video within 3 s (issue 14). Then its UDP is blocked both ways: the server
    // sees no RTCP while it sends, restarts ICE, and the video comes back over ICE-TCP (on
    // the direct SRTP path, see sfu/srtpout's Stream) within 5 s. The targets are measured
    // and printed; the assertions leave room for a loaded CI machine.
    const switchTarget = 3000;
    const udpTarget = 5000;
    const bound = 20000;
    await subscriberInNamespace('10-network-switch', { bind: '0.0.0.0' }, async ({ link, server, publisher, pages, browser }) => {
      const room = 'switch-room';
      await publisher.start(server.wsUrl, await server.token(room, 'alice'));
      const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      try {
        const page = await context.newPage();
        const sub = new TestPage(page, 'subscriber-on-the-move');
        await page.goto(`${pages.url}/index.html?label=sub&videoWidth=640&videoHeight=360`);
        await page.waitForFunction(() => window.sanke !== undefined, null, { timeout: 15000 });
        const joined = await join(sub, room, 'bob', `ws://${link.hostIP}:${server.port}`);
        await waitVideoPlays(sub, { from: 'alice', frames: 30 });
        const video = async () => remoteTrack(await sub.stats(), { from: 'alice', source: 'camera' });

        // backAfter measures, from a change made at `at`, until the subscriber decoded 15
        // frames (half a second of video: more than its jitter buffer held) beyond those
        // decoded when the change was made, with `ok` true of the video's state.
        const backAfter = async (at, before, ok = () => true, what = 'video decoding again') => {
          await pollUntil(async () => {
            const v = await video();
            return v && v.inbound.framesDecoded >= before + 15 && ok(v) ? v : undefined;
          }, { timeout: bound, interval: 50, what });
          return Date.now() - at;
        };

        let before = (await video()).inbound.framesDecoded;
        let at = Date.now();
        await link.switchAddress();
        const switched = await backAfter(at, before);
        const afterSwitch = await sub.state();
        console.log(`${stamp()} network switch: video again after ${switched} ms (target ${switchTarget} ms); ` +
          `events: ${afterSwitch.events.filter((e) => /reconnect|resum|disconnect/i.test(e.type)).map((e) => e.type).join(' ') || 'none'}`);
        assert.equal(afterSwitch.sid, joined.sid, 'the subscriber kept its participant sid (a resume, not a rejoin)');
        assert.ok(!afterSwitch.events.some((e) => e.type === 'disconnected'), 'the room never disconnected');
        // The switch also cut the websocket: let livekit-client's resume finish (its ICE
        // restart included) before the next change.
        const resumed = await pollUntil(async () => (await sub.state()).events.find((e) => e.type === 'reconnected' && e.at >= at),
          { timeout: bound, what: 'livekit-client reporting reconnected after the switch' });
        const settled = (await video()).inbound.framesDecoded;
        await backAfter(Date.now(), settled, () => true, 'video decoding after the resume');
        console.log(`${stamp()} network switch: session resumed ${resumed.at - at} ms after the switch`);

        const mark = server.mark();
        before = (await video()).inbound.framesDecoded;
        at = Date.now();
        await link.blockUDP('prohibit');
        const tcp = await backAfter(at, before, (v) => v.candidate?.protocol === 'tcp', 'video decoding again over ICE-TCP');
        // The server's log reaches this process through a pipe that a loaded machine drains
        // late: wait for the line rather than expect it already read.
        const moved = await pollUntil(() => server.since(mark).some((l) => l.includes('direct SRTP over ICE-TCP')),
          { timeout: 15000, interval: 100, what: 'server log: the direct SRTP stream moved onto the ICE-TCP connection' }).catch((e) => e);
        console.log(`${stamp()} UDP blocked at ${new Date(at).toISOString().slice(11, 23)}: video again over ICE-TCP after ${tcp} ms (target ${udpTarget} ms); ` +
          `server:\n  ${server.since(mark).filter((l) => /liveness|UDP path|participant resumed|peer connection state|direct SRTP/.test(l))
            .map((l) => l.replace(/^time=\S+T(\S+)Z level=\S+ msg=/, '$1 ').replace(/ room=.*?identity=\S+/, '')).join('\n  ')}`);
        if (moved instanceof Error) throw moved;
        const afterBlock = await sub.state();
        assert.equal(afterBlock.sid, joined.sid, 'the subscriber kept its participant sid after UDP was blocked');
        const last = await video();
        await pollUntil(async () => (await video()).inbound.framesDecoded > last.inbound.framesDecoded + 20,
          { timeout: bound, interval: 100, what: 'frames keep decoding over ICE-TCP (20 more)' });
      } finally {
        await context.close().catch(() => {});
      }
    });
  });

  browserTest('5b. the publisher\'s websocket is cut: it resumes and media plays again within 10 s', '5b', async () => {
    const proxy = await new TcpProxy(suite.server.port).listen();
    try {
      await suite.scenario('5b-websocket-cut', async ({ open, server }) => {
        const room = 'cut-room';
        const pub = await open('publisher');
        const sub = await open('subscriber');
        const joined = await join(pub, room, 'alice', proxy.wsUrl);
        await publishCameraAndMic(pub);
        await join(sub, room, 'bob');
        const before = await waitVideoPlays(sub, { from: 'alice' });
        await waitAudioArrives(sub, { from: 'alice' });

        const mark = server.mark();
        // Cut the websocket, and make the first reconnect attempt fail too (its websocket and
        // its validate fetch are reset), so that resuming takes a retry.
        proxy.refuseNext(2);
        const cutAt = Date.now();
        const cut = proxy.cut();
        assert.ok(cut > 0, 'publisher websocket went through the proxy');
        await pollUntil(async () => eventsOf(await pub.state(), 'reconnected').length > 0,
          { timeout: 10000, what: 'publisher Reconnected event within 10 s of the cut' });
        const st = await pub.state();
        assert.equal(st.sid, joined.sid, 'resume keeps the participant sid (no full rejoin)');
        assert.equal(st.state, 'connected');
        // Media keeps flowing on the same tracks.
        const left = () => Math.max(1000, 10000 - (Date.now() - cutAt));
        const after = await waitVideoPlays(sub, { from: 'alice', timeout: left() });
        assert.equal(after.last.trackSid, before.last.trackSid);
        await waitAudioArrives(sub, { from: 'alice', timeout: left() });
        const elapsed = Date.now() - cutAt;
        console.log(`${stamp()} resumed; media verified ${elapsed} ms after the cut (${proxy.refused} connections refused); ` +
          `publisher events since the cut: ${timeline(await pub.state(), cutAt)}`);
        assert.ok(elapsed <= 10000, `media verified ${elapsed} ms after the cut`);
        assert.ok(server.since(mark).some((l) => l.includes('participant resumed')), 'server log: participant resumed');

        // Signalling works after the resume: a mute reaches the subscriber.
        await pub.call('setMicrophoneEnabled', false);
        await pollUntil(async () => eventsOf(await sub.state(), 'trackMuted').some((e) => e.from.identity === 'alice' && e.source === 'microphone'),
          { timeout: 10000, what: 'subscriber seeing the publisher mute its microphone after the resume' });
      });
    } finally {
      await proxy.close();
    }
  });

  for (const [signal, how] of [['SIGKILL', 'crashes and restarts'], ['SIGTERM', 'is restarted gracefully (SIGTERM)']]) {
    browserTest(`5a. the server ${how} mid-call: pages rejoin by themselves and media plays again within 10 s`, `5a-${signal}`, async () => {
      await suite.scenario(`5a-server-restart-${signal}`, async ({ open, server }) => {
        const room = `restart-room-${signal}`;
        const pub = await open('publisher');
        const sub = await open('subscriber');
        const pubInfo = await join(pub, room, 'alice');
        await publishCameraAndMic(pub);
        const subInfo = await join(sub, room, 'bob');
        const before = await waitVideoPlays(sub, { from: 'alice' });
        await waitAudioArrives(sub, { from: 'alice' });

        const stopAt = Date.now();
        await server.stop(signal);
        await server.start(); // same ports
        const backAt = Date.now();
        console.log(`${stamp()} server restarted (${signal}) in ${backAt - stopAt} ms`);

        const after = await waitVideoPlays(sub, { from: 'alice', timeout: 10000, after: before.last.trackSid });
        await waitAudioArrives(sub, { from: 'alice', timeout: 10000 });
        console.log(`${stamp()} media playing again ${Date.now() - backAt} ms after the server was back; events since the stop: ` +
          `publisher: ${timeline(await pub.state(), stopAt)}; subscriber: ${timeline(await sub.state(), stopAt)}`);
        const [ps, ss] = [await pub.state(), await sub.state()];
        assert.notEqual(ps.sid, pubInfo.sid, 'publisher rejoined with a new sid');
        assert.notEqual(ss.sid, subInfo.sid, 'subscriber rejoined with a new sid');
        assert.equal(after.last.from.sid, ps.sid);
        assert.equal(ps.state, 'connected');
        assert.equal(ss.state, 'connected');
      });
    });
  }
});
