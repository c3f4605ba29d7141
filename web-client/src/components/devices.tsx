// Pre-join device check: camera preview, microphone level, speaker test tone, device choice.
import { createLocalAudioTrack, createLocalVideoTrack, type LocalAudioTrack, type LocalVideoTrack, Room } from 'livekit-client';
import { useEffect, useRef, useState } from 'preact/hooks';
import { t } from '../i18n';
import { Icon } from './icons';
import { TopBar, VideoView } from './ui';

export interface DeviceChoice {
  camera?: string;
  mic?: string;
  speaker?: string;
}

type Kind = 'videoinput' | 'audioinput' | 'audiooutput';

/**
 * MicLevel shows the microphone's peak level. Firefox keeps an AudioContext made outside a
 * click suspended (the meter would stay at zero, as if the microphone were dead), so while it
 * is suspended a button asks for the tap that starts it.
 */
function MicLevel({ track }: { track?: LocalAudioTrack }) {
  const [level, setLevel] = useState(0);
  const [suspended, setSuspended] = useState(false);
  const ctxRef = useRef<AudioContext>();
  useEffect(() => {
    if (!track) return;
    const Ctx = window.AudioContext || (window as unknown as { webkitAudioContext: typeof AudioContext }).webkitAudioContext;
    const ctx = new Ctx();
    ctxRef.current = ctx;
    ctx.onstatechange = () => setSuspended(ctx.state === 'suspended');
    setSuspended(ctx.state === 'suspended');
    const src = ctx.createMediaStreamSource(new MediaStream([track.mediaStreamTrack]));
    const an = ctx.createAnalyser();
    an.fftSize = 512;
    src.connect(an);
    const buf = new Uint8Array(an.fftSize);
    const timer = setInterval(() => {
      an.getByteTimeDomainData(buf);
      let peak = 0;
      for (const v of buf) peak = Math.max(peak, Math.abs(v - 128));
      setLevel(Math.min(1, peak / 64));
    }, 100);
    return () => {
      clearInterval(timer);
      ctx.onstatechange = null;
      ctxRef.current = undefined;
      void ctx.close();
    };
  }, [track]);
  return (
    <>
      <div class="meter" data-testid="mic-level" data-level={level.toFixed(2)}>
        {Array.from({ length: 16 }, (_, i) => (
          <i class={i / 16 < level ? 'on' : ''} />
        ))}
      </div>
      {suspended ? (
        <button class="secondary" type="button" data-testid="mic-test" onClick={() => void ctxRef.current?.resume().catch(() => undefined)}>
          <Icon name="mic" size={18} /> {t('testMic')}
        </button>
      ) : null}
    </>
  );
}

async function testTone(speaker?: string): Promise<void> {
  const ctx = new AudioContext();
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.frequency.value = 660;
  gain.gain.setValueAtTime(0.0001, ctx.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.3, ctx.currentTime + 0.05);
  gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.8);
  const sink = ctx as AudioContext & { setSinkId?: (id: string) => Promise<void> };
  if (speaker && sink.setSinkId) await sink.setSinkId(speaker).catch(() => undefined);
  osc.connect(gain).connect(ctx.destination);
  osc.start();
  osc.stop(ctx.currentTime + 0.85);
  setTimeout(() => void ctx.close(), 1200);
}

export function DeviceCheck({ onStart, startLabel, audio = true }: { onStart: (c: DeviceChoice) => void; startLabel: string; audio?: boolean }) {
  const [devices, setDevices] = useState<Record<Kind, MediaDeviceInfo[]>>({ videoinput: [], audioinput: [], audiooutput: [] });
  const [choice, setChoice] = useState<DeviceChoice>({});
  const [video, setVideo] = useState<LocalVideoTrack>();
  const [mic, setMic] = useState<LocalAudioTrack>();
  const [error, setError] = useState('');
  const tracks = useRef<{ v?: LocalVideoTrack; a?: LocalAudioTrack }>({});

  useEffect(() => {
    let stop = false;
    void (async () => {
      try {
        const v = await createLocalVideoTrack({ deviceId: choice.camera, resolution: { width: 1280, height: 720 } });
        if (stop) return v.stop();
        tracks.current.v?.stop();
        tracks.current.v = v;
        setVideo(v);
      } catch (e) {
        setError(`${t('deviceError')}: ${(e as Error).message}`);
      }
    })();
    return () => {
      stop = true;
    };
  }, [choice.camera]);

  useEffect(() => {
    if (!audio) return;
    let stop = false;
    void (async () => {
      try {
        const a = await createLocalAudioTrack({ deviceId: choice.mic });
        if (stop) return a.stop();
        tracks.current.a?.stop();
        tracks.current.a = a;
        setMic(a);
      } catch (e) {
        setError(`${t('deviceError')}: ${(e as Error).message}`);
      }
    })();
    return () => {
      stop = true;
    };
  }, [choice.mic, audio]);

  // The device list, again once the camera is open (labels need the permission). Stopping the
  // preview belongs to unmounting only: a cleanup here would stop the camera and microphone
  // the moment the preview starts (Firefox then shows nothing, Chromium a frozen frame).
  useEffect(() => {
    const load = async () => {
      const out = { videoinput: [], audioinput: [], audiooutput: [] } as Record<Kind, MediaDeviceInfo[]>;
      for (const k of Object.keys(out) as Kind[]) out[k] = await Room.getLocalDevices(k, false).catch(() => []);
      setDevices(out);
    };
    void load();
    const onChange = () => void load();
    navigator.mediaDevices?.addEventListener?.('devicechange', onChange);
    return () => navigator.mediaDevices?.removeEventListener?.('devicechange', onChange);
  }, [video !== undefined]);
  useEffect(
    () => () => {
      tracks.current.v?.stop();
      tracks.current.a?.stop();
    },
    [],
  );

  // A select shows the device chosen, else the one the preview opened (else the first): with
  // value "" matching no option, browsers showed an empty box.
  const inUse: DeviceChoice = {
    camera: video?.mediaStreamTrack.getSettings().deviceId,
    mic: mic?.mediaStreamTrack.getSettings().deviceId,
  };
  const shown = (kind: Kind, key: keyof DeviceChoice): string => {
    const list = devices[kind];
    for (const id of [choice[key], inUse[key]]) if (id && list.some((d) => d.deviceId === id)) return id;
    return list[0]?.deviceId ?? '';
  };
  const select = (kind: Kind, key: keyof DeviceChoice, label: string, icon: string) => (
    <label class="field">
      <span class="field-label">
        <Icon name={icon} size={18} /> {label}
      </span>
      <select data-testid={`select-${key}`} value={shown(kind, key)} onChange={(e) => setChoice({ ...choice, [key]: (e.target as HTMLSelectElement).value || undefined })}>
        {devices[kind].length === 0 ? <option value="">{t('noDevice')}</option> : null}
        {devices[kind].map((d, i) => (
          <option value={d.deviceId}>{d.label || `${label} ${i + 1}`}</option>
        ))}
      </select>
    </label>
  );

  return (
    <div class="device-check card" data-testid="device-check">
      <h2>{t('deviceCheck')}</h2>
      <div class="device-grid">
        <div class="device-preview">
          <VideoView track={video} mirror testid="preview-video" />
        </div>
        <div class="device-fields">
          {select('videoinput', 'camera', t('camera'), 'cam')}
          {audio ? select('audioinput', 'mic', t('microphone'), 'mic') : null}
          {audio ? (
            <div class="field">
              <span class="field-label">{t('micLevel')}</span>
              <MicLevel track={mic} />
            </div>
          ) : null}
          {audio && devices.audiooutput.length > 0 ? select('audiooutput', 'speaker', t('speaker'), 'speaker') : null}
          {audio ? (
            <button class="secondary" type="button" onClick={() => void testTone(choice.speaker)}>
              <Icon name="speaker" size={18} /> {t('testSpeaker')}
            </button>
          ) : null}
          {error ? <div class="error-text">{error}</div> : null}
          <button
            class="primary big"
            data-testid="start"
            onClick={() => {
              tracks.current.v?.stop();
              tracks.current.a?.stop();
              onStart(choice);
            }}
          >
            {startLabel}
          </button>
        </div>
      </div>
    </div>
  );
}

/** The page before a live screen: a top bar back to the sessions list and the device check. */
export function PreJoinPage({ title, startLabel, onStart }: { title: string; startLabel: string; onStart: (c: DeviceChoice) => void }) {
  return (
    <div class="page">
      <TopBar back="/" title={title} />
      <main class="content">
        <DeviceCheck startLabel={startLabel} onStart={onStart} />
      </main>
    </div>
  );
}
