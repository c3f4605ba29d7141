// Supervisors' wall (巡课): the live classes of the supervisor's region as low-layer
// thumbnails of the teacher's camera (the server forwards the existing low layer: no extra
// load on the classroom), filters by county, school and subject, and one class full-size on
// click. Supervisors join hidden (their token's grant), so classes never see them.
import { Track } from 'livekit-client';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, type Me } from '../api';
import { auth } from '../auth';
import { Icon } from '../components/icons';
import { CameraTile, TileVideo } from '../components/tiles';
import { Empty, PhaseOverlay, QualityBadge, TopBar, VideoView } from '../components/ui';
import { t } from '../i18n';
import { Live, cameraOf, qualityOf, screenOf, serverUrl, sourceName } from '../live';
import { calledOn, handRaised, roleOf } from '../logic/participants';
import { decide } from '../logic/policy';
import { courseType, timeRange } from '../logic/sessions';
import { Directory, applyFilter, filterOptions, liveClasses, type WallClass, type WallFilter } from '../logic/wall';

import { useSignal } from '../store';
import { loadDirectory } from './home';

function useClassLive(c: WallClass, token: string, full: boolean): Live {
  const fullRef = useRef(full);
  const live = useMemo(
    () =>
      new Live({
        autoSubscribe: false,
        debugName: `wall-${c.session.id}`,
        credentials: async () => {
          const tok = await api.roomToken(token, c.session.id);
          return { url: serverUrl(tok.url), token: tok.token };
        },
        policy: (p, pub) =>
          decide(fullRef.current ? 'wall-full' : 'wall-thumb', {
            role: roleOf(p),
            calledOn: calledOn(p),
            kind: pub.kind === Track.Kind.Audio ? 'audio' : 'video',
            source: sourceName(pub.source),
          }),
      }),
    [c.session.id],
  );
  useEffect(() => {
    void live.connect().catch(() => undefined);
    return () => void live.leave();
  }, [live]);
  useEffect(() => {
    fullRef.current = full;
    live.applyPolicy();
  }, [full]);
  return live;
}

function ClassTile({ c, token, onOpen, full }: { c: WallClass; token: string; onOpen: () => void; full: boolean }) {
  const live = useClassLive(c, token, full);
  useSignal(live.version);
  const remotes = [...live.room.remoteParticipants.values()];
  const teacher = remotes.find((p) => roleOf(p) === 'teacher');
  const cam = cameraOf(teacher)?.videoTrack;
  const points = remotes.filter((p) => roleOf(p) === 'teaching_point');
  if (full) return <FullView c={c} live={live} onClose={onOpen} />;
  return (
    <button class="wall-tile" data-testid={`wall-${c.session.id}`} onClick={onOpen} title={t('watchFull')}>
      <div class="wall-video">
        <TileVideo track={cam} testid={`wall-video-${c.session.id}`} placeholder={live.phase === 'connected' ? t('waitingTeacher') : t('connecting')} />
        <span class="chip chip-live wall-live">{t('live')}</span>
        <span class="wall-count">
          {t('teachingPoints')} {points.length}/{c.session.receivers.length}
        </span>
      </div>
      <div class="wall-info">
        <div class="wall-title">
          <strong>{c.session.subject}</strong> <span class="muted">{t(courseType(c.session.course_type))}</span>
        </div>
        <div class="muted small">
          {teacher?.name || c.masterName}
          {c.schoolName && c.schoolName !== c.session.master ? ` · ${c.schoolName}` : ''}
        </div>
        <div class="muted small">
          {c.countyName ? `${c.countyName} · ` : ''}
          {timeRange(c.session)}
        </div>
      </div>
    </button>
  );
}

function FullView({ c, live, onClose }: { c: WallClass; live: Live; onClose: () => void }) {
  useSignal(live.version);
  const remotes = [...live.room.remoteParticipants.values()];
  const teacher = remotes.find((p) => roleOf(p) === 'teacher');
  const cam = cameraOf(teacher)?.videoTrack;
  const slides = screenOf(teacher)?.videoTrack;
  return (
    <div class="wall-full" data-testid="wall-full">
      <div class="wall-full-head">
        <button class="secondary" onClick={onClose}>
          <Icon name="back" size={18} /> {t('back')}
        </button>
        <h2>
          {c.session.subject} · {teacher?.name || c.masterName} · {timeRange(c.session)}
        </h2>
        <span class="muted small">
          <Icon name="eye" size={16} /> {t('hiddenNote')}
        </span>
      </div>
      <div class="wall-full-body">
        <div class="wall-full-stage">
          <TileVideo track={cam} fit="contain" testid="wall-full-video" stage placeholder={t('waitingTeacher')} />
          {slides ? (
            <div class="stage-pip">
              <VideoView track={slides} fit="contain" />
            </div>
          ) : null}
        </div>
        <aside class="wall-full-side">
          <h3>{t('gallery')}</h3>
          <ul class="plist" data-testid="wall-participants">
            {remotes.map((p) => (
              <li key={p.identity}>
                <span>
                  {p.name || p.identity} <span class="muted small">{t(`role_${roleOf(p) ?? 'viewer'}` as 'role_teacher')}</span>
                </span>
                <span class="row gap-s">
                  {handRaised(p) ? <Icon name="hand" size={16} /> : null}
                  {calledOn(p) ? <Icon name="mic" size={16} /> : null}
                  <QualityBadge quality={qualityOf(p)} />
                </span>
              </li>
            ))}
          </ul>
          <div class="wall-points">
            {remotes
              .filter((p) => roleOf(p) === 'teaching_point')
              .map((p) => (
                <CameraTile key={p.identity} p={p} />
              ))}
          </div>
        </aside>
      </div>
      <PhaseOverlay live={live} />
    </div>
  );
}

export function Wall() {
  const a = useSignal(auth);
  const [me, setMe] = useState<Me>();
  const [dir, setDir] = useState(new Directory());
  const [now, setNow] = useState(Date.now());
  const [filter, setFilter] = useState<WallFilter>({});
  const [open, setOpen] = useState<string | undefined>(new URLSearchParams(location.search).get('watch') ?? undefined);
  const [error, setError] = useState('');
  useEffect(() => {
    if (!a) return;
    const load = async () => {
      try {
        const m = await api.me(a.token);
        setMe(m);
        setDir(await loadDirectory(a.token, m));
      } catch (e) {
        setError((e as Error).message);
      }
    };
    void load();
    const t1 = setInterval(() => setNow(Date.now()), 30_000);
    const t2 = setInterval(load, 120_000);
    return () => {
      clearInterval(t1);
      clearInterval(t2);
    };
  }, [a?.token]);
  if (!a) return null;
  const all = me ? liveClasses(me.sessions.filter((s) => s.role === 'supervisor'), dir, now) : [];
  const opts = filterOptions(all);
  const shown = applyFilter(all, filter);
  const sel = (key: keyof WallFilter, label: string, options: [string, string][]) => (
    <label class="field inline">
      <span class="field-label">{label}</span>
      <select data-testid={`filter-${key}`} value={filter[key] ?? ''} onChange={(e) => setFilter({ ...filter, [key]: (e.target as HTMLSelectElement).value || undefined })}>
        <option value="">{t('all')}</option>
        {options.map(([v, n]) => (
          <option value={v}>{n}</option>
        ))}
      </select>
    </label>
  );
  return (
    <div class="page wall-page" data-testid="wall">
      <TopBar back="/" title={<strong>{t('wall')}</strong>}>
        <span class="muted small">
          <Icon name="eye" size={16} /> {t('hiddenNote')}
        </span>
      </TopBar>
      <main class="content wide">
        <div class="page-head">
          <div>
            <h1>
              {t('liveClasses')} <span class="muted">{shown.length}</span>
            </h1>
            <p class="muted">{me?.account.name || me?.account.id}</p>
          </div>
          <div class="filters">
            {sel('county', t('county'), opts.counties)}
            {sel('school', t('school'), opts.schools)}
            {sel(
              'subject',
              t('subject'),
              opts.subjects.map((s) => [s, s]),
            )}
          </div>
        </div>
        {error ? <div class="error-text">{error}</div> : null}
        {me && shown.length === 0 ? <Empty>{t('noLiveClasses')}</Empty> : null}
        <div class={`wall-grid${open ? ' has-open' : ''}`}>
          {shown.map((c) => (
            <ClassTile
              key={c.session.id}
              c={c}
              token={a.token}
              full={open === c.session.id}
              onOpen={() => {
                const next = open === c.session.id ? undefined : c.session.id;
                setOpen(next);
                history.replaceState(null, '', next ? `/wall?watch=${encodeURIComponent(next)}` : '/wall');
              }}
            />
          ))}
        </div>
      </main>
    </div>
  );
}

