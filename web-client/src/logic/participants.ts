// What the class screens read from participants: the attributes the classroom service sets
// (classroom/roles.go: sanke.role, sanke.classroom, sanke.school, sanke.hand, sanke.called_on).
import type { Role } from '../api';

export interface ParticipantLike {
  identity: string;
  name?: string;
  attributes?: Readonly<Record<string, string>>;
  metadata?: string;
}

export const ATTR = {
  role: 'sanke.role',
  classroom: 'sanke.classroom',
  school: 'sanke.school',
  session: 'sanke.session',
  hand: 'sanke.hand',
  calledOn: 'sanke.called_on',
} as const;

/** roleOf reads the role from the attributes (or the JSON metadata a token carries). */
export function roleOf(p: ParticipantLike): Role | undefined {
  const a = p.attributes?.[ATTR.role];
  if (a) return a as Role;
  try {
    const md = (p.metadata ? JSON.parse(p.metadata) : undefined) as { role?: unknown } | null | undefined;
    if (md && typeof md.role === 'string') return md.role as Role;
  } catch {
    // not JSON
  }
  return undefined;
}

export function handRaised(p: ParticipantLike): boolean {
  return p.attributes?.[ATTR.hand] === 'raised';
}

export function calledOn(p: ParticipantLike): boolean {
  return p.attributes?.[ATTR.calledOn] === 'true';
}

export function displayName(p: ParticipantLike): string {
  return p.name || p.identity;
}

/**
 * pointTiles orders the teaching points of a delivery class for the teacher's grid: the
 * expected receivers in timetable order, each with its participant when connected; then any
 * other teaching point that joined. Raised hands come first so the teacher sees them.
 */
export function pointTiles<P extends ParticipantLike>(expected: string[], present: P[]): { identity: string; participant?: P }[] {
  const byId = new Map(present.map((p) => [p.identity, p]));
  const tiles: { identity: string; participant?: P }[] = expected.map((id) => ({ identity: id, participant: byId.get(id) }));
  for (const p of present) {
    if (!expected.includes(p.identity) && roleOf(p) === 'teaching_point') tiles.push({ identity: p.identity, participant: p });
  }
  const rank = (t: { participant?: P }) => (t.participant ? (handRaised(t.participant) ? 0 : calledOn(t.participant) ? 1 : 2) : 3);
  return tiles
    .map((t, i) => ({ t, i }))
    .sort((a, b) => rank(a.t) - rank(b.t) || a.i - b.i)
    .map((x) => x.t);
}
