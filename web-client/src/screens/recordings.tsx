// Recordings of the signed-in classroom's sessions (recorder API: GET
// /api/v1/rooms/{room}/recordings with a room token of the session), played in the browser
// (WebM: VP8/VP9 + Opus). Files are played through the short-lived signed links the listing
// hands out (fileUrl): no token goes into a URL.
import { useEffect, useState } from 'preact/hooks';
import { api, fileUrl, type Manifest, type ManifestFile, type Session } from '../api';
import { auth, roomTokenFor } from '../auth';
import { Icon } from '../components/icons';
import { Empty, TopBar } from '../components/ui';
import { t } from '../i18n';
import { courseType, isoDay, timeRange } from '../logic/sessions';
import { Directory } from '../logic/wall';
import { useSignal } from '../store';
import { loadDirectory } from './home';

interface Row {
  session: Session;
  recordings?: Manifest[];
  active?: boolean;
  unavailable?: string;
}

function fmtDuration(s: number): string {
  const m = Math.floor(s / 60);
  const sec = Math.round(s % 60);
  return `${m}:${sec < 10 ? '0' : ''}${sec}`;
}

function fmtSize(b: number): string {
  if (b > 1 << 20) return `${(b / (1 << 20)).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(b / 1024))} KB`;
}

export function Recordings() {
  const a = useSignal(auth);
  const [list, setList] = useState<Row[]>();
  const [dir, setDir] = useState(new Directory());
  const [playing, setPlaying] = useState<{ file: ManifestFile; title: string }>();
  useEffect(() => {
    if (!a) return;
    (async () => {
      const now = new Date();
      const from = isoDay(new Date(now.getFullYear(), now.getMonth(), now.getDate() - 14));
      const me = await api.me(a.token, from, isoDay(now));
      setDir(await loadDirectory(a.token, me));
      const sessions = me.sessions.filter((s) => Date.parse(s.start) <= Date.now()).sort((x, y) => Date.parse(y.start) - Date.parse(x.start));
      const rows: Row[] = await Promise.all(
        sessions.map(async (s): Promise<Row> => {
          let token = roomTokenFor(s.id)?.token;
          if (!token) {
            try {
              // Past sessions no longer hand out room tokens: a view token reads recordings.
              token = (await api.viewToken(a.token, s.id)).token;
            } catch (e) {
              return { session: s, unavailable: (e as Error).message };
            }
          }
          try {
            const r = await api.recordings(token, s.room);
            return { session: s, recordings: r.recordings, active: r.active.length > 0 };
          } catch (e) {
            return { session: s, unavailable: (e as Error).message };
          }
        }),
      );
      setList(rows);
    })().catch(() => setList([]));
  }, [a?.token]);

  return (
    <div class="page" data-testid="recordings">
      <TopBar back="/" title={<strong>{t('recordings')}</strong>} />
      <main class="content">
        {playing ? (
          <section class="card player-card" data-testid="player">
            <div class="row between">
              <h3>{playing.title}</h3>
              <button class="ghost" onClick={() => setPlaying(undefined)}>
                ✕
              </button>
            </div>
            <video class="player" data-testid="player-video" controls autoplay src={fileUrl(playing.file.url)} />
          </section>
        ) : null}
        {!list ? <Empty>{t('loading')}</Empty> : null}
        {list && list.length === 0 ? <Empty>{t('noRecordings')}</Empty> : null}
        <div class="rec-list">
          {list?.map((r) => (
            <section class="card rec-session" key={r.session.id} data-testid={`rec-session-${r.session.id}`}>
              <div class="rec-head">
                <div>
                  <strong>
                    {isoDay(new Date(r.session.start))} {timeRange(r.session)} · {r.session.subject}
                  </strong>
                  <span class="muted small">
                    {' '}
                    {t(courseType(r.session.course_type))} · {dir.classroomName(r.session.master)}
                  </span>
                </div>
                {r.active ? (
                  <span class="rec-indicator">
                    <i /> {t('recording')}
                  </span>
                ) : null}
              </div>
              {r.unavailable ? <div class="muted small">{t('recordingsNeedToken')}</div> : null}
              {r.recordings && r.recordings.length === 0 && !r.active ? <div class="muted small">{t('noRecordings')}</div> : null}
              {r.recordings?.map((m) => (
                <div class="rec-item" key={m.recording_id} data-testid={`recording-${m.recording_id}`}>
                  <div class="rec-meta">
                    <Icon name="film" size={18} /> {new Date(m.started_at).toLocaleTimeString()} · {t('duration')} {fmtDuration(m.duration)}
                  </div>
                  <div class="rec-files">
                    {m.files.map((f) => {
                      const who = m.participants.find((x) => x.identity === f.participant)?.name || dir.classroomName(f.participant);
                      return (
                      <button
                        class="secondary"
                        data-testid={`play-${f.name}`}
                        onClick={() => setPlaying({ file: f, title: `${who} · ${f.source === 'screen_share' ? t('slides') : t('camera')}` })}
                      >
                        <Icon name="play" size={16} /> {who} · {f.source === 'screen_share' ? t('slides') : t('camera')} · {fmtDuration(f.duration)} · {fmtSize(f.size)}
                      </button>
                      );
                    })}
                  </div>
                </div>
              ))}
            </section>
          ))}
        </div>
      </main>
    </div>
  );
}
