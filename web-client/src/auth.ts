// Who is signed in, kept in sessionStorage (per tab: two tabs can be two classrooms), and the
// room tokens obtained for sessions (reused by the recordings screen while they are valid).
import { api, type Account, type RoomToken } from './api';
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

/**
 * logOut ends the sign-in on the server (POST /api/v1/logout), so that the token stops
 * working everywhere, then forgets it here. An error (signed out already, offline) does not
 * keep anyone signed in here.
 */
export async function logOut(): Promise<void> {
  const a = auth.get();
  if (a?.kind === 'account') {
    try {
      await api.logout(a.token);
    } catch {
      // the sign-in is over or the server unreachable: forget it here anyway
    }
  }
  signOut();
}

// Device tokens: a successful sign-in answers one; sent with the next sign-ins to the same
// account from this browser, it lets the server tell this browser from strangers behind the
// same address (their wrong passwords then do not lock it out). Kept in localStorage, per
// account, for the last few accounts.
const DEVICES = 'sanke.devices';
const MAX_DEVICES = 8;

function devices(): Record<string, string> {
  try {
    return JSON.parse(globalThis.localStorage?.getItem(DEVICES) || '{}') as Record<string, string>;
  } catch {
    return {};
  }
}

/** deviceFor returns this browser's device token for an account, if it has one. */
export function deviceFor(account: string): string | undefined {
  return devices()[account];
}

/** rememberDevice keeps the device token a sign-in to account answered. */
export function rememberDevice(account: string, device: string | undefined): void {
  if (!device) return;
  const all = devices();
  delete all[account];
  const kept = Object.entries(all).slice(-(MAX_DEVICES - 1));
  try {
    localStorage.setItem(DEVICES, JSON.stringify(Object.fromEntries([...kept, [account, device]])));
  } catch {
    // private mode: sign in without one next time
  }
}

function rooms(): Record<string, RoomToken> {
  try {
    return JSON.parse(sessionStorage.getItem(ROOMS) || '{}') as Record<string, RoomToken>;
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
