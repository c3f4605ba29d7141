import { describe, expect, it } from 'vitest';
import { dict } from '../src/i18n';
import { COLUMNS, type CoverageReport, formatRate, formatValue, regionContains, rows, sortRows, subjectHours, supervisorRegions, timeSeries, unservedPoints } from '../src/logic/coverage';
import { LowBandwidthAdvisor, qualityName } from '../src/logic/lowbw';
import { calledOn, handRaised, pointTiles, roleOf } from '../src/logic/participants';
import { decide } from '../src/logic/policy';
import { courseType, gradeName, mondayOf, screenFor, sessionStatus, sessionsOfDay, timeRange } from '../src/logic/sessions';
import { Directory, applyFilter, filterOptions, liveClasses } from '../src/logic/wall';
import { match } from '../src/router';
import { fileUrl, type Session } from '../src/api';

describe('i18n', () => {
  it('has every key in both languages, none empty', () => {
    const zh = dict('zh');
    const en = dict('en');
    expect(Object.keys(en).sort()).toEqual(Object.keys(zh).sort());
    for (const [k, v] of Object.entries(en)) expect(v, k).not.toBe('');
  });
});

const sess = (id: string, start: string, end: string, extra: Partial<Session> = {}): Session => ({
  id, course_type: 1, subject: '音乐', master: 'M1', receivers: ['T1', 'T2'], start, end, room: `class-${id}`, ...extra,
});

describe('sessions', () => {
  const s = sess('S1', '2025-09-01T08:00:00+08:00', '2025-09-01T08:40:00+08:00');
  const at = (iso: string) => Date.parse(iso);
  it('status against the clock and the early-join window', () => {
    expect(sessionStatus(s, at('2025-09-01T07:00:00+08:00'))).toBe('upcoming');
    expect(sessionStatus(s, at('2025-09-01T07:45:00+08:00'))).toBe('open');
    expect(sessionStatus(s, at('2025-09-01T08:00:00+08:00'))).toBe('live');
    expect(sessionStatus(s, at('2025-09-01T08:40:00+08:00'))).toBe('ended');
  });
  it('course types in numbers, English and Chinese', () => {
    expect(courseType(1)).toBe('delivery');
    expect(courseType('2')).toBe('research');
    expect(courseType('名校网络课堂')).toBe('broadcast');
    expect(courseType('delivery')).toBe('delivery');
  });
  it('the screen for each role', () => {
    expect(screenFor('teacher', 1)).toBe('teacher');
    expect(screenFor('teacher', 2)).toBe('research');
    expect(screenFor('teaching_point', 1)).toBe('point');
    expect(screenFor('research', 2)).toBe('research');
    expect(screenFor('viewer', 3)).toBe('viewer');
    expect(screenFor('supervisor', 1)).toBe('wall');
  });
  it('grades, days, weeks and time ranges', () => {
    expect(gradeName(3, 'zh')).toBe('三年级');
    expect(gradeName(7, 'zh')).toBe('初一');
    expect(gradeName(11, 'zh')).toBe('高二');
    expect(gradeName(4, 'en')).toBe('Grade 4');
    expect(mondayOf(new Date(2025, 8, 7)).getDate()).toBe(1); // Sunday 7 Sep -> Monday 1 Sep
    expect(mondayOf(new Date(2025, 8, 1)).getDate()).toBe(1);
    const local = sess('L', new Date(2025, 8, 1, 9, 5).toISOString(), new Date(2025, 8, 1, 9, 45).toISOString());
    expect(timeRange(local)).toBe('09:05–09:45');
    const other = sess('O', new Date(2025, 8, 2, 9).toISOString(), new Date(2025, 8, 2, 10).toISOString());
    const early = sess('E', new Date(2025, 8, 1, 8).toISOString(), new Date(2025, 8, 1, 9).toISOString());
    expect(sessionsOfDay([local, other, early], new Date(2025, 8, 1)).map((x) => x.id)).toEqual(['E', 'L']);
  });
});

describe('low-bandwidth advice', () => {
  it('suggests after 15 s of poor quality, not before, and resets on good', () => {
    const a = new LowBandwidthAdvisor();
    a.update('poor', 0);
    expect(a.shouldSuggest(14_000)).toBe(false);
    a.update('lost', 10_000);
    expect(a.shouldSuggest(15_000)).toBe(true);
    a.update('good', 16_000);
    expect(a.shouldSuggest(40_000)).toBe(false);
    a.update('unknown', 41_000);
    expect(a.shouldSuggest(60_000)).toBe(false);
  });
  it('a dismissal snoozes it, and it is silent while the mode is on', () => {
    const a = new LowBandwidthAdvisor({ poorForMs: 1000, snoozeMs: 60_000 });
    a.update('poor', 0);
    expect(a.shouldSuggest(1000)).toBe(true);
    a.dismiss(1000);
    a.update('poor', 2000);
    expect(a.shouldSuggest(30_000)).toBe(false);
    expect(a.shouldSuggest(61_000)).toBe(true);
    a.setActive(true);
    a.update('poor', 62_000);
    expect(a.shouldSuggest(100_000)).toBe(false);
  });
  it('maps SDK quality names', () => {
    expect(qualityName('excellent')).toBe('excellent');
    expect(qualityName('unknown')).toBe('unknown');
    expect(qualityName(undefined)).toBe('unknown');
  });
});

describe('participants', () => {
  const tp = (identity: string, attrs: Record<string, string> = {}) => ({ identity, attributes: { 'sanke.role': 'teaching_point', ...attrs } });
  it('reads role, hand and call from attributes (or the metadata)', () => {
    expect(roleOf({ identity: 'M1', attributes: { 'sanke.role': 'teacher' } })).toBe('teacher');
    expect(roleOf({ identity: 'x', metadata: '{"role":"research"}' })).toBe('research');
    expect(roleOf({ identity: 'x', metadata: 'nope' })).toBeUndefined();
    expect(handRaised(tp('T1', { 'sanke.hand': 'raised' }))).toBe(true);
    expect(calledOn(tp('T1', { 'sanke.called_on': 'true' }))).toBe(true);
    expect(calledOn(tp('T1'))).toBe(false);
  });
  it('orders the grid: raised hands, called on, connected, then absent', () => {
    const tiles = pointTiles(['T1', 'T2', 'T3', 'T4'], [tp('T2'), tp('T3', { 'sanke.hand': 'raised' }), tp('T4', { 'sanke.called_on': 'true' }), tp('T9')]);
    expect(tiles.map((t) => [t.identity, !!t.participant])).toEqual([
      ['T3', true], ['T4', true], ['T2', true], ['T9', true], ['T1', false],
    ]);
  });
});

describe('subscription policy', () => {
  const v = (role: 'teacher' | 'teaching_point', source: 'camera' | 'screen_share', calledOn = false) => ({ role, calledOn, kind: 'video' as const, source });
  it('teaching points get the teacher high, the slides, the called-on classroom, and nothing else', () => {
    expect(decide('point', v('teacher', 'camera'))).toEqual({ subscribe: true, layer: 'high' });
    expect(decide('point', v('teacher', 'screen_share'))).toEqual({ subscribe: true, layer: 'high' });
    expect(decide('point', v('teaching_point', 'camera'))).toEqual({ subscribe: false });
    expect(decide('point', v('teaching_point', 'camera', true))).toEqual({ subscribe: true, layer: 'medium' });
    expect(decide('point', { role: 'teaching_point', calledOn: true, kind: 'audio', source: 'microphone' })).toEqual({ subscribe: true });
  });
  it('low-bandwidth mode keeps audio and slides only', () => {
    expect(decide('point', v('teacher', 'camera'), { lowBandwidth: true })).toEqual({ subscribe: false });
    expect(decide('point', v('teacher', 'screen_share'), { lowBandwidth: true }).subscribe).toBe(true);
    expect(decide('point', { role: 'teacher', calledOn: false, kind: 'audio', source: 'microphone' }, { lowBandwidth: true }).subscribe).toBe(true);
  });
  it('the teacher sees teaching points at the low layer, the called-on one high', () => {
    expect(decide('teacher', v('teaching_point', 'camera'))).toEqual({ subscribe: true, layer: 'low' });
    expect(decide('teacher', v('teaching_point', 'camera', true))).toEqual({ subscribe: true, layer: 'high' });
  });
  it('a wall thumbnail takes only the teacher camera low layer, silent', () => {
    expect(decide('wall-thumb', v('teacher', 'camera'))).toEqual({ subscribe: true, layer: 'low' });
    expect(decide('wall-thumb', v('teacher', 'screen_share'))).toEqual({ subscribe: false });
    expect(decide('wall-thumb', v('teaching_point', 'camera'))).toEqual({ subscribe: false });
    expect(decide('wall-thumb', { role: 'teacher', calledOn: false, kind: 'audio', source: 'microphone' })).toEqual({ subscribe: false });
    expect(decide('wall-full', v('teacher', 'camera'))).toEqual({ subscribe: true, layer: 'high' });
  });
});

const report: CoverageReport = {
  group_by: ['county'],
  routine: { min_per_week: 2, weeks: 4 },
  total: {
    key: {}, teaching_points: 5, covered_teaching_points: 2, coverage_rate: 0.4, scheduled: 4, valid: 3, delivery_rate: 0.75, sessions: 2,
    routine_teaching_points: 0, routine_rate: 0, connected_hours: 2, class_hours: { 音乐: { sessions: 2, hours: 1.3333 }, 美术: { sessions: 1, hours: 0.6667 } }, times_called_on: 1,
  },
  groups: [
    { key: { county: '431223' }, names: { county: '辰溪县' }, teaching_points: 2, covered_teaching_points: 2, coverage_rate: 1, scheduled: 4, valid: 3, delivery_rate: 0.75, sessions: 2, routine_teaching_points: 0, routine_rate: 0, connected_hours: 2, class_hours: { 音乐: { sessions: 3, hours: 2 } }, times_called_on: 1 },
    { key: { county: '431224' }, names: { county: '溆浦县' }, teaching_points: 3, covered_teaching_points: 0, coverage_rate: 0, scheduled: 0, valid: 0, delivery_rate: null, sessions: 0, routine_teaching_points: 0, routine_rate: 0, connected_hours: 0, class_hours: null, times_called_on: 0 },
  ],
};

describe('coverage', () => {
  it('makes rows with names, hours and the unserved flag', () => {
    const r = rows(report);
    expect(r.map((x) => x.name)).toEqual(['辰溪县', '溆浦县']);
    expect(r[0].values.class_hours).toBe(2);
    expect(r[1].unserved).toBe(true);
    expect(r[0].unserved).toBe(false);
    expect(COLUMNS[0].id).toBe('name');
  });
  it('sorts by any column, nulls last', () => {
    const r = rows(report);
    expect(sortRows(r, 'coverage_rate', 'asc').map((x) => x.name)).toEqual(['溆浦县', '辰溪县']);
    expect(sortRows(r, 'coverage_rate', 'desc').map((x) => x.name)).toEqual(['辰溪县', '溆浦县']);
    expect(sortRows(r, 'delivery_rate', 'asc').map((x) => x.name)).toEqual(['辰溪县', '溆浦县']);
    expect(sortRows(r, 'delivery_rate', 'desc').map((x) => x.name)).toEqual(['辰溪县', '溆浦县']);
  });
  it('formats rates and values', () => {
    expect(formatRate(0.6667)).toBe('66.67%');
    expect(formatRate(1)).toBe('100%');
    expect(formatRate(0.5)).toBe('50%');
    expect(formatRate(null)).toBe('—');
    expect(formatValue('class_hours', 1.33333)).toBe('1.33');
    expect(formatValue('valid', 3)).toBe('3');
    expect(formatValue('delivery_rate', null)).toBe('—');
  });
  it('lists unserved teaching points, subject hours and time series', () => {
    const tp: CoverageReport = { ...report, group_by: ['teaching_point'], groups: [
      { ...report.groups[0], key: { teaching_point: 'T1' }, names: { teaching_point: '后塘教学点' }, teaching_points: 1, covered_teaching_points: 1 },
      { ...report.groups[1], key: { teaching_point: 'T3' }, names: { teaching_point: '北斗溪教学点' }, teaching_points: 1, covered_teaching_points: 0 },
    ] };
    expect(unservedPoints(tp)).toEqual([{ id: 'T3', name: '北斗溪教学点' }]);
    expect(unservedPoints(report)).toEqual([]);
    expect(subjectHours(report.total).map((s) => s.subject)).toEqual(['音乐', '美术']);
    const weeks: CoverageReport = { ...report, group_by: ['week'], groups: [
      { ...report.groups[1], key: { week: '2025-W37' } },
      { ...report.groups[0], key: { week: '2025-W36' } },
    ] };
    expect(timeSeries(weeks, 'week')).toEqual({ x: ['2025-W36', '2025-W37'], coverage: [100, 0], delivery: [75, null], hours: [2, 0] });
  });
});

describe('supervisor regions', () => {
  it('contains like the server (GB/T 2260 levels)', () => {
    expect(regionContains('430000', '431223')).toBe(true);
    expect(regionContains('431200', '431223')).toBe(true);
    expect(regionContains('431200', '431200')).toBe(true);
    expect(regionContains('431200', '430102')).toBe(false);
    expect(regionContains('431200', '430000')).toBe(false);
    expect(regionContains('431223', '431223')).toBe(true);
    expect(regionContains('431223', '431224')).toBe(false);
    expect(regionContains('', '431223')).toBe(false);
  });
  it('offers its own region first, then the regions inside it', () => {
    const named = { '430000': { name: '湖南省' }, '430102': { name: '芙蓉区' }, '431224': { name: '溆浦县' }, '431223': { name: '辰溪县' }, '431200': { name: '怀化市' } };
    expect(supervisorRegions('431200', named)).toEqual([
      { code: '431200', name: '怀化市' },
      { code: '431223', name: '辰溪县' },
      { code: '431224', name: '溆浦县' },
    ]);
    expect(supervisorRegions('431223', undefined)).toEqual([{ code: '431223', name: '431223' }]);
  });
});

describe('supervisors wall', () => {
  const dir = Directory.fromDataset({
    classrooms: [{ id: 'M1', name: '育才小学音乐主讲教室', school: 'S1' }, { id: 'M2', name: '锦滨镇中心小学美术主讲教室', school: 'S2' }],
    schools: [{ id: 'S1', name: '育才小学', region: '430102' }, { id: 'S2', name: '锦滨镇中心小学', region: '431223' }],
    regions: [{ code: '430102', name: '芙蓉区' }, { code: '431223', name: '辰溪县' }],
  });
  const now = Date.parse('2025-09-01T08:10:00+08:00');
  const list = [
    sess('A', '2025-09-01T08:00:00+08:00', '2025-09-01T08:40:00+08:00'),
    sess('B', '2025-09-01T08:05:00+08:00', '2025-09-01T08:45:00+08:00', { master: 'M2', subject: '美术' }),
    sess('C', '2025-09-01T09:00:00+08:00', '2025-09-01T09:40:00+08:00'),
  ];
  it('keeps the live classes with their names', () => {
    const live = liveClasses(list, dir, now);
    expect(live.map((c) => c.session.id)).toEqual(['A', 'B']);
    expect(live[1]).toMatchObject({ schoolName: '锦滨镇中心小学', countyName: '辰溪县', masterName: '锦滨镇中心小学美术主讲教室' });
  });
  it('filters by county, school and subject', () => {
    const live = liveClasses(list, dir, now);
    expect(applyFilter(live, { county: '431223' }).map((c) => c.session.id)).toEqual(['B']);
    expect(applyFilter(live, { school: 'S1' }).map((c) => c.session.id)).toEqual(['A']);
    expect(applyFilter(live, { subject: '美术', county: '430102' })).toEqual([]);
    const o = filterOptions(live);
    expect(o.subjects).toEqual(['美术', '音乐'].sort((a, b) => a.localeCompare(b, 'zh-CN')));
    expect(o.counties.map((c) => c[0]).sort()).toEqual(['430102', '431223']);
  });
  it('falls back to IDs without a directory', () => {
    const d = new Directory();
    expect(d.classroomName('M1')).toBe('M1');
    expect(d.regionName(undefined)).toBe('');
  });
});

describe('router', () => {
  it('matches patterns', () => {
    expect(match('/class/:id', '/class/S%201')).toEqual({ id: 'S 1' });
    expect(match('/class/:id', '/class')).toBeUndefined();
    expect(match('/wall', '/wall')).toEqual({});
  });
});

describe('recording links', () => {
  it('plays the signed link the recorder lists, as it is, with no token added', () => {
    const signed = '/api/v1/recordings/RC_1/files/cam.webm?expires=1767225600&sig=AbC-_9';
    expect(fileUrl(signed)).toBe(signed);
    const presigned = 'https://lessons.oss-cn-hangzhou.aliyuncs.com/RC_1/cam.webm?X-Amz-Signature=ab';
    expect(fileUrl(presigned)).toBe(presigned);
    expect(fileUrl(signed)).not.toContain('access_token');
  });
  it('refuses what is not a path of this origin or an http(s) URL', () => {
    expect(fileUrl(undefined)).toBeUndefined();
    expect(fileUrl('')).toBeUndefined();
    expect(fileUrl('//evil.example/x.webm')).toBeUndefined();
    expect(fileUrl('/\\evil.example/x.webm')).toBeUndefined();
    expect(fileUrl('javascript:alert(1)')).toBeUndefined();
    expect(fileUrl('data:video/webm;base64,AAAA')).toBeUndefined();
  });
});
