// Who is signed in, kept in sessionStorage (per tab: two tabs can be two classrooms), and the
// room tokens obtained for sessions (reused by the recordings screen while they are valid).
import type { Account, RoomToken } from './api';
import { signal } from './store';

export interface Auth {
  /** account: a classroom or supervisor sign-in; admin: an admin key or reader token; dev: dev-mode guest. */
  kind: 'account' | 'admin' | 'dev';
  token: string;
  account?: Account;
  expiresAt?: string;
}

const KEY = 'sanke.auth';
const ROOMS = 'sanke.roomTokens';

function load(): Auth | undefined {
  try {
    const raw = globalThis.sessionStorage?.getItem(KEY);
    if (!raw) return undefined;
    const a = JSON.parse(raw) as Auth;
    if (a.expiresAt && Date.parse(a.expiresAt) < Date.now()) return undefined;
    return a;
  } catch {
    return undefined;
  }
}

export const auth = signal<Auth | undefined>(load());

export function signIn(a: Auth): void {
  try {
    sessionStorage.setItem(KEY, JSON.stringify(a));
  } catch {
    // private mode: keep it in memory
  }
  auth.set(a);
}

export function signOut(): void {
  try {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(ROOMS);
  } catch {
    // ignore
  }
  auth.set(undefined);
}

function rooms(): Record<string, RoomToken> {
  try {
    return JSON.parse(sessionStorage.getItem(ROOMS) || '{}');
  } catch {
    return {};
  }
}

/** rememberRoomToken keeps a session's room token for later screens. */
export function rememberRoomToken(t: RoomToken): void {
  const all = rooms();
  all[t.session] = t;
  try {
    sessionStorage.setItem(ROOMS, JSON.stringify(all));
  } catch {
    // ignore
  }
}

/** roomTokenFor returns a remembered, unexpired room token of a session. */
export function roomTokenFor(session: string): RoomToken | undefined {
  const t = rooms()[session];
  if (!t) return undefined;
  if (t.expires_at && Date.parse(t.expires_at) < Date.now() + 30_000) return undefined;
  return t;
}
