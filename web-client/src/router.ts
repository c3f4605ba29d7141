// Client-side routes (the server answers index.html for every path it does not own).
import { signal } from './store';

export const path = signal<string>(globalThis.location?.pathname ?? '/');

if (typeof window !== 'undefined') {
  window.addEventListener('popstate', () => path.set(location.pathname));
}

export function navigate(to: string, replace = false): void {
  if (to === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  path.set(location.pathname);
  window.scrollTo(0, 0);
}

/** match returns the parameters of a pattern like "/class/:id", or undefined. */
export function match(pattern: string, p: string): Record<string, string> | undefined {
  const a = pattern.split('/').filter(Boolean);
  const b = p.split('/').filter(Boolean);
  if (a.length !== b.length) return undefined;
  const out: Record<string, string> = {};
  for (let i = 0; i < a.length; i++) {
    if (a[i].startsWith(':')) out[a[i].slice(1)] = decodeURIComponent(b[i]);
    else if (a[i] !== b[i]) return undefined;
  }
  return out;
}
