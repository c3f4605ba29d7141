// Research room (名师课堂): a gallery of members with the active speaker highlighted, screen or
// slide sharing on a stage, chat and hand raise. The dev-mode quick room uses it too.
import type { Participant } from 'livekit-client';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api } from '../api';
import { type DeviceChoice, PreJoinPage } from '../components/devices';
import { Icon } from '../components/icons';
import { SCREEN_CAPTURE, SCREEN_PUBLISH, SlideDeck } from '../components/slides';
import { initials, LeaveButton, TileVideo } from '../components/tiles';
import { Chat, PhaseOverlay, QualityBadge, TopBar, VideoView } from '../components/ui';
import { t } from '../i18n';
import { Live, cameraOf, micOf, qualityOf, screenOf, serverUrl } from '../live';
import { handRaised } from '../logic/participants';
import { courseType, timeRange } from '../logic/sessions';
import { useSignal } from '../store';
import { errorMessage, toast } from '../toast';
import type { ClassProps } from './class';

function Member({ p, speaking, self }: { p: Participant; speaking: boolean; self: boolean }) {
  const cam = cameraOf(p);
  const mic = micOf(p);
  const hand = handRaised(p);
  return (
    <div class={`tile member${speaking ? ' speaking' : ''}${hand ? ' hand' : ''}`} data-testid={`member-${p.identity}`} data-speaking={speaking ? 'true' : ''}>
      <TileVideo track={cam && !cam.isMuted ? cam.videoTrack : undefined} mirror={self} placeholder={initials(p)} />
      <div class="tile-top">
        {speaking ? <span class="chip chip-live">{t('activeSpeaker')}</span> : <span />}
        <QualityBadge quality={qualityOf(p)} />
      </div>
      {hand ? (
        <div class="hand-badge">
          <Icon name="hand" /> {t('handRaised')}
        </div>
      ) : null}
      <div class="tile-bottom">
        <span class="tile-name">
          <Icon name={mic && !mic.isMuted ? 'mic' : 'micOff'} size={16} /> {p.name || p.identity}
          {self ? ' ·' : ''}
        </span>
      </div>
    </div>
  );
}

export interface MeetingProps {
  title: string;
  credentials: () => Promise<{ url: string; token: string }>;
  /** Raises or lowers the hand (the classroom API); absent in the dev quick room. */
  hand?: (raised: boolean) => Promise<unknown>;
}

export function Meeting({ title, credentials, hand }: MeetingProps) {
  const [choice, setChoice] = useState<DeviceChoice>();
  const [showChat, setShowChat] = useState(true);
  const choiceRef = useRef<DeviceChoice>({});
  const deck = useMemo(() => new SlideDeck(), []);
  const fileInput = useRef<HTMLInputElement>(null);
  const live = useMemo(
    () =>
      new Live({
        autoSubscribe: true,
        adaptiveStream: true,
        debugName: 'class',
        credentials,
        onJoined: async (l) => {
          const lp = l.room.localParticipant;
          const c = choiceRef.current;
          await lp.setCameraEnabled(true, { deviceId: c.camera }).catch((e: unknown) => toast(`${t('camera')}: ${errorMessage(e)}`, 'error'));
          await lp.setMicrophoneEnabled(true, { deviceId: c.mic }).catch((e: unknown) => toast(`${t('microphone')}: ${errorMessage(e)}`, 'error'));
        },
      }),
    [],
  );
  useSignal(live.version);
  useEffect(() => () => void live.leave(), []);

  if (!choice) {
    const start = (c: DeviceChoice) => {
      choiceRef.current = c;
      setChoice(c);
      void live.connect().catch((e: unknown) => toast(errorMessage(e), 'error'));
    };
    return <PreJoinPage title={title} startLabel={t('enterClass')} onStart={start} />;
  }

  const room = live.room;
  const lp = room.localParticipant;
  const everyone: Participant[] = [lp, ...room.remoteParticipants.values()];
  const speakers = new Set(room.activeSpeakers.map((p) => p.identity));
  const sharer = everyone.find((p) => screenOf(p)?.videoTrack);
  const share = screenOf(sharer)?.videoTrack;
  const micOn = lp.isMicrophoneEnabled;
  const camOn = lp.isCameraEnabled;
  const myHand = handRaised(lp);

  const loadSlides = async (files: FileList | null) => {
    if (!files?.length) return;
    try {
      await deck.load([...files]);
      if (lp.isScreenShareEnabled && !deck.published) await lp.setScreenShareEnabled(false);
      if (!deck.published) await deck.publish(lp);
    } catch (e) {
      toast(`${t('shareSlides')}: ${errorMessage(e)}`, 'error');
    }
    live.bump();
  };
  const toggleScreen = async () => {
    try {
      if (deck.published) await deck.unpublish(lp);
      else await lp.setScreenShareEnabled(!lp.isScreenShareEnabled, SCREEN_CAPTURE, SCREEN_PUBLISH);
    } catch (e) {
      toast(`${t('shareScreen')}: ${(e as Error).message}`, 'error');
    }
    live.bump();
  };

  return (
    <div class="page class-page research-page" data-testid="research-room">
      <TopBar title={title}>
        <span class="chip">
          {everyone.length} {t('members')}
        </span>
        <QualityBadge quality={qualityOf(lp)} />
      </TopBar>
      <div class={`class-layout${showChat ? ' with-side' : ''}`}>
        <section class={`gallery-area${share ? ' has-stage' : ''}`}>
          {share ? (
            <div class="stage-main research-stage">
              <VideoView track={share} fit="contain" testid="share-video" />
              <span class="tile-name">
                <Icon name="screen" size={16} /> {sharer?.name || sharer?.identity}
              </span>
            </div>
          ) : null}
          <div class={`gallery n${Math.min(everyone.length, 9)}`} data-testid="gallery">
            {everyone.map((p) => (
              <Member key={p.identity} p={p} speaking={speakers.has(p.identity)} self={p === lp} />
            ))}
          </div>
        </section>
        {showChat ? (
          <aside class="side">
            <Chat live={live} />
          </aside>
        ) : null}
      </div>
      <footer class="controls">
        <button class={`ctl ${micOn ? '' : 'off'}`} onClick={() => void lp.setMicrophoneEnabled(!micOn).then(() => live.bump()).catch((e: unknown) => toast(errorMessage(e), 'error'))}>
          <Icon name={micOn ? 'mic' : 'micOff'} size={26} />
          <span>{t('micOn')}</span>
        </button>
        <button class={`ctl ${camOn ? '' : 'off'}`} onClick={() => void lp.setCameraEnabled(!camOn).then(() => live.bump()).catch((e: unknown) => toast(errorMessage(e), 'error'))}>
          <Icon name={camOn ? 'cam' : 'camOff'} size={26} />
          <span>{t('cameraOn')}</span>
        </button>
        <button class={`ctl ${lp.isScreenShareEnabled ? 'active' : ''}`} onClick={() => void toggleScreen()}>
          <Icon name="screen" size={26} />
          <span>{lp.isScreenShareEnabled ? t('stopShare') : t('shareScreen')}</span>
        </button>
        <button class={`ctl ${deck.published ? 'active' : ''}`} onClick={() => fileInput.current?.click()}>
          <Icon name="slides" size={26} />
          <span>{t('shareSlides')}</span>
        </button>
        <input
          ref={fileInput}
          type="file"
          accept="image/*"
          multiple
          hidden
          onChange={(e) => void loadSlides((e.target as HTMLInputElement).files)}
        />
        {hand ? (
          <button
            class={`ctl ${myHand ? 'active' : ''}`}
            data-testid="raise-hand"
            onClick={() => void hand(!myHand).catch((e: unknown) => toast(errorMessage(e), 'error'))}
          >
            <Icon name="hand" size={26} />
            <span>{myHand ? t('lowerHand') : t('raiseHand')}</span>
          </button>
        ) : null}
        <button class={`ctl ${showChat ? 'active' : ''}`} onClick={() => setShowChat(!showChat)}>
          <Icon name="chat" size={26} />
          <span>{t('chat')}</span>
        </button>
        <span class="spacer" />
        <LeaveButton live={live} prepare={() => deck.unpublish(lp).catch(() => undefined)} />
      </footer>
      <PhaseOverlay live={live} onRetry={() => void live.connect().catch(() => undefined)} />
    </div>
  );
}

export function ResearchScreen({ session, first, dir, refresh }: ClassProps) {
  const token = useRef(first.token);
  const firstUse = useRef(true);
  const credentials = async () => {
    const tok = firstUse.current ? first : await refresh();
    firstUse.current = false;
    token.current = tok.token;
    return { url: serverUrl(tok.url), token: tok.token };
  };
  const title = `${session.subject} · ${t(courseType(session.course_type))} · ${timeRange(session)} · ${dir.classroomName(session.master)}`;
  const hand = first.role === 'research' ? (raised: boolean) => api.hand(token.current, session.room, raised) : undefined;
  return <Meeting title={title} credentials={credentials} hand={hand} />;
}
