// Short messages shown at the bottom of the screen.
import { signal } from './store';

export interface Toast {
  id: number;
  text: string;
  kind: 'info' | 'error' | 'ok';
}

export const toasts = signal<Toast[]>([]);
let next = 1;

export function toast(text: string, kind: Toast['kind'] = 'info', ms = 4000): void {
  const t = { id: next++, text, kind };
  toasts.set([...toasts.get(), t]);
  setTimeout(() => toasts.set(toasts.get().filter((x) => x.id !== t.id)), ms);
}

/** errorMessage is what a caught error (an Error or anything thrown) says. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
