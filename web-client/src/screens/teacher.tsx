// Teacher console (master classroom): device check, camera (simulcast) + microphone, screen or
// slide sharing tuned for text, the grid of teaching points (low layer) with connection state,
// network quality and raised hands, call-on / mute / end call-on, recording, chat, end class.
import { type RemoteParticipant, Track } from 'livekit-client';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, type RecordingStatus } from '../api';
import { type DeviceChoice, PreJoinPage } from '../components/devices';
import { Icon } from '../components/icons';
import { SCREEN_CAPTURE, SCREEN_PUBLISH, SlideDeck } from '../components/slides';
import { LeaveButton, TileVideo } from '../components/tiles';
import { Chat, PhaseOverlay, QualityBadge, TopBar, VideoView } from '../components/ui';
import { t } from '../i18n';
import { Live, cameraOf, micOf, qualityOf, screenOf, serverUrl, sourceName } from '../live';
import { calledOn, handRaised, pointTiles, roleOf } from '../logic/participants';
import { decide } from '../logic/policy';
import { courseType, timeRange } from '../logic/sessions';
import { useSignal } from '../store';
import { errorMessage, toast } from '../toast';
import type { ClassProps } from './class';

function PointTile({ identity, p, name, live, room, token, big }: { identity: string; p?: RemoteParticipant; name: string; live: Live; room: string; token: string; big: boolean }) {
  useSignal(live.version);
  const cam = cameraOf(p);
  const mic = micOf(p);
  const hand = p ? handRaised(p) : false;
  const on = p ? calledOn(p) : false;
  const [busy, setBusy] = useState(false);
  const act = async (fn: () => Promise<unknown>) => {
    setBusy(true);
    try {
      await fn();
    } catch (e) {
      toast((e as Error).message, 'error');
    } finally {
      setBusy(false);
    }
  };
  const state = p ? 'online' : 'waiting';
  return (
    <div
      class={`tile point-tile${hand ? ' hand' : ''}${on ? ' called' : ''}${big ? ' big' : ''}${p ? '' : ' offline'}`}
      data-testid={`tp-${identity}`}
      data-state={state}
      data-hand={hand ? 'raised' : ''}
      data-called={on ? 'true' : ''}
    >
      <TileVideo track={cam && !cam.isMuted ? cam.videoTrack : undefined} testid={`tp-video-${identity}`} placeholder={name.slice(0, 2)} />
      <div class="tile-top">
        <span class={`chip chip-${state}`}>{p ? t('online') : t('waiting')}</span>
        {p ? <QualityBadge quality={qualityOf(p)} /> : null}
      </div>
      {hand ? (
        <div class="hand-badge" data-testid={`hand-${identity}`}>
          <Icon name="hand" /> {t('handRaised')}
        </div>
      ) : null}
      {on ? (
        <div class="called-badge">
          <Icon name={mic && !mic.isMuted ? 'mic' : 'micOff'} size={18} /> {t('calledOn')}
        </div>
      ) : null}
      <div class="tile-bottom">
        <span class="tile-name">{name}</span>
        {p ? (
          <span class="tile-actions">
            {on ? (
              <>
                {mic ? (
                  <button
                    class="small-btn"
                    disabled={busy}
                    onClick={() => void act(() => api.twirp(token, 'MutePublishedTrack', { room, identity, track_sid: mic.trackSid, muted: !mic.isMuted }))}
                  >
                    {mic.isMuted ? t('unmute') : t('mute')}
                  </button>
                ) : null}
                <button class="small-btn danger" data-testid={`end-call-${identity}`} disabled={busy} onClick={() => void act(() => api.endCallOn(token, room, identity))}>
                  {t('endCallOn')}
                </button>
              </>
            ) : (
              <button class={`small-btn ${hand ? 'accent' : ''}`} data-testid={`call-${identity}`} disabled={busy} onClick={() => void act(() => api.callOn(token, room, identity, true))}>
                {t('callOn')}
              </button>
            )}
          </span>
        ) : null}
      </div>
    </div>
  );
}

export function TeacherScreen({ session, first, dir, refresh }: ClassProps) {
  const [choice, setChoice] = useState<DeviceChoice>();
  const [token, setToken] = useState(first.token);
  const deck = useMemo(() => new SlideDeck(), []);
  const [, setDeckVersion] = useState(0);
  const [recording, setRecording] = useState<RecordingStatus | undefined>();
  const [mode, setMode] = useState<'lecture' | 'free'>('lecture');
  const [showChat, setShowChat] = useState(true);
  const fileInput = useRef<HTMLInputElement>(null);
  const slidePreview = useRef<HTMLDivElement>(null);
  const choiceRef = useRef<DeviceChoice>({});

  const live = useMemo(() => {
    let firstUse = true;
    return new Live({
      autoSubscribe: false,
      debugName: 'class',
      credentials: async () => {
        const tok = firstUse ? first : await refresh();
        firstUse = false;
        setToken(tok.token);
        return { url: serverUrl(tok.url), token: tok.token };
      },
      policy: (p, pub) => decide('teacher', { role: roleOf(p), calledOn: calledOn(p), kind: pub.kind === Track.Kind.Audio ? 'audio' : 'video', source: sourceName(pub.source) }),
      onJoined: async (l) => {
        const lp = l.room.localParticipant;
        const c = choiceRef.current;
        await lp.setCameraEnabled(true, { deviceId: c.camera, resolution: { width: 1280, height: 720, frameRate: 25 } }).catch((e: unknown) => toast(`${t('camera')}: ${errorMessage(e)}`, 'error'));
        await lp.setMicrophoneEnabled(true, { deviceId: c.mic }).catch((e: unknown) => toast(`${t('microphone')}: ${errorMessage(e)}`, 'error'));
        if (c.speaker) await l.room.switchActiveDevice('audiooutput', c.speaker).catch(() => undefined);
        if (deck.images.length > 0) await deck.publish(lp).catch(() => undefined);
      },
    });
  }, []);
  useSignal(live.version);

  useEffect(() => () => void live.leave(), []);
  useEffect(() => {
    if (live.phase !== 'connected') return;
    const poll = () =>
      api
        .recordings(token, session.room)
        .then((r) => setRecording(r.active[0]))
        .catch(() => undefined);
    void poll();
    const timer = setInterval(poll, 10_000);
    return () => clearInterval(timer);
  }, [live.phase, token]);
  useEffect(() => {
    const el = slidePreview.current;
    if (el && !el.contains(deck.canvas)) {
      deck.canvas.className = 'slide-canvas';
      el.appendChild(deck.canvas);
    }
  });

  if (!choice) {
    const start = (c: DeviceChoice) => {
      choiceRef.current = c;
      setChoice(c);
      void live.connect().catch((e: unknown) => toast(errorMessage(e), 'error'));
    };
    return <PreJoinPage title={`${session.subject} · ${t(courseType(session.course_type))} · ${timeRange(session)}`} startLabel={t('startClass')} onStart={start} />;
  }

  const room = live.room;
  const lp = room.localParticipant;
  const remotes = [...room.remoteParticipants.values()];
  const tiles = pointTiles(session.receivers, remotes);
  const someoneCalled = tiles.some((x) => x.participant && calledOn(x.participant));
  const hands = tiles.filter((x) => x.participant && handRaised(x.participant)).length;
  const micOn = lp.isMicrophoneEnabled;
  const camOn = lp.isCameraEnabled;
  const sharing = lp.isScreenShareEnabled;
  const ownCam = cameraOf(lp)?.videoTrack;
  const screenTrack = screenOf(lp)?.videoTrack;

  const toggleScreen = async () => {
    try {
      if (deck.published) {
        await deck.unpublish(lp);
      } else if (sharing) {
        await lp.setScreenShareEnabled(false);
      } else {
        await lp.setScreenShareEnabled(true, SCREEN_CAPTURE, SCREEN_PUBLISH);
      }
    } catch (e) {
      toast(`${t('shareScreen')}: ${(e as Error).message}`, 'error');
    }
    live.bump();
  };
  const loadSlides = async (files: FileList | null) => {
    if (!files || files.length === 0) return;
    try {
      await deck.load([...files]);
      if (sharing && !deck.published) await lp.setScreenShareEnabled(false);
      if (!deck.published) await deck.publish(lp);
    } catch (e) {
      toast(`${t('shareSlides')}: ${(e as Error).message}`, 'error');
    }
    setDeckVersion((n) => n + 1);
    live.bump();
  };
  const toggleRecording = async () => {
    try {
      if (recording) {
        await api.stopRecording(token, session.room);
        setRecording(undefined);
      } else {
        setRecording(await api.startRecording(token, session.room));
      }
    } catch (e) {
      const err = e as { status?: number; message: string };
      toast(err.status === 401 || err.status === 403 ? `${t('recordDenied')} (${err.message})` : err.message, 'error');
    }
  };
  // Before leaving: the teacher confirms, the teaching points hear that the class ended.
  const endClass = async () => {
    if (!confirm(t('confirmEndClass'))) return false;
    await live.sendControl({ type: 'class-ended', session: session.id }).catch(() => undefined);
    await deck.unpublish(lp).catch(() => undefined);
    toast(t('classEnded'), 'ok');
  };

  return (
    <div class="page class-page teacher-page" data-testid="teacher-console">
      <TopBar
        title={
          <span>
            <strong>{session.subject}</strong> · {t(courseType(session.course_type))} · {timeRange(session)} · {lp.name || dir.classroomName(session.master)}
          </span>
        }
      >
        {recording ? (
          <span class="rec-indicator" data-testid="rec-indicator">
            <i /> {t('recording')}
          </span>
        ) : null}
        {hands > 0 ? (
          <span class="chip chip-hand">
            <Icon name="hand" size={16} /> {hands}
          </span>
        ) : null}
        <QualityBadge quality={qualityOf(lp)} />
      </TopBar>
      <div class={`class-layout${showChat ? ' with-side' : ''}`}>
        <section class="points-area">
          <div class="area-head">
            <h2>
              {t('teachingPoints')} <span class="muted">{tiles.filter((x) => x.participant).length}/{tiles.length}</span>
            </h2>
            <div class="seg">
              <button
                class={mode === 'lecture' ? 'active' : ''}
                data-testid="mode-lecture"
                onClick={() =>
                  void api
                    .setMode(token, session.room, 'lecture')
                    .then(() => setMode('lecture'))
                    .catch((e: unknown) => toast(errorMessage(e), 'error'))
                }
              >
                {t('lectureMode')}
              </button>
              <button
                class={mode === 'free' ? 'active' : ''}
                data-testid="mode-free"
                onClick={() =>
                  void api
                    .setMode(token, session.room, 'free')
                    .then(() => setMode('free'))
                    .catch((e: unknown) => toast(errorMessage(e), 'error'))
                }
              >
                {t('freeMode')}
              </button>
            </div>
          </div>
          <div class={`points-grid n${Math.min(tiles.length, 9)}${someoneCalled ? ' has-called' : ''}`}>
            {tiles.map((x) => (
              <PointTile
                key={x.identity}
                identity={x.identity}
                p={x.participant}
                name={x.participant?.name || dir.classroomName(x.identity)}
                live={live}
                room={session.room}
                token={token}
                big={!!x.participant && calledOn(x.participant)}
              />
            ))}
          </div>
        </section>
        <aside class="side">
          <div class="self-view">
            <TileVideo track={camOn ? ownCam : undefined} mirror testid="own-camera" placeholder={t('cameraOn')} />
            <span class="tile-name">{lp.name || dir.classroomName(session.master)}</span>
          </div>
          <div class={`slide-panel${deck.published || screenTrack ? ' on' : ''}`}>
            <div class="slide-head">
              <strong>{t('slides')}</strong>
              {deck.images.length > 0 ? (
                <span class="row gap-s">
                  <button class="small-btn" onClick={() => (deck.go(-1), setDeckVersion((n) => n + 1))}>
                    {t('prevSlide')}
                  </button>
                  <span class="muted small" data-testid="slide-index">
                    {deck.index + 1}/{deck.images.length}
                  </span>
                  <button class="small-btn" data-testid="next-slide" onClick={() => (deck.go(1), setDeckVersion((n) => n + 1))}>
                    {t('nextSlide')}
                  </button>
                </span>
              ) : null}
            </div>
            <div class="slide-preview" ref={slidePreview} hidden={deck.images.length === 0 || !deck.published} />
            {screenTrack && !deck.published ? <VideoView track={screenTrack} fit="contain" testid="own-screen" /> : null}
            {deck.images.length === 0 && !screenTrack ? <div class="muted small pad">{t('noSlides')}</div> : null}
          </div>
          {showChat ? <Chat live={live} compact /> : null}
        </aside>
      </div>
      <footer class="controls">
        <button class={`ctl ${micOn ? '' : 'off'}`} data-testid="toggle-mic" onClick={() => void lp.setMicrophoneEnabled(!micOn).then(() => live.bump()).catch((e: unknown) => toast(errorMessage(e), 'error'))}>
          <Icon name={micOn ? 'mic' : 'micOff'} size={26} />
          <span>{t('micOn')}</span>
        </button>
        <button class={`ctl ${camOn ? '' : 'off'}`} data-testid="toggle-cam" onClick={() => void lp.setCameraEnabled(!camOn).then(() => live.bump()).catch((e: unknown) => toast(errorMessage(e), 'error'))}>
          <Icon name={camOn ? 'cam' : 'camOff'} size={26} />
          <span>{t('cameraOn')}</span>
        </button>
        <button class={`ctl ${sharing && !deck.published ? 'active' : ''}`} data-testid="share-screen" onClick={() => void toggleScreen()}>
          <Icon name="screen" size={26} />
          <span>{sharing && !deck.published ? t('stopShare') : t('shareScreen')}</span>
        </button>
        <button class={`ctl ${deck.published ? 'active' : ''}`} data-testid="share-slides" onClick={() => fileInput.current?.click()}>
          <Icon name="slides" size={26} />
          <span>{t('shareSlides')}</span>
        </button>
        <input ref={fileInput} type="file" accept="image/*" multiple hidden data-testid="slides-input" onChange={(e) => void loadSlides((e.target as HTMLInputElement).files)} />
        <button class={`ctl ${recording ? 'rec' : ''}`} data-testid="toggle-record" onClick={() => void toggleRecording()}>
          <Icon name={recording ? 'stop' : 'record'} size={26} />
          <span>{recording ? t('stopRecording') : t('record')}</span>
        </button>
        <button class={`ctl ${showChat ? 'active' : ''}`} data-testid="toggle-chat" onClick={() => setShowChat(!showChat)}>
          <Icon name="chat" size={26} />
          <span>{t('chat')}</span>
        </button>
        <span class="spacer" />
        <LeaveButton live={live} prepare={endClass} label={t('endClass')} testid="end-class" />
      </footer>
      <PhaseOverlay live={live} onRetry={() => void live.connect().catch(() => undefined)} />
    </div>
  );
}

