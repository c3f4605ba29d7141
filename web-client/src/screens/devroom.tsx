// Dev mode only: a quick room joined by name, with a token from the dev token endpoint
// (POST /dev/token, which exists only when the server runs with --dev).
import { api } from '../api';
import { serverUrl } from '../live';
import { Meeting } from './research';

export function DevRoom({ name }: { name: string }) {
  const params = new URLSearchParams(location.search);
  const stored = sessionStorage.getItem('sanke.devIdentity') || `guest-${Math.random().toString(36).slice(2, 7)}`;
  sessionStorage.setItem('sanke.devIdentity', stored);
  const display = params.get('name') || stored;
  const credentials = async () => {
    const r = await api.devToken({ room: name, identity: stored, name: display, kind: 'join' });
    return { url: serverUrl(r.url), token: r.token };
  };
  return <Meeting title={`${name}`} credentials={credentials} />;
}
