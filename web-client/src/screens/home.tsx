// Today's sessions of the signed-in classroom (or supervisor), with a join button that opens
// the screen for its role.
import { useEffect, useState } from 'preact/hooks';
import { api, type Me, type Session } from '../api';
import { auth, signOut } from '../auth';
import { Icon } from '../components/icons';
import { Empty, TopBar } from '../components/ui';
import { lang, t } from '../i18n';
import { courseType, gradeName, isoDay, sessionStatus, sessionsOfDay, timeRange } from '../logic/sessions';
import { Directory } from '../logic/wall';
import { navigate } from '../router';
import { useSignal } from '../store';

/** loadDirectory: the names from GET /me, else from the dataset when the token may read it. */
export async function loadDirectory(token: string, me?: Me): Promise<Directory> {
  if (me?.directory) return new Directory(me.directory);
  try {
    return Directory.fromDataset(await api.dataset(token));
  } catch {
    return new Directory();
  }
}

function SessionCard({ s, dir, now }: { s: Session; dir: Directory; now: number }) {
  const l = useSignal(lang);
  const st = sessionStatus(s, now);
  const ct = courseType(s.course_type);
  const canJoin = st === 'open' || st === 'live';
  return (
    <article class={`session-card status-${st}`} data-testid={`session-${s.id}`}>
      <div class="session-time">
        <div class="big-time">{timeRange(s)}</div>
        <span class={`chip chip-${st}`}>{st === 'live' ? t('live') : st === 'ended' ? t('ended') : t('notStarted')}</span>
      </div>
      <div class="session-body">
        <div class="session-title">
          <strong>{s.subject}</strong>
          <span class="muted">{gradeName(s.grade, l)}</span>
          <span class={`chip chip-ct-${ct}`}>{t(ct)}</span>
          {s.role ? <span class="chip chip-role">{t(`role_${s.role}` as 'role_teacher')}</span> : null}
        </div>
        <div class="session-meta">
          <span>
            {t('master')}: {dir.classroomName(s.master)}
          </span>
          <span>
            {t('receivers')}: {s.receivers.map((r) => dir.classroomName(r)).join('、')}
          </span>
        </div>
      </div>
      <div class="session-action">
        <button class="primary big" data-testid={`join-${s.id}`} disabled={!canJoin} onClick={() => navigate(`/class/${encodeURIComponent(s.id)}`)}>
          <Icon name={s.role === 'supervisor' ? 'eye' : 'play'} /> {s.role === 'supervisor' ? t('watch') : t('join')}
        </button>
      </div>
    </article>
  );
}

export function Home() {
  const a = useSignal(auth);
  const [me, setMe] = useState<Me>();
  const [dir, setDir] = useState(new Directory());
  const [error, setError] = useState('');
  const [now, setNow] = useState(Date.now());

  useEffect(() => {
    if (!a) return;
    if (a.kind === 'admin') {
      navigate('/dashboard', true);
      return;
    }
    if (a.kind !== 'account') return;
    const load = async () => {
      try {
        const m = await api.me(a.token);
        setMe(m);
        setDir(await loadDirectory(a.token, m));
      } catch (e) {
        const err = e as { status?: number; message: string };
        if (err.status === 401) {
          signOut();
          navigate('/', true);
        }
        setError(err.message);
      }
    };
    void load();
    const timer = setInterval(() => setNow(Date.now()), 15_000);
    const reload = setInterval(load, 120_000);
    return () => {
      clearInterval(timer);
      clearInterval(reload);
    };
  }, [a?.token]);

  const today = me ? sessionsOfDay(me.sessions, new Date(now)) : [];
  const todayIso = isoDay(new Date(now));
  const later = me ? me.sessions.filter((s) => isoDay(new Date(s.start)) > todayIso).sort((x, y) => Date.parse(x.start) - Date.parse(y.start)) : [];
  const isSupervisor = me?.account.kind === 'supervisor';
  const who = me ? me.account.name || (me.account.classroom ? dir.classroomName(me.account.classroom) : me.account.id) : '';

  return (
    <div class="page">
      <TopBar>
        {isSupervisor ? (
          <>
            <button class="ghost" data-testid="nav-wall" onClick={() => navigate('/wall')}>
              <Icon name="grid" size={18} /> {t('wall')}
            </button>
            <button class="ghost" data-testid="nav-dashboard" onClick={() => navigate('/dashboard')}>
              <Icon name="chart" size={18} /> {t('dashboard')}
            </button>
          </>
        ) : null}
        {me && !isSupervisor ? (
          <button class="ghost" data-testid="nav-recordings" onClick={() => navigate('/recordings')}>
            <Icon name="film" size={18} /> {t('recordings')}
          </button>
        ) : null}
      </TopBar>
      <main class="content narrow">
        <div class="page-head">
          <div>
            <h1>{t('todaySessions')}</h1>
            <p class="muted">
              {who}
              {me?.account.classroom && dir.schoolOf(me.account.classroom) ? ` · ${dir.schoolName(dir.schoolOf(me.account.classroom))}` : ''} · {todayIso}
            </p>
          </div>
          {isSupervisor ? (
            <div class="row gap">
              <button class="secondary big" onClick={() => navigate('/dashboard')}>
                <Icon name="chart" /> {t('dashboard')}
              </button>
              <button class="primary big" onClick={() => navigate('/wall')}>
                <Icon name="grid" /> {t('wall')}
              </button>
            </div>
          ) : null}
        </div>
        {error ? <div class="error-text">{error}</div> : null}
        {!me && !error ? <Empty>{t('loading')}</Empty> : null}
        {me && today.length === 0 ? <Empty>{t('noSessions')}</Empty> : null}
        <div class="session-list" data-testid="sessions">
          {today.map((s) => (
            <SessionCard key={s.id} s={s} dir={dir} now={now} />
          ))}
        </div>
        {later.length > 0 ? (
          <>
            <h2 class="section-title">{t('upcoming')}</h2>
            <table class="table">
              <thead>
                <tr>
                  <th>{t('time')}</th>
                  <th>{t('subject')}</th>
                  <th>{t('master')}</th>
                  <th>{t('receivers')}</th>
                </tr>
              </thead>
              <tbody>
                {later.slice(0, 20).map((s) => (
                  <tr key={s.id}>
                    <td>
                      {isoDay(new Date(s.start))} {timeRange(s)}
                    </td>
                    <td>
                      {s.subject} <span class="muted small">{t(courseType(s.course_type))}</span>
                    </td>
                    <td>{dir.classroomName(s.master)}</td>
                    <td>{s.receivers.map((r) => dir.classroomName(r)).join('、')}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        ) : null}
      </main>
    </div>
  );
}
