// Slides from image files (exported PPT pages, photos of a blackboard), drawn on a canvas and
// published as a screen share tuned for legible text: 1920x1080, a few frames per second,
// contentHint "detail", no simulcast, resolution kept under congestion. It works where
// getDisplayMedia does not (tablets) and needs no screen-capture permission.
import { type LocalParticipant, type LocalTrackPublication, Track } from 'livekit-client';

export const SLIDE_W = 1920;
export const SLIDE_H = 1080;

export class SlideDeck {
  readonly canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  images: HTMLImageElement[] = [];
  index = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private pub: LocalTrackPublication | undefined;
  private urls: string[] = [];

  constructor() {
    this.canvas = document.createElement('canvas');
    this.canvas.width = SLIDE_W;
    this.canvas.height = SLIDE_H;
    this.ctx = this.canvas.getContext('2d')!;
  }

  async load(files: File[]): Promise<void> {
    this.urls.forEach((u) => URL.revokeObjectURL(u));
    this.urls = files.map((f) => URL.createObjectURL(f));
    const sorted = this.urls.map((u, i) => ({ u, name: files[i].name })).sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
    this.images = await Promise.all(
      sorted.map(
        ({ u }) =>
          new Promise<HTMLImageElement>((res, rej) => {
            const img = new Image();
            img.onload = () => res(img);
            img.onerror = () => rej(new Error('cannot read image'));
            img.src = u;
          }),
      ),
    );
    this.index = 0;
    this.draw();
  }

  draw(): void {
    const c = this.ctx;
    c.fillStyle = '#ffffff';
    c.fillRect(0, 0, SLIDE_W, SLIDE_H);
    const img = this.images[this.index];
    if (!img) return;
    const iw = img.naturalWidth || img.width || SLIDE_W;
    const ih = img.naturalHeight || img.height || SLIDE_H;
    const s = Math.min(SLIDE_W / iw, SLIDE_H / ih);
    const w = iw * s;
    const h = ih * s;
    c.drawImage(img, (SLIDE_W - w) / 2, (SLIDE_H - h) / 2, w, h);
  }

  go(delta: number): void {
    if (this.images.length === 0) return;
    this.index = Math.max(0, Math.min(this.images.length - 1, this.index + delta));
    this.draw();
  }

  get published(): boolean {
    return this.pub !== undefined;
  }

  async publish(lp: LocalParticipant): Promise<void> {
    const stream = this.canvas.captureStream(5);
    const track = stream.getVideoTracks()[0];
    track.contentHint = 'detail';
    this.draw();
    // Keep frames flowing (a canvas only yields frames when painted) so that new subscribers
    // get a keyframe quickly.
    this.timer = setInterval(() => this.draw(), 250);
    this.pub = await lp.publishTrack(track, {
      source: Track.Source.ScreenShare,
      name: 'slides',
      simulcast: false,
      videoEncoding: { maxBitrate: 1_500_000, maxFramerate: 5 },
      degradationPreference: 'maintain-resolution',
    });
  }

  async unpublish(lp: LocalParticipant): Promise<void> {
    clearInterval(this.timer);
    const pub = this.pub;
    this.pub = undefined;
    if (pub?.track) await lp.unpublishTrack(pub.track, true);
  }
}

/** Screen share options for slides and documents (legible text over motion). */
export const SCREEN_CAPTURE = {
  audio: false,
  contentHint: 'detail' as const,
  resolution: { width: 1920, height: 1080, frameRate: 5 },
  selfBrowserSurface: 'exclude' as const,
};
export const SCREEN_PUBLISH = {
  videoEncoding: { maxBitrate: 2_000_000, maxFramerate: 5 },
  simulcast: false,
  degradationPreference: 'maintain-resolution' as const,
};
