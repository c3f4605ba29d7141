// The server's client configuration (GET /client-config.json, served by server/webclient.go).
import type { ClientConfig } from './api';
import { signal } from './store';

export const clientConfig = signal<ClientConfig | undefined>(undefined);
