// The rural benchmark of issue 14 (scripts/rural-bench.sh runs it): each scenario of
// lib/rural.mjs × {sanke, livekit} × N runs, back to back (the servers alternate within each
// run, so a drift of the host's load touches both alike), the same publisher and a Chromium
// receiver through `sanke linksim`. Writes every run's record (JSON) to the output directory,
// and a markdown table (table.md, also printed).
//
//   node bench/rural.mjs --livekit BIN [--runs N] [--window S] [--drop S] [--recover S]
//     [--scenarios clean,loss20,thin1m,drop,bursty,uplink] [--servers sanke,livekit]
//     [--publisher chromium|file] [--out DIR] [--keep-samples]
//   node bench/rural.mjs --table DIR     (the table again, from DIR's meta.json and records.json)
// SANKE_RURAL_LOG_LEVEL=debug runs Sanke at that log level and keeps each run's server log
// next to its record (<scenario>-<server>-<run>.log): the estimator's every update is there.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { buildSanke, goBuild, log, REPO_ROOT, SankeServer, serveStatic, tempDir } from '../lib/harness.mjs';
import { fmtSpread, spread } from '../lib/report.mjs';
import { LiveKitServer, Publisher, runScenario, SCENARIOS } from '../lib/rural.mjs';
import { DIST, launch } from '../lib/suite.mjs';

// --- the table ----------------------------------------------------------------------------

/** makeTable renders the records of a benchmark as its markdown table and server-side notes. */
function makeTable(meta, records, scenarios, servers) {
  const pct = { d: 1, k: 100 };
  const rows = [];
  rows.push('| scenario | server | runs | audio concealed % (audible / all) | video frozen % (ours / Chromium) | longest freeze s | fps | 1280 px held % | widths held (share of time) | TTFF ms | RTT ms | jitter buffer ms (audio / video) | audio ahead of video ms | scenario figure | publisher f / h / q kbit/s |');
  rows.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const name of scenarios) {
    for (const serverName of servers) {
      const rs = records.filter((r) => r.scenario === name && r.server === serverName && r.report);
      const failed = records.filter((r) => r.scenario === name && r.server === serverName && !r.report).length;
      if (!rs.length) {
        rows.push(`| ${name} | ${serverName} | 0 | (no successful run${failed ? `, ${failed} failed` : ''}) | | | | | | | | | | | |`);
        continue;
      }
      const f = (fn, o) => fmtSpread(spread(rs.map(fn)), o);
      const widths = {};
      for (const r of rs) for (const [w, s] of Object.entries(r.report.video.widths)) widths[w] = (widths[w] ?? 0) + s / rs.length;
      const wtxt = Object.entries(widths).sort((a, b) => Number(b[0]) - Number(a[0])).filter(([, s]) => s >= 0.005)
        .map(([w, s]) => `${w === '0' ? 'none' : w} ${Math.round(100 * s)}%`).join(', ');
      let fig = '';
      if (name === 'thin1m') {
        fig = `the layer that fits (${[...new Set(rs.map((r) => r.settle?.fitWidth ?? '≤640'))].join(', ')} px) held for good after ${f((r) => r.settle?.exactMs / 1000, { d: 1 })} s, ` +
          `longest freeze after ${f((r) => r.settle?.exactFreezeAfterMs / 1000, { d: 1 })} s; it or higher after ${f((r) => r.settle?.ms / 1000, { d: 1 })} s, ` +
          `longest freeze after ${f((r) => r.settle?.longestFreezeAfterMs / 1000, { d: 1 })} s`;
      }
      if (name === 'drop') {
        fig = `down ${f((r) => r.drop?.downMs / 1000, { d: 1 })} s, up ${f((r) => r.drop?.upMs / 1000, { d: 1 })} s; while low: audio concealed ` +
          `${f((r) => r.drop?.audioLow.audibleConcealedRatio, pct)}% audible, video frozen ${f((r) => r.drop?.videoLow.frozenShare, pct)}%`;
      }
      if (name === 'uplink') {
        fig = `publisher: estimate over 1.2 Mbit/s after ${f((r) => r.uplink?.climbMs / 1000, { d: 1 })} s on 3 Mbit/s, sending ` +
          `${f((r) => r.uplink?.before.bps / 1000, { d: 0 })} kbit/s; after the fall under 1 Mbit/s in ${f((r) => r.uplink?.downMs / 1000, { d: 1 })} s, ` +
          `sending ${f((r) => r.uplink?.window.bps / 1000, { d: 0 })} kbit/s (estimate ${f((r) => r.uplink?.window.estimate / 1000, { d: 0 })}); ` +
          `its audio NACKed ${f((r) => r.uplink?.window.audioNacks, { d: 0 })} times, resent ${f((r) => r.uplink?.window.audioResent, { d: 0 })} packets`;
      }
      rows.push(`| ${name} | ${serverName} | ${rs.length}${failed ? ` (+${failed} failed)` : ''} | ${f((r) => r.report.audio.audibleConcealedRatio, pct)} / ${f((r) => r.report.audio.concealedRatio, pct)} | ` +
        `${f((r) => r.report.video.gapFrozenShare, pct)} / ${f((r) => r.report.video.chromiumFrozenShare, pct)} | ` +
        `${f((r) => r.report.video.longestFreezeMs / 1000, { d: 1 })} | ${f((r) => r.report.video.fps)} | ` +
        `${f((r) => r.report.video.widths['1280'] ?? 0, { d: 0, k: 100 })} | ${wtxt} | ` +
        `${f((r) => r.report.ttffMs, { d: 0 })} | ${f((r) => r.report.rttMs, { d: 0 })} | ` +
        `${f((r) => r.report.audio.jitterBufferMs, { d: 0 })} / ${f((r) => r.report.video.jitterBufferMs, { d: 0 })} | ${f((r) => r.report.avSyncMs, { d: 0 })} | ${fig} | ` +
        `${['f', 'h', 'q'].map((rid) => f((r) => (r.publisher?.[rid]?.bps ?? r.publisher?.find?.((l) => l.rid === rid)?.bitrate) / 1000, { d: 0 })).join(' / ')} |`);
    }
  }
  const server = ['', 'Server side (sum over the runs of each window):', ''];
  for (const r of records.filter((x) => x.serverSide)) {
    server.push(`- ${r.scenario} ${r.server} run ${r.run}: ${JSON.stringify(r.serverSide.counters)} ${JSON.stringify(r.serverSide.log)}`);
  }
  const table = [`${meta.date.slice(0, 16).replace('T', ' ')} UTC, sanke ${meta.sanke}, livekit-server 1.13.5, ${meta.chromium ? `Chromium ${meta.chromium}` : ''}, ` +
    `publisher ${meta.publisher}, ${meta.runs} run(s), ${meta.windowS} s windows (drop: ${meta.dropS} s low, ${meta.recoverS} s after), host ${meta.host}`,
  '', ...rows, ...server].join('\n');
  return table;
}

const { values: opt } = parseArgs({
  options: {
    livekit: { type: 'string' },
    runs: { type: 'string', default: '3' },
    window: { type: 'string', default: '45' },
    warm: { type: 'string', default: '5' },
    drop: { type: 'string', default: '60' },
    recover: { type: 'string', default: '20' },
    scenarios: { type: 'string', default: 'clean,loss20,thin1m,drop,bursty,uplink' },
    servers: { type: 'string', default: 'sanke,livekit' },
    publisher: { type: 'string', default: 'chromium' },
    out: { type: 'string' },
    'keep-samples': { type: 'boolean', default: false },
    table: { type: 'string' },
  },
});
if (opt.table) {
  const meta = JSON.parse(await readFile(join(opt.table, 'meta.json'), 'utf8'));
  const records = JSON.parse(await readFile(join(opt.table, 'records.json'), 'utf8'));
  const uniq = (k) => [...new Set(records.map((r) => r[k]))];
  console.log(makeTable(meta, records, uniq('scenario'), uniq('server')));
  process.exit(0);
}
const scenarios = opt.scenarios.split(',');
const servers = opt.servers.split(',');
for (const s of scenarios) if (!SCENARIOS[s]) throw new Error(`unknown scenario ${s} (${Object.keys(SCENARIOS).join(', ')})`);
if (servers.includes('livekit') && !opt.livekit) throw new Error('--livekit BIN is needed to run livekit');
const sec = (v) => Number(v) * 1000;

const tmp = await tempDir('sanke-rural-bench');
const out = opt.out ?? join(tmp, 'out');
await mkdir(out, { recursive: true });
const sankeBin = await buildSanke(tmp);
const fileBin = opt.publisher === 'file' ? await goBuild(tmp, './test/browser/filepublisher', 'filepublisher') : undefined;
const pages = await serveStatic(DIST);
const browser = await launch(tmp);
const meta = {
  date: new Date().toISOString(),
  host: `${os.cpus().length} CPUs, ${os.cpus()[0]?.model}, ${os.type()} ${os.release()}`,
  sanke: execFileSync('git', ['describe', '--always', '--dirty'], { cwd: REPO_ROOT }).toString().trim(),
  chromium: browser.version(),
  publisher: opt.publisher,
  runs: Number(opt.runs),
  windowS: Number(opt.window),
  dropS: Number(opt.drop),
  recoverS: Number(opt.recover),
};
log(`rural bench: ${JSON.stringify(meta)}; results in ${out}`);
await writeFile(join(out, 'meta.json'), JSON.stringify(meta, null, 2));

async function startServer(name) {
  const workDir = await tempDir(`rural-${name}`);
  const server = name === 'sanke'
    ? new SankeServer({ bin: sankeBin, workDir, logLevel: process.env.SANKE_RURAL_LOG_LEVEL ?? 'info' })
    : new LiveKitServer({ bin: opt.livekit, workDir, sankeBin });
  await server.start();
  return server;
}

const records = [];
try {
  for (let run = 1; run <= Number(opt.runs); run++) {
    for (const name of scenarios) {
      for (const serverName of servers) {
        log(`${name} ${serverName} run ${run}/${opt.runs} (load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')})`);
        const server = await startServer(serverName);
        const publisher = new Publisher({ kind: opt.publisher, browser, pagesUrl: pages.url, bin: fileBin });
        let rec;
        try {
          rec = await runScenario({ name, server, serverName, sankeBin, browser, pagesUrl: pages.url, publisher,
            windowMs: sec(opt.window), warmMs: sec(opt.warm), dropMs: sec(opt.drop), recoverMs: sec(opt.recover), keep: opt['keep-samples'] });
        } catch (e) {
          rec = { scenario: name, server: serverName, error: String(e.stack || e) };
          log(`${name} ${serverName} run ${run} failed: ${e.message}`);
        } finally {
          if (process.env.SANKE_RURAL_LOG_LEVEL) await writeFile(join(out, `${name}-${serverName}-${run}.log`), server.since(0).join('\n')).catch(() => {});
          await server.stop();
        }
        rec.run = run;
        rec.load = os.loadavg();
        records.push(rec);
        await writeFile(join(out, `${name}-${serverName}-${run}.json`), JSON.stringify(rec, null, 2));
        const r = rec.report;
        if (r) {
          log(`  audio concealed ${(100 * (r.audio.audibleConcealedRatio ?? NaN)).toFixed(1)}% audible (${(100 * (r.audio.concealedRatio ?? NaN)).toFixed(1)}% all), video frozen ${(100 * r.video.frozenShare).toFixed(1)}% ` +
            `(chromium ${(100 * r.video.chromiumFrozenShare).toFixed(1)}%), fps ${r.video.fps?.toFixed(1)}, widths ${JSON.stringify(r.video.widths)}, ` +
            `jitter buffer ${r.audio.jitterBufferMs?.toFixed(0)} / ${r.video.jitterBufferMs?.toFixed(0)} ms, audio ahead of video ${r.avSyncMs?.toFixed(0)} ms, ttff ${r.ttffMs} ms${rec.settle ? `, settled ${rec.settle.ms} ms` : ''}${rec.drop ? `, down ${rec.drop.downMs} ms up ${rec.drop.upMs} ms` : ''}`);
        }
      }
    }
  }
} finally {
  await browser.close().catch(() => {});
  await pages.close().catch(() => {});
}

const table = makeTable(meta, records, scenarios, servers);
await writeFile(join(out, 'table.md'), `${table}\n`);
await writeFile(join(out, 'records.json'), JSON.stringify(records, null, 2));
console.log(`\n${table}\n`);
log(`results in ${out}`);
process.exit(0);
