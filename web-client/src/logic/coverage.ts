// The coverage dashboard's data: the report of GET /api/v1/coverage (classroom/coverage), the
// table rows made from its groups, sorting, number formats and the teaching points not served.

export interface Stat {
  avg: number;
  p50: number;
  p90: number;
  p95: number;
  max: number;
}

export interface CoverageGroup {
  key: Record<string, string>;
  names?: Record<string, string>;
  teaching_points: number;
  covered_teaching_points: number;
  coverage_rate: number | null;
  scheduled: number;
  valid: number;
  delivery_rate: number | null;
  sessions: number;
  routine_teaching_points: number;
  routine_rate: number | null;
  connected_hours: number;
  class_hours: Record<string, { sessions: number; hours: number }> | null;
  times_called_on: number;
  quality?: Record<string, Stat>;
}

export interface CoverageReport {
  region?: string;
  region_name?: string;
  from?: string;
  to?: string;
  group_by: string[];
  routine: { min_per_week: number; weeks: number };
  total: CoverageGroup;
  groups: CoverageGroup[];
}

/** The table's columns, in order. "label" is an i18n key. */
export const COLUMNS = [
  { id: 'name', label: 'name', numeric: false },
  { id: 'teaching_points', label: 'teachingPointsCount', numeric: true },
  { id: 'covered_teaching_points', label: 'covered', numeric: true },
  { id: 'coverage_rate', label: 'coverageRate', numeric: true },
  { id: 'scheduled', label: 'scheduled', numeric: true },
  { id: 'valid', label: 'validSessions', numeric: true },
  { id: 'delivery_rate', label: 'deliveryRate', numeric: true },
  { id: 'class_hours', label: 'classHours', numeric: true },
  { id: 'routine_rate', label: 'routineRate', numeric: true },
] as const;

export type ColumnId = (typeof COLUMNS)[number]['id'];

export interface Row {
  /** Stable key: the group's key values joined. */
  id: string;
  name: string;
  values: Record<Exclude<ColumnId, 'name'>, number | null>;
  /** No teaching point of the group was served (covered = 0 while it has teaching points). */
  unserved: boolean;
}

/** groupName: "辰溪县 · 音乐" from the group's names (or keys) in group_by order. */
export function groupName(g: CoverageGroup, groupBy: string[]): string {
  if (groupBy.length === 0) return '';
  return groupBy.map((d) => g.names?.[d] || g.key[d] || '—').join(' · ');
}

/** totalHours sums the class hours over subjects. */
export function totalHours(g: CoverageGroup): number {
  let h = 0;
  for (const v of Object.values(g.class_hours ?? {})) h += v.hours;
  return Math.round(h * 100) / 100;
}

export function toRow(g: CoverageGroup, groupBy: string[]): Row {
  return {
    id: groupBy.map((d) => g.key[d] ?? '').join('\u0000'),
    name: groupName(g, groupBy),
    values: {
      teaching_points: g.teaching_points,
      covered_teaching_points: g.covered_teaching_points,
      coverage_rate: g.coverage_rate,
      scheduled: g.scheduled,
      valid: g.valid,
      delivery_rate: g.delivery_rate,
      class_hours: totalHours(g),
      routine_rate: g.routine_rate,
    },
    unserved: g.teaching_points > 0 && g.covered_teaching_points === 0,
  };
}

export function rows(rep: CoverageReport): Row[] {
  return rep.groups.map((g) => toRow(g, rep.group_by));
}

/** sortRows sorts by a column; nulls (no data) always last; ties by name. */
export function sortRows(list: Row[], col: ColumnId, dir: 'asc' | 'desc'): Row[] {
  const sign = dir === 'asc' ? 1 : -1;
  return [...list].sort((a, b) => {
    if (col === 'name') return sign * a.name.localeCompare(b.name, 'zh-CN');
    const x = a.values[col];
    const y = b.values[col];
    if (x === null && y === null) return a.name.localeCompare(b.name, 'zh-CN');
    if (x === null) return 1;
    if (y === null) return -1;
    return sign * (x - y) || a.name.localeCompare(b.name, 'zh-CN');
  });
}

/** formatRate: 0.6667 -> "66.67%", null -> "—". */
export function formatRate(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  return `${(Math.round(v * 10000) / 100).toFixed(2).replace(/\.?0+$/, '')}%`;
}

/** formatValue formats a table cell. */
export function formatValue(col: ColumnId, v: number | null): string {
  if (col === 'coverage_rate' || col === 'delivery_rate' || col === 'routine_rate') return formatRate(v);
  if (v === null) return '—';
  if (col === 'class_hours') return String(Math.round(v * 100) / 100);
  return String(v);
}

/** unservedPoints lists the teaching points of a report grouped by teaching_point that were not covered. */
export function unservedPoints(rep: CoverageReport): { id: string; name: string }[] {
  if (!rep.group_by.includes('teaching_point')) return [];
  return rep.groups
    .filter((g) => g.teaching_points > 0 && g.covered_teaching_points === 0)
    .map((g) => ({ id: g.key.teaching_point, name: g.names?.teaching_point || g.key.teaching_point }))
    .sort((a, b) => a.name.localeCompare(b.name, 'zh-CN'));
}

/** subjectHours: class hours per subject of a group, largest first. */
export function subjectHours(g: CoverageGroup): { subject: string; hours: number; sessions: number }[] {
  return Object.entries(g.class_hours ?? {})
    .map(([subject, v]) => ({ subject, hours: v.hours, sessions: v.sessions }))
    .sort((a, b) => b.hours - a.hours || a.subject.localeCompare(b.subject, 'zh-CN'));
}

/** timeSeries turns a report grouped by a time dimension into chart series (rates in %). */
export function timeSeries(rep: CoverageReport, dim: string): { x: string[]; coverage: (number | null)[]; delivery: (number | null)[]; hours: number[] } {
  const gs = [...rep.groups].sort((a, b) => (a.key[dim] ?? '').localeCompare(b.key[dim] ?? ''));
  const pct = (v: number | null) => (v === null ? null : Math.round(v * 10000) / 100);
  return {
    x: gs.map((g) => g.key[dim] ?? ''),
    coverage: gs.map((g) => pct(g.coverage_rate)),
    delivery: gs.map((g) => pct(g.delivery_rate)),
    hours: gs.map((g) => totalHours(g)),
  };
}

/**
 * regionContains mirrors the server's model.RegionContains (GB/T 2260): a province PP0000
 * holds every code PP...., a city PPCC00 every code PPCC.., a county only itself.
 */
export function regionContains(outer: string, inner: string): boolean {
  if (!/^\d{6}$/.test(outer) || !/^\d{6}$/.test(inner)) return false;
  if (outer.endsWith('0000')) return inner.startsWith(outer.slice(0, 2));
  if (outer.endsWith('00')) return inner.startsWith(outer.slice(0, 4));
  return inner === outer;
}

/**
 * supervisorRegions: the regions a supervisor may pick on the dashboard, its own first, then
 * those inside it by code, named from GET /me's directory (the code when unnamed).
 */
export function supervisorRegions(own: string, named: Record<string, { name?: string }> | undefined): { code: string; name: string }[] {
  const inside = Object.keys(named ?? {}).filter((c) => c !== own && regionContains(own, c)).sort();
  return [own, ...inside].map((code) => ({ code, name: named?.[code]?.name || code }));
}
