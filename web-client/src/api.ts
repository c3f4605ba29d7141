// The HTTP APIs the client uses: the classroom service (/api/v1/, classroom/README.md) and the
// recorder (/api/v1/rooms/{room}/recording..., recorder/api.go). Every call takes the bearer
// token to use: a sign-in token, a room token or an admin token.
export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

export type Role = 'teacher' | 'teaching_point' | 'research' | 'viewer' | 'supervisor';

export interface Account {
  id: string;
  kind: 'classroom' | 'supervisor';
  name?: string;
  classroom?: string;
  region?: string;
}

export interface Session {
  id: string;
  course_type: number | string;
  subject: string;
  grade?: number;
  pairing?: string;
  master: string;
  receivers: string[];
  start: string;
  end: string;
  room: string;
  term?: string;
  role?: Role;
}

/** Names of the classrooms, schools and regions a screen shows (see Directory in logic/). */
export interface DirectoryData {
  classrooms?: Record<string, { name?: string; school?: string; kind?: string }>;
  schools?: Record<string, { name?: string; region?: string }>;
  regions?: Record<string, { name?: string }>;
}

export interface Me {
  account: Account;
  sessions: Session[];
  directory?: DirectoryData;
}

export interface RoomToken {
  token: string;
  room: string;
  identity: string;
  role: Role;
  session: string;
  expires_at: string;
  url?: string;
  attributes?: Record<string, string>;
}

export interface ClassState {
  session: string;
  room: string;
  mode: 'lecture' | 'free';
  called_on: string[];
  hands: string[];
}

export interface RecordingStatus {
  recording_id: string;
  room: string;
  started_at?: string;
}

export interface ManifestFile {
  name: string;
  participant: string;
  source: string;
  content_type: string;
  start_offset: number;
  duration: number;
  size: number;
  url?: string;
  tracks: { kind: string; codec: string; width?: number; height?: number }[];
}

export interface Manifest {
  recording_id: string;
  room: string;
  class_session_id?: string;
  started_at: string;
  ended_at: string;
  duration: number;
  participants: { identity: string; name?: string }[];
  files: ManifestFile[];
}

export interface RecordingList {
  active: RecordingStatus[];
  recordings: Manifest[];
}

export interface ClientConfig {
  dev: boolean;
  classroom: boolean;
  recording: boolean;
  version?: string;
}

async function call<T>(method: string, path: string, token: string | undefined, body?: unknown, accept = 'application/json'): Promise<T> {
  const headers: Record<string, string> = { Accept: accept };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, `network: ${(e as Error).message}`);
  }
  if (!res.ok) {
    let msg = res.statusText;
    try {
      const j = (await res.json()) as { error?: unknown } | null;
      if (j && typeof j.error === 'string') msg = j.error;
    } catch {
      // not JSON
    }
    throw new ApiError(res.status, msg);
  }
  if (accept !== 'application/json') return (await res.text()) as T;
  return (await res.json()) as T;
}

const enc = encodeURIComponent;

export const api = {
  config: () => call<ClientConfig>('GET', '/client-config.json', undefined),
  /** device: the device token of this browser's last sign-in to the account, if any. */
  login: (account: string, password: string, device?: string) =>
    call<{ token: string; expires_at: string; account: Account; device?: string }>('POST', '/api/v1/login', undefined,
      device ? { account, password, device } : { account, password }),
  /** Ends the sign-in of token on the server. */
  logout: (token: string) => call<{ signed_out: boolean }>('POST', '/api/v1/logout', token),
  me: (token: string, from?: string, to?: string) => {
    const q = new URLSearchParams();
    if (from) q.set('from', from);
    if (to) q.set('to', to);
    const qs = q.toString();
    return call<Me>('GET', `/api/v1/me${qs ? `?${qs}` : ''}`, token);
  },
  roomToken: (token: string, session: string) => call<RoomToken>('POST', `/api/v1/sessions/${enc(session)}/token`, token),
  /** A token that only lists and plays a session's recordings; also after the class. */
  viewToken: (token: string, session: string) =>
    call<{ token: string; room: string }>('POST', `/api/v1/sessions/${enc(session)}/view-token`, token),
  hand: (roomToken: string, room: string, raised: boolean) =>
    call<ClassState>('POST', `/api/v1/rooms/${enc(room)}/hand`, roomToken, { raised }),
  callOn: (roomToken: string, room: string, identity: string, exclusive = true) =>
    call<{ class: ClassState }>('POST', `/api/v1/rooms/${enc(room)}/call-on`, roomToken, { identity, exclusive }),
  endCallOn: (roomToken: string, room: string, identity: string) =>
    call<ClassState>('DELETE', `/api/v1/rooms/${enc(room)}/call-on/${enc(identity)}`, roomToken),
  setMode: (roomToken: string, room: string, mode: 'lecture' | 'free') =>
    call<ClassState>('PUT', `/api/v1/rooms/${enc(room)}/mode`, roomToken, { mode }),
  classState: (roomToken: string, room: string) => call<ClassState>('GET', `/api/v1/rooms/${enc(room)}/class`, roomToken),
  dataset: (token: string) => call<Record<string, unknown[]>>('GET', '/api/v1/dataset', token),
  coverage: (token: string, params: Record<string, string>) =>
    call<import('./logic/coverage').CoverageReport>('GET', `/api/v1/coverage?${new URLSearchParams(params)}`, token),
  coverageCsv: (token: string, params: Record<string, string>) =>
    call<string>('GET', `/api/v1/coverage?${new URLSearchParams({ ...params, format: 'csv' })}`, token, undefined, 'text/csv'),
  startRecording: (roomToken: string, room: string) =>
    call<RecordingStatus>('POST', `/api/v1/rooms/${enc(room)}/recording/start`, roomToken),
  stopRecording: (roomToken: string, room: string) => call<Manifest>('POST', `/api/v1/rooms/${enc(room)}/recording/stop`, roomToken),
  recordings: (roomToken: string, room: string) => call<RecordingList>('GET', `/api/v1/rooms/${enc(room)}/recordings`, roomToken),
  /** Twirp RoomService (JSON), e.g. MutePublishedTrack with a roomAdmin token. */
  twirp: <T>(token: string, method: string, body: unknown) => call<T>('POST', `/twirp/livekit.RoomService/${method}`, token, body),
  devToken: (body: { room: string; identity: string; name?: string; kind?: 'join' | 'reader' }) =>
    call<{ token: string; url?: string }>('POST', '/dev/token', undefined, body),
  devDemo: () => call<{ sessions: string[]; accounts: { id: string; password: string }[] }>('POST', '/dev/demo', undefined),
};

/**
 * fileUrl is the link that plays or downloads a recording file: the short-lived signed link
 * the recorder lists for it (`/api/v1/recordings/{id}/files/{name}?expires=..&sig=..`), or a
 * store's presigned https URL, used as it is. No access token ever goes into a URL (URLs end
 * up in server logs, browser history and Referer headers). Anything but a path of this origin
 * or an http(s) URL is refused (undefined).
 */
export function fileUrl(u: string | undefined): string | undefined {
  if (!u) return undefined;
  if (u.startsWith('/') && !u.startsWith('//') && !u.startsWith('/\\')) return u;
  if (/^https?:\/\//i.test(u)) return u;
  return undefined;
}
