// Live wraps a livekit-client Room for the class screens: connection state with a visible
// "reconnecting" phase and automatic rejoin after a full disconnection, the subscription
// policy (logic/policy.ts), remote audio playback, chat and control messages over text
// streams, and a version signal the screens re-render on.
import {
  ConnectionQuality,
  ConnectionState,
  DisconnectReason,
  type Participant,
  RemoteParticipant,
  RemoteTrackPublication,
  Room,
  RoomEvent,
  type RoomOptions,
  Track,
  VideoPresets,
  VideoQuality,
} from 'livekit-client';
import { type Decision, type Layer } from './logic/policy';
import { signal } from './store';

export interface ChatMessage {
  id: string;
  from: string;
  fromName: string;
  text: string;
  at: number;
  self: boolean;
}

export interface LiveOptions {
  autoSubscribe: boolean;
  adaptiveStream?: boolean;
  /** Decides remote subscriptions when autoSubscribe is off. */
  policy?: (p: RemoteParticipant, pub: RemoteTrackPublication) => Decision;
  /** Fetches a fresh URL and token for a rejoin after a full disconnection. */
  credentials: () => Promise<{ url: string; token: string }>;
  /** Called after every (re)join, to publish local tracks again. */
  onJoined?: (live: Live) => void | Promise<void>;
  /** Plays remote audio (default true). */
  playAudio?: boolean;
  /** A name for window.__sanke (tests and debugging). */
  debugName?: string;
}

export const CHAT_TOPIC = 'lk.chat';
export const CONTROL_TOPIC = 'sanke.control';

/** The websocket URL of this server (ws:// or wss:// of the page's origin). */
export function serverUrl(fromToken?: string): string {
  if (fromToken) return fromToken;
  const l = globalThis.location;
  return `${l.protocol === 'https:' ? 'wss' : 'ws'}://${l.host}`;
}

const layerQuality: Record<Layer, VideoQuality> = { low: VideoQuality.LOW, medium: VideoQuality.MEDIUM, high: VideoQuality.HIGH };

/** Publishing defaults: camera 720p with simulcast 180p/360p; screen share tuned for text. */
export function roomOptions(adaptiveStream: boolean): RoomOptions {
  return {
    adaptiveStream,
    dynacast: true,
    videoCaptureDefaults: { resolution: VideoPresets.h720.resolution },
    publishDefaults: {
      simulcast: true,
      videoSimulcastLayers: [VideoPresets.h180, VideoPresets.h360],
      videoEncoding: VideoPresets.h720.encoding,
      screenShareEncoding: { maxBitrate: 2_000_000, maxFramerate: 5 },
      screenShareSimulcastLayers: [],
      dtx: true,
      red: true,
    },
    audioCaptureDefaults: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  };
}

type DebugWindow = { __sanke?: Record<string, Live> };

export class Live {
  readonly room: Room;
  /** Increments on every change the screens show. */
  readonly version = signal(0);
  phase: 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'ended' | 'failed' = 'idle';
  error = '';
  endReason: DisconnectReason | undefined;
  chat: ChatMessage[] = [];
  private left = false;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private audio: HTMLDivElement | undefined;
  private controlHandlers = new Set<(msg: Record<string, unknown>, from: string) => void>();

  constructor(private opts: LiveOptions) {
    this.room = new Room(roomOptions(opts.adaptiveStream ?? false));
    const bump = () => this.bump();
    const r = this.room;
    for (const ev of [
      RoomEvent.ParticipantConnected,
      RoomEvent.ParticipantDisconnected,
      RoomEvent.TrackSubscribed,
      RoomEvent.TrackUnsubscribed,
      RoomEvent.TrackMuted,
      RoomEvent.TrackUnmuted,
      RoomEvent.LocalTrackPublished,
      RoomEvent.LocalTrackUnpublished,
      RoomEvent.ConnectionQualityChanged,
      RoomEvent.ActiveSpeakersChanged,
      RoomEvent.ParticipantPermissionsChanged,
      RoomEvent.RoomMetadataChanged,
      RoomEvent.ParticipantNameChanged,
      RoomEvent.TrackStreamStateChanged,
    ]) {
      r.on(ev, bump);
    }
    r.on(RoomEvent.TrackPublished, () => this.applyPolicy());
    r.on(RoomEvent.ParticipantAttributesChanged, () => this.applyPolicy());
    r.on(RoomEvent.TrackUnpublished, bump);
    r.on(RoomEvent.TrackSubscribed, (track) => {
      if (track.kind === Track.Kind.Audio && this.opts.playAudio !== false) {
        const el = track.attach();
        el.dataset.participant = track.sid ?? '';
        this.audioBox().appendChild(el);
      }
    });
    r.on(RoomEvent.TrackUnsubscribed, (track) => {
      if (track.kind === Track.Kind.Audio) track.detach().forEach((el) => el.remove());
    });
    r.on(RoomEvent.Reconnecting, () => this.setPhase('reconnecting'));
    r.on(RoomEvent.SignalReconnecting, () => this.setPhase('reconnecting'));
    r.on(RoomEvent.Reconnected, () => {
      this.setPhase('connected');
      this.applyPolicy();
    });
    r.on(RoomEvent.Disconnected, (reason) => this.onDisconnected(reason));
    // A stream cut off before its end (the sender left) is dropped with a warning.
    r.registerTextStreamHandler(CHAT_TOPIC, (reader, info) => {
      reader
        .readAll()
        .then((text) => {
          const p = r.getParticipantByIdentity(info.identity);
          this.addChat({ id: reader.info.id, from: info.identity, fromName: p?.name || info.identity, text, at: Date.now(), self: false });
        })
        .catch((e: unknown) => console.warn('chat stream', e));
    });
    r.registerTextStreamHandler(CONTROL_TOPIC, (reader, info) => {
      reader
        .readAll()
        .then((text) => {
          let msg: unknown;
          try {
            msg = JSON.parse(text);
          } catch {
            return; // ignore malformed control messages
          }
          if (typeof msg !== 'object' || msg === null) return;
          for (const h of this.controlHandlers) h(msg as Record<string, unknown>, info.identity);
        })
        .catch((e: unknown) => console.warn('control stream', e));
    });
    if (opts.debugName && typeof window !== 'undefined') {
      const w = window as unknown as DebugWindow;
      w.__sanke = w.__sanke ?? {};
      w.__sanke[opts.debugName] = this;
    }
  }

  private audioBox(): HTMLDivElement {
    if (!this.audio) {
      this.audio = document.createElement('div');
      this.audio.className = 'audio-sink';
      this.audio.hidden = true;
      document.body.appendChild(this.audio);
    }
    return this.audio;
  }

  bump(): void {
    this.version.set(this.version.get() + 1);
  }

  private setPhase(p: Live['phase']): void {
    this.phase = p;
    this.bump();
  }

  private addChat(m: ChatMessage): void {
    this.chat = [...this.chat.slice(-199), m];
    this.bump();
  }

  onControl(fn: (msg: Record<string, unknown>, from: string) => void): () => void {
    this.controlHandlers.add(fn);
    return () => this.controlHandlers.delete(fn);
  }

  async connect(): Promise<void> {
    this.left = false;
    this.setPhase(this.phase === 'reconnecting' ? 'reconnecting' : 'connecting');
    try {
      const { url, token } = await this.opts.credentials();
      await this.room.connect(url, token, { autoSubscribe: this.opts.autoSubscribe });
    } catch (e) {
      if (this.left) return;
      this.error = (e as Error).message;
      // The first join failing is shown; a rejoin keeps trying.
      if (this.phase === 'reconnecting') {
        this.scheduleRejoin();
        return;
      }
      this.setPhase('failed');
      throw e;
    }
    this.error = '';
    this.setPhase('connected');
    this.applyPolicy();
    try {
      await this.room.startAudio();
    } catch {
      // needs a user gesture; the screens offer a button when room.canPlaybackAudio is false
    }
    await this.opts.onJoined?.(this);
    this.bump();
  }

  private onDisconnected(reason?: DisconnectReason): void {
    if (this.left) return;
    this.endReason = reason;
    switch (reason) {
      case DisconnectReason.CLIENT_INITIATED:
      case DisconnectReason.DUPLICATE_IDENTITY:
      case DisconnectReason.PARTICIPANT_REMOVED:
      case DisconnectReason.ROOM_DELETED:
      case DisconnectReason.ROOM_CLOSED:
        this.setPhase('ended');
        return;
    }
    // Network loss, server restart, migration: keep trying to rejoin.
    this.setPhase('reconnecting');
    this.scheduleRejoin();
  }

  private scheduleRejoin(): void {
    clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      if (!this.left) void this.connect().catch(() => undefined);
    }, 2000);
  }

  /** applyPolicy (un)subscribes the remote tracks as the policy says. */
  applyPolicy(): void {
    const policy = this.opts.policy;
    if (policy) {
      for (const p of this.room.remoteParticipants.values()) {
        for (const pub of p.trackPublications.values()) {
          const d = policy(p, pub);
          if (pub.isSubscribed !== d.subscribe) pub.setSubscribed(d.subscribe);
          if (d.subscribe && d.layer && pub.kind === Track.Kind.Video) pub.setVideoQuality(layerQuality[d.layer]);
        }
      }
    }
    this.bump();
  }

  sendChat(text: string): Promise<void> {
    const lp = this.room.localParticipant;
    this.addChat({ id: `${Date.now()}-${Math.random()}`, from: lp.identity, fromName: lp.name || lp.identity, text, at: Date.now(), self: true });
    return lp.sendText(text, { topic: CHAT_TOPIC }).then(() => undefined);
  }

  sendControl(msg: Record<string, unknown>): Promise<void> {
    return this.room.localParticipant.sendText(JSON.stringify(msg), { topic: CONTROL_TOPIC }).then(() => undefined);
  }

  async leave(): Promise<void> {
    this.left = true;
    clearTimeout(this.retry);
    await this.room.disconnect();
    this.audio?.remove();
    this.audio = undefined;
    this.setPhase('ended');
  }
}

/** qualityOf returns a participant's connection quality as a string. */
export function qualityOf(p: Participant | undefined): string {
  if (!p) return 'unknown';
  const q = p.connectionQuality;
  return q === ConnectionQuality.Unknown ? 'unknown' : q;
}

/** connected is true once the room is connected. */
export function isConnected(live: Live): boolean {
  return live.room.state === ConnectionState.Connected;
}

/** Publication helpers. */
export function cameraOf(p: Participant | undefined) {
  return p?.getTrackPublication(Track.Source.Camera);
}
export function screenOf(p: Participant | undefined) {
  return p?.getTrackPublication(Track.Source.ScreenShare);
}
export function micOf(p: Participant | undefined) {
  return p?.getTrackPublication(Track.Source.Microphone);
}

/** sourceName maps a Track.Source to the policy's names. */
export function sourceName(s: Track.Source): 'camera' | 'microphone' | 'screen_share' | 'screen_share_audio' | 'unknown' {
  switch (s) {
    case Track.Source.Camera:
      return 'camera';
    case Track.Source.Microphone:
      return 'microphone';
    case Track.Source.ScreenShare:
      return 'screen_share';
    case Track.Source.ScreenShareAudio:
      return 'screen_share_audio';
    default:
      return 'unknown';
  }
}
