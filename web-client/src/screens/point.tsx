// Teaching-point screen (rural classroom, run by a local assistant): the teacher and the
// slides full-screen with a layout switch, the classroom's own camera, a big raise-hand
// button, a clear "called on, microphone live" state, automatic reconnection with a visible
// state, and a low-bandwidth mode (audio + slides) it suggests when the connection stays poor.
// With viewer set (broadcast receivers) it only watches.
import { type Participant, Track } from 'livekit-client';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api } from '../api';
import { type DeviceChoice, PreJoinPage } from '../components/devices';
import { Icon } from '../components/icons';
import { CameraTile, LeaveButton, TileVideo } from '../components/tiles';
import { Chat, PhaseOverlay, QualityBadge, TopBar, VideoView } from '../components/ui';
import { t } from '../i18n';
import { Live, cameraOf, qualityOf, screenOf, serverUrl, sourceName } from '../live';
import { LowBandwidthAdvisor, qualityName } from '../logic/lowbw';
import { calledOn, handRaised, roleOf } from '../logic/participants';
import { decide } from '../logic/policy';
import { courseType, timeRange } from '../logic/sessions';
import { navigate } from '../router';
import { useSignal } from '../store';
import { errorMessage, toast } from '../toast';
import type { ClassProps } from './class';

type Layout = 'slides' | 'teacher' | 'split';

/** TrackSource.MICROPHONE of the LiveKit protocol (livekit_models.proto). */
const MICROPHONE_SOURCE = 2;

/** micAllowed: the participant's permission lets it publish its microphone (called on, free discussion). */
function micAllowed(p: Participant): boolean {
  return !!p.permissions?.canPublishSources?.some((s) => Number(s) === MICROPHONE_SOURCE);
}

export function PointScreen({ session, first, dir, refresh, viewer = false }: ClassProps & { viewer?: boolean }) {
  const [choice, setChoice] = useState<DeviceChoice>();
  const [token, setToken] = useState(first.token);
  const [layout, setLayout] = useState<Layout>('slides');
  const [lowBw, setLowBw] = useState(false);
  const [suggest, setSuggest] = useState(false);
  const [showChat, setShowChat] = useState(false);
  const [ended, setEnded] = useState(false);
  const [handBusy, setHandBusy] = useState(false);
  const lowBwRef = useRef(false);
  const choiceRef = useRef<DeviceChoice>({});
  const advisor = useMemo(() => new LowBandwidthAdvisor(), []);

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
      policy: (p, pub) =>
        decide(
          viewer ? 'viewer' : 'point',
          { role: roleOf(p), calledOn: calledOn(p), kind: pub.kind === Track.Kind.Audio ? 'audio' : 'video', source: sourceName(pub.source) },
          { lowBandwidth: lowBwRef.current },
        ),
      onJoined: async (l) => {
        if (viewer) return;
        const lp = l.room.localParticipant;
        const c = choiceRef.current;
        await lp.setCameraEnabled(true, { deviceId: c.camera, resolution: { width: 1280, height: 720, frameRate: 20 } }).catch((e: unknown) => toast(`${t('camera')}: ${errorMessage(e)}`, 'error'));
        if (micAllowed(lp)) await lp.setMicrophoneEnabled(true, { deviceId: c.mic }).catch(() => undefined);
      },
    });
  }, []);
  useSignal(live.version);

  useEffect(() => {
    const offControl = live.onControl((msg) => {
      if (msg.type === 'class-ended') {
        setEnded(true);
        void live.leave();
      }
    });
    return () => {
      offControl();
      void live.leave();
    };
  }, []);

  // Called on: the server grants MICROPHONE; publish it. Call ended: the server unpublishes it.
  const lp = live.room.localParticipant;
  const mayTalk = !viewer && live.phase === 'connected' && micAllowed(lp);
  useEffect(() => {
    if (viewer || live.phase !== 'connected') return;
    if (mayTalk && !lp.isMicrophoneEnabled) void lp.setMicrophoneEnabled(true, { deviceId: choiceRef.current.mic }).then(() => live.bump()).catch((e: unknown) => toast(`${t('microphone')}: ${errorMessage(e)}`, 'error'));
    if (!mayTalk && lp.isMicrophoneEnabled) void lp.setMicrophoneEnabled(false).then(() => live.bump()).catch(() => undefined);
  }, [mayTalk, live.phase]);

  // Low-bandwidth advice from the server's connection quality.
  useEffect(() => {
    const timer = setInterval(() => {
      if (live.phase !== 'connected') return;
      const now = Date.now();
      advisor.update(qualityName(qualityOf(lp)), now);
      setSuggest(advisor.shouldSuggest(now));
    }, 1000);
    return () => clearInterval(timer);
  }, []);

  const setLowBandwidth = (on: boolean) => {
    lowBwRef.current = on;
    advisor.setActive(on);
    setLowBw(on);
    setSuggest(false);
    live.applyPolicy();
  };

  if (!choice && !viewer) {
    const start = (c: DeviceChoice) => {
      choiceRef.current = c;
      setChoice(c);
      void live.connect().catch((e: unknown) => toast(errorMessage(e), 'error'));
    };
    return <PreJoinPage title={`${session.subject} · ${t(courseType(session.course_type))} · ${timeRange(session)}`} startLabel={t('enterClass')} onStart={start} />;
  }
  if (viewer && live.phase === 'idle') {
    return (
      <div class="page">
        <TopBar back="/" title={`${session.subject} · ${timeRange(session)}`} />
        <main class="content narrow center">
          <button class="primary huge" data-testid="start" onClick={() => void live.connect().catch((e: unknown) => toast(errorMessage(e), 'error'))}>
            <Icon name="play" size={32} /> {t('enterClass')}
          </button>
        </main>
      </div>
    );
  }
  if (ended) {
    return (
      <div class="page">
        <TopBar back="/" />
        <main class="content narrow center">
          <div class="ended-card card" data-testid="class-ended">
            <Icon name="check" size={48} />
            <h1>{t('classEnded')}</h1>
            <button class="primary big" onClick={() => navigate('/')}>
              {t('home')}
            </button>
          </div>
        </main>
      </div>
    );
  }

  const remotes = [...live.room.remoteParticipants.values()];
  const teacher = remotes.find((p) => roleOf(p) === 'teacher');
  const teacherCam = cameraOf(teacher);
  const slidesPub = screenOf(teacher);
  const slides = slidesPub?.videoTrack;
  const teacherVideo = !lowBw && teacherCam?.videoTrack && !teacherCam.isMuted ? teacherCam.videoTrack : undefined;
  const called = remotes.filter((p) => calledOn(p) && roleOf(p) === 'teaching_point');
  const meCalled = calledOn(lp);
  const myHand = handRaised(lp);
  const ownCam = cameraOf(lp)?.videoTrack;
  const effLayout: Layout = slides ? layout : 'teacher';

  const raise = async () => {
    setHandBusy(true);
    try {
      await api.hand(token, session.room, !myHand);
    } catch (e) {
      toast((e as Error).message, 'error');
    } finally {
      setHandBusy(false);
    }
  };

  const teacherView = (
    <TileVideo
      track={teacherVideo}
      fit="contain"
      testid="teacher-video"
      label={t('teacher')}
      stage
      placeholder={teacher ? (lowBw ? t('lowBandwidthOn') : t('teacher')) : t('waitingTeacher')}
    />
  );
  const slidesView = slides ? <VideoView track={slides} fit="contain" testid="slides-video" label={t('slides')} /> : null;

  return (
    <div class={`page class-page point-page layout-${effLayout}${meCalled ? ' me-called' : ''}`} data-testid="point-screen">
      <TopBar
        title={
          <span>
            <strong>{session.subject}</strong> · {teacher?.name || dir.classroomName(session.master)} · {timeRange(session)}
          </span>
        }
      >
        {lowBw ? <span class="chip chip-warn">{t('lowBandwidth')}</span> : null}
        <QualityBadge quality={qualityOf(lp)} />
      </TopBar>
      {meCalled ? (
        <div class="called-banner" data-testid="called-on">
          <Icon name="mic" size={30} /> {t('youAreCalledOn')}
        </div>
      ) : null}
      {suggest ? (
        <div class="suggest-banner" data-testid="lowbw-suggest">
          <Icon name="alert" /> <span>{t('lowBandwidthSuggest')}</span>
          <button class="primary" onClick={() => setLowBandwidth(true)}>
            {t('switchNow')}
          </button>
          <button
            class="ghost"
            onClick={() => {
              advisor.dismiss(Date.now());
              setSuggest(false);
            }}
          >
            {t('later')}
          </button>
        </div>
      ) : null}
      <div class={`stage-wrap${showChat ? ' with-side' : ''}`}>
        <section class="stage">
          {effLayout === 'split' ? (
            <div class="split">
              <div class="stage-cell">{slidesView}</div>
              <div class="stage-cell">{teacherView}</div>
            </div>
          ) : (
            <>
              <div class="stage-main">{effLayout === 'slides' ? slidesView : teacherView}</div>
              {slides ? <div class="stage-pip">{effLayout === 'slides' ? teacherView : slidesView}</div> : null}
            </>
          )}
          {called.length > 0 ? (
            <div class="called-strip">
              {called.map((p) => (
                <CameraTile key={p.identity} p={p} showVideo={!lowBw} icon={<Icon name="mic" size={16} />} testid={`called-${p.identity}`} />
              ))}
            </div>
          ) : null}
          {!viewer ? (
            <div class="own-preview" data-testid="own-preview">
              <TileVideo track={ownCam} mirror testid="own-camera" placeholder={t('ownCamera')} />
              <span class="tile-name">
                {meCalled ? <Icon name="mic" size={14} /> : null} {t('ownCamera')}
              </span>
            </div>
          ) : null}
        </section>
        {showChat ? (
          <aside class="side">
            <Chat live={live} />
          </aside>
        ) : null}
      </div>
      <footer class="controls point-controls">
        {!viewer ? (
          <button
            class={`hand-btn${myHand ? ' raised' : ''}${meCalled ? ' talking' : ''}`}
            data-testid="raise-hand"
            data-raised={myHand ? 'true' : ''}
            disabled={handBusy || meCalled || live.phase !== 'connected'}
            onClick={() => void raise()}
          >
            <Icon name={meCalled ? 'mic' : 'hand'} size={34} />
            <span>{meCalled ? t('calledOn') : myHand ? t('lowerHand') : t('raiseHand')}</span>
          </button>
        ) : null}
        {myHand && !meCalled ? <span class="hand-note">{t('handUp')}</span> : null}
        <span class="spacer" />
        <div class="seg big-seg" role="group" aria-label="layout">
          <button class={layout === 'slides' ? 'active' : ''} data-testid="layout-slides" onClick={() => setLayout('slides')}>
            {t('layoutSlides')}
          </button>
          <button class={layout === 'teacher' ? 'active' : ''} data-testid="layout-teacher" onClick={() => setLayout('teacher')}>
            {t('layoutTeacher')}
          </button>
          <button class={layout === 'split' ? 'active' : ''} data-testid="layout-split" onClick={() => setLayout('split')}>
            {t('layoutSplit')}
          </button>
        </div>
        <button class={`ctl ${lowBw ? 'active' : ''}`} data-testid="toggle-lowbw" onClick={() => setLowBandwidth(!lowBw)}>
          <Icon name="leaf" size={26} />
          <span>{lowBw ? t('exitLowBandwidth') : t('lowBandwidth')}</span>
        </button>
        {!viewer ? (
          <button class={`ctl ${showChat ? 'active' : ''}`} data-testid="toggle-chat" onClick={() => setShowChat(!showChat)}>
            <Icon name="chat" size={26} />
            <span>{t('chat')}</span>
          </button>
        ) : null}
        <button class="ctl" data-testid="fullscreen" onClick={() => void document.documentElement.requestFullscreen?.().catch(() => undefined)}>
          <Icon name="expand" size={26} />
          <span>{t('fullscreen')}</span>
        </button>
        <LeaveButton live={live} />
      </footer>
      <PhaseOverlay live={live} onRetry={() => void live.connect().catch(() => undefined)} />
    </div>
  );
}
