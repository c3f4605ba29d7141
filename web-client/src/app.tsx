// Routes: / (sign-in, then today's sessions), /class/:id (the screen for the role),
// /wall, /dashboard, /recordings, /room/:name (dev mode quick room).
import { useEffect, useState } from 'preact/hooks';
import { api } from './api';
import { auth } from './auth';
import { Toasts } from './components/ui';
import { lang } from './i18n';
import { match, path } from './router';
import { ClassScreen } from './screens/class';
import { Dashboard } from './screens/dashboard';
import { DevRoom } from './screens/devroom';
import { Home } from './screens/home';
import { Login } from './screens/login';
import { Recordings } from './screens/recordings';
import { Wall } from './screens/wall';
import { useSignal } from './store';
import { clientConfig } from './config';

export function App() {
  const p = useSignal(path);
  const a = useSignal(auth);
  useSignal(lang);
  const [, setLoaded] = useState(false);
  useEffect(() => {
    api
      .config()
      .then((c) => clientConfig.set(c))
      .catch(() => clientConfig.set({ dev: false, classroom: true, recording: true }))
      .finally(() => setLoaded(true));
  }, []);

  let screen;
  let m;
  if ((m = match('/room/:name', p))) screen = <DevRoom name={m.name} />;
  else if (!a) screen = <Login />;
  else if ((m = match('/class/:id', p))) screen = <ClassScreen key={m.id} sessionId={m.id} />;
  else if (match('/wall', p)) screen = <Wall />;
  else if (match('/dashboard', p)) screen = <Dashboard />;
  else if (match('/recordings', p)) screen = <Recordings />;
  else screen = <Home />;
  return (
    <>
      {screen}
      <Toasts />
    </>
  );
}
