// The supervisors' wall: which classes are live and the county / school / subject filters.
import type { DirectoryData, Session } from '../api';
import { sessionStatus } from './sessions';

export interface WallClass {
  session: Session;
  schoolId?: string;
  schoolName: string;
  countyId?: string;
  countyName: string;
  masterName: string;
}

export interface WallFilter {
  county?: string;
  school?: string;
  subject?: string;
}

/** Directory resolves classroom, school and region names (IDs when unknown). */
export class Directory {
  constructor(private d: DirectoryData = {}) {}
  classroomName(id: string): string {
    return this.d.classrooms?.[id]?.name || id;
  }
  schoolOf(classroom: string): string | undefined {
    return this.d.classrooms?.[classroom]?.school;
  }
  schoolName(id: string | undefined): string {
    if (!id) return '';
    return this.d.schools?.[id]?.name || id;
  }
  regionOf(school: string | undefined): string | undefined {
    return school ? this.d.schools?.[school]?.region : undefined;
  }
  regionName(code: string | undefined): string {
    if (!code) return '';
    return this.d.regions?.[code]?.name || code;
  }
  /** fromDataset builds a directory from GET /api/v1/dataset. */
  static fromDataset(ds: Record<string, unknown[]>): Directory {
    const d: DirectoryData = { classrooms: {}, schools: {}, regions: {} };
    for (const c of (ds.classrooms ?? []) as { id: string; name?: string; school?: string; kind?: string }[]) d.classrooms![c.id] = c;
    for (const s of (ds.schools ?? []) as { id: string; name?: string; region?: string }[]) d.schools![s.id] = s;
    for (const r of (ds.regions ?? []) as { code: string; name?: string }[]) d.regions![r.code] = r;
    return new Directory(d);
  }
}

/** liveClasses: the sessions live at now (or opened before their start), with names to filter by. */
export function liveClasses(sessions: Session[], dir: Directory, now: number): WallClass[] {
  return sessions
    .filter((s) => sessionStatus(s, now, 0) === 'live')
    .sort((a, b) => Date.parse(a.start) - Date.parse(b.start) || a.id.localeCompare(b.id))
    .map((s) => {
      const schoolId = dir.schoolOf(s.master);
      const countyId = dir.regionOf(schoolId);
      return {
        session: s,
        schoolId,
        schoolName: dir.schoolName(schoolId) || s.master,
        countyId,
        countyName: dir.regionName(countyId),
        masterName: dir.classroomName(s.master),
      };
    });
}

/** applyFilter keeps the classes matching every set filter. */
export function applyFilter(list: WallClass[], f: WallFilter): WallClass[] {
  return list.filter(
    (c) => (!f.county || c.countyId === f.county) && (!f.school || c.schoolId === f.school) && (!f.subject || c.session.subject === f.subject),
  );
}

/** filterOptions lists the distinct counties, schools and subjects of the classes. */
export function filterOptions(list: WallClass[]): { counties: [string, string][]; schools: [string, string][]; subjects: string[] } {
  const counties = new Map<string, string>();
  const schools = new Map<string, string>();
  const subjects = new Set<string>();
  for (const c of list) {
    if (c.countyId) counties.set(c.countyId, c.countyName);
    if (c.schoolId) schools.set(c.schoolId, c.schoolName);
    if (c.session.subject) subjects.add(c.session.subject);
  }
  const sorted = (m: Map<string, string>) => [...m.entries()].sort((a, b) => a[1].localeCompare(b[1], 'zh-CN'));
  return { counties: sorted(counties), schools: sorted(schools), subjects: [...subjects].sort((a, b) => a.localeCompare(b, 'zh-CN')) };
}
