// Sessions as the sign-in screen shows them: status against the clock, course type names,
// the screen a role opens.
import type { Role, Session } from '../api';

export type Status = 'upcoming' | 'open' | 'live' | 'ended';

/** Course types (classroom/model): 1 delivery 专递课堂, 2 research 名师课堂, 3 broadcast 名校网络课堂. */
export function courseType(ct: number | string): 'delivery' | 'research' | 'broadcast' {
  const s = String(ct).toLowerCase();
  if (s === '2' || s === 'research' || s === '名师课堂') return 'research';
  if (s === '3' || s === 'broadcast' || s === '名校网络课堂') return 'broadcast';
  return 'delivery';
}

/**
 * sessionStatus: live between start and end; open when it can be joined already (earlyJoinMs
 * before the start, the server's classroom.early_join, 30 min by default); ended after end.
 */
export function sessionStatus(s: Pick<Session, 'start' | 'end'>, now: number, earlyJoinMs = 30 * 60_000): Status {
  const start = Date.parse(s.start);
  const end = Date.parse(s.end);
  if (now >= end) return 'ended';
  if (now >= start) return 'live';
  if (now >= start - earlyJoinMs) return 'open';
  return 'upcoming';
}

/** The client route for a role in a session. */
export function screenFor(role: Role | undefined, ct: number | string): 'teacher' | 'point' | 'research' | 'viewer' | 'wall' {
  switch (role) {
    case 'teacher':
      return courseType(ct) === 'research' ? 'research' : 'teacher';
    case 'teaching_point':
      return 'point';
    case 'research':
      return 'research';
    case 'supervisor':
      return 'wall';
    default:
      return 'viewer';
  }
}

/** Sessions of one local day (by start), ordered by start. */
export function sessionsOfDay(list: Session[], day: Date): Session[] {
  const y = day.getFullYear();
  const m = day.getMonth();
  const d = day.getDate();
  return list
    .filter((s) => {
      const st = new Date(s.start);
      return st.getFullYear() === y && st.getMonth() === m && st.getDate() === d;
    })
    .sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** "08:00–08:40" in local time. */
export function timeRange(s: Pick<Session, 'start' | 'end'>): string {
  const a = new Date(s.start);
  const b = new Date(s.end);
  return `${pad(a.getHours())}:${pad(a.getMinutes())}–${pad(b.getHours())}:${pad(b.getMinutes())}`;
}

/** "2025-09-01" of a local date. */
export function isoDay(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** The Monday (local) of the ISO week containing d. */
export function mondayOf(d: Date): Date {
  const x = new Date(d.getFullYear(), d.getMonth(), d.getDate());
  const dow = (x.getDay() + 6) % 7; // Monday = 0
  x.setDate(x.getDate() - dow);
  return x;
}

/** Grade 1-12 as Chinese school years (三年级, 初一, 高二). */
export function gradeName(g: number | undefined, lang: 'zh' | 'en'): string {
  if (!g) return '';
  if (lang === 'en') return `Grade ${g}`;
  const cn = ['', '一', '二', '三', '四', '五', '六'];
  if (g <= 6) return `${cn[g]}年级`;
  if (g <= 9) return `初${cn[g - 6]}`;
  return `高${cn[g - 9]}`;
}
