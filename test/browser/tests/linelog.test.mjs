// Unit tests of lib/linelog.mjs: whole lines across chunks, marks across dropped lines.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { once } from 'node:events';
import { test } from 'node:test';

import { LineLog } from '../lib/linelog.mjs';

test('LineLog reassembles lines and characters split across chunks', async () => {
  const log = new LineLog();
  const seen = [];
  const stream = new PassThrough();
  log.follow(stream, (l) => seen.push(l));
  const text = Buffer.from('msg="direct SRTP over ICE-TCP"\n课堂 已开始\n\nlast without newline');
  // Cut inside the first message and inside the three-byte character 课.
  const cuts = [10, 33, 35, text.length];
  let from = 0;
  for (const to of cuts) {
    stream.write(text.subarray(from, to));
    from = to;
  }
  stream.end();
  await once(stream, 'end');
  assert.deepEqual(log.lines, ['msg="direct SRTP over ICE-TCP"', '课堂 已开始', 'last without newline']);
  assert.deepEqual(seen, log.lines);
});

test('LineLog marks stay valid when old lines are dropped', () => {
  const log = new LineLog(3);
  log.push('a');
  log.push('b');
  const m = log.mark();
  for (const l of ['c', 'd', 'e']) log.push(l);
  assert.deepEqual(log.lines, ['c', 'd', 'e']);
  assert.deepEqual(log.since(m), ['c', 'd', 'e']);
  const m2 = log.mark();
  log.push('f');
  assert.deepEqual(log.since(m2), ['f']);
  assert.deepEqual(log.since(0), ['d', 'e', 'f'], 'a mark before the kept lines gives all kept');
  assert.deepEqual(log.tail(2), ['e', 'f']);
});
