// The blocks every class screen repeats: a video or, without one, a placeholder in its place;
// a small named tile of a participant's camera; and the red button that leaves the call.
import type { ComponentChildren } from 'preact';
import type { Participant, Track } from 'livekit-client';
import { t } from '../i18n';
import type { Live } from '../live';
import { cameraOf } from '../live';
import { navigate } from '../router';
import { Icon } from './icons';
import { VideoView } from './ui';

/** initials stands for a participant without a picture: the first two letters of its name. */
export function initials(p: Participant): string {
  return (p.name || p.identity).slice(0, 2);
}

/**
 * TileVideo shows track when there is one, and the placeholder (a name, a state) in its place
 * otherwise; stage selects the stage's larger placeholder.
 */
export function TileVideo({
  track,
  placeholder,
  fit,
  mirror,
  testid,
  label,
  stage = false,
}: {
  track?: Track;
  placeholder: ComponentChildren;
  fit?: 'cover' | 'contain';
  mirror?: boolean;
  testid?: string;
  label?: string;
  stage?: boolean;
}) {
  if (track) return <VideoView track={track} fit={fit} mirror={mirror} testid={testid} label={label} />;
  return <div class={stage ? 'stage-placeholder' : 'tile-placeholder'}>{placeholder}</div>;
}

/**
 * CameraTile is a participant's camera in a small named tile (the teaching points called on,
 * those on the supervisors' wall); showVideo false leaves only its initials (low bandwidth).
 */
export function CameraTile({ p, icon, showVideo = true, testid }: { p: Participant; icon?: ComponentChildren; showVideo?: boolean; testid?: string }) {
  const video = showVideo ? cameraOf(p)?.videoTrack : undefined;
  return (
    <div class="called-tile" data-testid={testid}>
      <TileVideo track={video} placeholder={initials(p)} />
      <span class="tile-name">
        {icon}
        {icon ? ' ' : ''}
        {p.name || p.identity}
      </span>
    </div>
  );
}

/**
 * LeaveButton leaves the call and goes home. prepare runs first (unpublish slides, tell the
 * others); when it returns false the button does nothing (e.g. the teacher did not confirm).
 */
export function LeaveButton({
  live,
  prepare,
  label = t('leave'),
  testid = 'leave',
}: {
  live: Live;
  prepare?: () => Promise<boolean | void>;
  label?: string;
  testid?: string;
}) {
  const leave = async () => {
    if ((await prepare?.()) === false) return;
    await live.leave();
    navigate('/');
  };
  return (
    <button class="ctl danger" data-testid={testid} onClick={() => void leave()}>
      <Icon name="end" size={26} />
      <span>{label}</span>
    </button>
  );
}
