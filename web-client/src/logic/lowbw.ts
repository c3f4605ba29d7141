// Low-bandwidth advice for the teaching-point screen: when the connection quality the server
// reports (connection_quality) stays poor, the screen suggests switching to audio + slides.

export type Quality = 'excellent' | 'good' | 'poor' | 'lost' | 'unknown';

export interface AdvisorOptions {
  /** How long the quality must stay poor or lost before the advice (default 15 s). */
  poorForMs?: number;
  /** After the advice is dismissed, how long before it may come again (default 2 min). */
  snoozeMs?: number;
}

/**
 * LowBandwidthAdvisor is fed quality updates with their time and says when to suggest the
 * low-bandwidth mode. One good (or excellent) report resets the poor streak; unknown reports
 * are ignored.
 */
export class LowBandwidthAdvisor {
  private poorSince: number | undefined;
  private snoozedUntil = 0;
  private readonly poorForMs: number;
  private readonly snoozeMs: number;
  active = false;

  constructor(opts: AdvisorOptions = {}) {
    this.poorForMs = opts.poorForMs ?? 15_000;
    this.snoozeMs = opts.snoozeMs ?? 120_000;
  }

  /** update records a quality report at time now (ms). */
  update(q: Quality, now: number): void {
    if (q === 'unknown') return;
    if (q === 'poor' || q === 'lost') {
      if (this.poorSince === undefined) this.poorSince = now;
    } else {
      this.poorSince = undefined;
    }
  }

  /** shouldSuggest: the quality has been poor for long enough, the mode is off, not snoozed. */
  shouldSuggest(now: number): boolean {
    return !this.active && this.poorSince !== undefined && now - this.poorSince >= this.poorForMs && now >= this.snoozedUntil;
  }

  /** dismiss: the user said "not now". */
  dismiss(now: number): void {
    this.snoozedUntil = now + this.snoozeMs;
    this.poorSince = undefined;
  }

  setActive(on: boolean): void {
    this.active = on;
    this.poorSince = undefined;
  }
}

/** qualityName maps livekit-client's ConnectionQuality strings to ours. */
export function qualityName(q: string | undefined): Quality {
  switch (q) {
    case 'excellent':
    case 'good':
    case 'poor':
    case 'lost':
      return q;
    default:
      return 'unknown';
  }
}
