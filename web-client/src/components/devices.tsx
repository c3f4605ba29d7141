// Pre-join device check: camera preview, microphone level, speaker test tone, device choice.
import { createLocalAudioTrack, createLocalVideoTrack, type LocalAudioTrack, type LocalVideoTrack, Room } from 'livekit-client';
import { useEffect, useRef, useState } from 'preact/hooks';
import { t } from '../i18n';
import { Icon } from './icons';
import { VideoView } from './ui';

export interface DeviceChoice {
  camera?: string;
  mic?: string;
  speaker?: string;
}

type Kind = 'videoinput' | 'audioinput' | 'audiooutput';

function MicLevel({ track }: { track?: LocalAudioTrack }) {
  const [level, setLevel] = useState(0);
  useEffect(() => {
    if (!track) return;
    const Ctx = window.AudioContext || (window as unknown as { webkitAudioContext: typeof AudioContext }).webkitAudioContext;
    const ctx = new Ctx();
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
      void ctx.close();
    };
  }, [track]);
  return (
    <div class="meter" data-testid="mic-level" data-level={level.toFixed(2)}>
      {Array.from({ length: 16 }, (_, i) => (
        <i class={i / 16 < level ? 'on' : ''} />
      ))}
    </div>
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
    (async () => {
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
    (async () => {
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

  useEffect(() => {
    const load = async () => {
      const out = { videoinput: [], audioinput: [], audiooutput: [] } as Record<Kind, MediaDeviceInfo[]>;
      for (const k of Object.keys(out) as Kind[]) out[k] = await Room.getLocalDevices(k, false).catch(() => []);
      setDevices(out);
    };
    void load();
    navigator.mediaDevices?.addEventListener?.('devicechange', load);
    return () => {
      navigator.mediaDevices?.removeEventListener?.('devicechange', load);
      tracks.current.v?.stop();
      tracks.current.a?.stop();
    };
  }, [video !== undefined]);

  const select = (kind: Kind, key: keyof DeviceChoice, label: string, icon: string) => (
    <label class="field">
      <span class="field-label">
        <Icon name={icon} size={18} /> {label}
      </span>
      <select value={choice[key] ?? ''} onChange={(e) => setChoice({ ...choice, [key]: (e.target as HTMLSelectElement).value || undefined })}>
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
