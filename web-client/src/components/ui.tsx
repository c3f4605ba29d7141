// Shared pieces of the screens: the top bar, video views, quality badges, chat, toasts.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { Track } from 'livekit-client';
import { auth, logOut } from '../auth';
import { lang, setLang, t } from '../i18n';
import type { Live } from '../live';
import { navigate } from '../router';
import { useSignal } from '../store';
import { toasts } from '../toast';
import { Icon } from './icons';

export function TopBar({ title, children, back }: { title?: ComponentChildren; children?: ComponentChildren; back?: string }) {
  const l = useSignal(lang);
  const a = useSignal(auth);
  return (
    <header class="topbar">
      {back ? (
        <button class="icon-btn" onClick={() => navigate(back)} aria-label={t('back')} title={t('back')}>
          <Icon name="back" />
        </button>
      ) : null}
      <a
        class="brand"
        href="/"
        onClick={(e) => {
          e.preventDefault();
          navigate('/');
        }}
      >
        <span class="logo">课</span>
        <span class="brand-name">{t('app')}</span>
      </a>
      {title ? <div class="topbar-title">{title}</div> : <div class="topbar-title" />}
      <div class="topbar-right">
        {children}
        <button class="ghost" data-testid="lang" onClick={() => setLang(l === 'zh' ? 'en' : 'zh')} title="中文 / English">
          <Icon name="globe" size={18} /> {t('language')}
        </button>
        {a ? (
          <button
            class="ghost"
            data-testid="sign-out"
            onClick={() => void logOut().then(() => navigate('/'))}
          >
            <Icon name="logout" size={18} /> {t('signOut')}
          </button>
        ) : null}
      </div>
    </header>
  );
}

/**
 * VideoView attaches a video track to a <video> element while mounted. A remote track the
 * server paused for a weak downlink (stream state paused: the voice keeps its room) gets an
 * overlay saying so over the frozen picture; it goes when the video resumes.
 */
export function VideoView({ track, fit = 'cover', mirror = false, testid, label }: { track?: Track; fit?: 'cover' | 'contain'; mirror?: boolean; testid?: string; label?: string }) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el || !track) return;
    track.attach(el);
    return () => {
      track.detach(el);
    };
  }, [track, ref.current]);
  const paused = track?.streamState === Track.StreamState.Paused;
  return (
    <>
      <video
        ref={ref}
        class={`video fit-${fit}${mirror ? ' mirror' : ''}`}
        data-testid={testid}
        data-track={track?.sid ?? ''}
        data-stream-state={track?.streamState ?? ''}
        aria-label={label}
        autoplay
        playsInline
        muted
      />
      {paused ? (
        <div class="video-paused" data-testid="video-paused" role="status">
          {t('videoPaused')}
        </div>
      ) : null}
    </>
  );
}

const qualityLevel: Record<string, number> = { excellent: 3, good: 2, poor: 1, lost: 0, unknown: -1 };

export function QualityBadge({ quality }: { quality: string }) {
  const n = qualityLevel[quality] ?? -1;
  return (
    <span class={`quality q-${quality}`} data-quality={quality} title={t(`quality_${quality}` as 'quality_good')}>
      <span class="bars">
        {[1, 2, 3].map((i) => (
          <i class={i <= n ? 'on' : ''} style={{ height: `${4 + i * 4}px` }} />
        ))}
      </span>
      <span class="quality-text">{t(`quality_${quality}` as 'quality_good')}</span>
    </span>
  );
}

export function Chat({ live, compact = false }: { live: Live; compact?: boolean }) {
  useSignal(live.version);
  const [text, setText] = useState('');
  const list = useRef<HTMLDivElement>(null);
  useEffect(() => {
    list.current?.scrollTo(0, list.current.scrollHeight);
  }, [live.chat.length]);
  const send = (e: Event) => {
    e.preventDefault();
    const v = text.trim();
    if (!v) return;
    setText('');
    void live.sendChat(v).catch((err) => console.warn('chat', err));
  };
  return (
    <div class={`chat${compact ? ' compact' : ''}`} data-testid="chat">
      <div class="chat-list" ref={list}>
        {live.chat.length === 0 ? <div class="muted small center pad">{t('chat')}</div> : null}
        {live.chat.map((m) => (
          <div class={`chat-msg${m.self ? ' self' : ''}`} key={m.id}>
            <div class="chat-from">{m.fromName}</div>
            <div class="chat-text">{m.text}</div>
          </div>
        ))}
      </div>
      <form class="chat-form" onSubmit={send}>
        <input value={text} onInput={(e) => setText((e.target as HTMLInputElement).value)} placeholder={t('chatPlaceholder')} maxLength={500} />
        <button type="submit" class="primary">
          {t('send')}
        </button>
      </form>
    </div>
  );
}

export function Toasts() {
  const list = useSignal(toasts);
  return (
    <div class="toasts" role="status" aria-live="polite">
      {list.map((x) => (
        <div class={`toast toast-${x.kind}`} key={x.id}>
          {x.text}
        </div>
      ))}
    </div>
  );
}

/** Banner over a class screen for connection phases. */
export function PhaseOverlay({ live, onRetry }: { live: Live; onRetry?: () => void }) {
  useSignal(live.version);
  if (live.phase === 'reconnecting')
    return (
      <div class="phase-overlay" data-testid="reconnecting">
        <div class="spinner" />
        <div>{t('reconnecting')}</div>
      </div>
    );
  if (live.phase === 'connecting')
    return (
      <div class="phase-overlay soft">
        <div class="spinner" />
        <div>{t('connecting')}</div>
      </div>
    );
  if (live.phase === 'failed')
    return (
      <div class="phase-overlay">
        <div>
          {t('error')}: {live.error}
        </div>
        {onRetry ? (
          <button class="primary big" onClick={onRetry}>
            {t('retry')}
          </button>
        ) : null}
      </div>
    );
  return null;
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}
