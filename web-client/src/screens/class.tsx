// /class/:id: gets the room token of a session for the signed-in account and opens the screen
// of its role (teacher console, teaching point, research room, viewer; supervisors go to the wall).
import { useEffect, useState } from 'preact/hooks';
import { api, type RoomToken, type Session } from '../api';
import { auth, rememberRoomToken } from '../auth';
import { Empty, TopBar } from '../components/ui';
import { t } from '../i18n';
import { screenFor } from '../logic/sessions';
import { Directory } from '../logic/wall';
import { navigate } from '../router';
import { useSignal } from '../store';
import { loadDirectory } from './home';
import { PointScreen } from './point';
import { ResearchScreen } from './research';
import { TeacherScreen } from './teacher';

export interface ClassProps {
  session: Session;
  first: RoomToken;
  dir: Directory;
  /** A fresh room token (rejoins). */
  refresh: () => Promise<RoomToken>;
}

export function ClassScreen({ sessionId }: { sessionId: string }) {
  const a = useSignal(auth);
  const [props, setProps] = useState<ClassProps>();
  const [error, setError] = useState('');
  useEffect(() => {
    if (!a) return;
    void (async () => {
      try {
        const me = await api.me(a.token);
        const session = me.sessions.find((s) => s.id === sessionId);
        if (!session) throw new Error(`${sessionId}: ${t('noSessions')}`);
        if (session.role === 'supervisor') {
          navigate(`/wall?watch=${encodeURIComponent(sessionId)}`, true);
          return;
        }
        const refresh = async () => {
          const tok = await api.roomToken(a.token, sessionId);
          rememberRoomToken(tok);
          return tok;
        };
        const first = await refresh();
        const dir = await loadDirectory(a.token, me);
        setProps({ session, first, dir, refresh });
      } catch (e) {
        setError((e as Error).message);
      }
    })();
  }, [sessionId, a?.token]);

  if (!props)
    return (
      <div class="page">
        <TopBar back="/" />
        <main class="content narrow">{error ? <div class="error-text big-error">{error}</div> : <Empty>{t('loading')}</Empty>}</main>
      </div>
    );
  switch (screenFor(props.first.role, props.session.course_type)) {
    case 'teacher':
      return <TeacherScreen {...props} />;
    case 'research':
      return <ResearchScreen {...props} />;
    case 'point':
      return <PointScreen {...props} />;
    default:
      return <PointScreen {...props} viewer />;
  }
}
