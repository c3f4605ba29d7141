// Which remote tracks each screen subscribes to, and at which simulcast layer. The class
// screens connect with autoSubscribe off and apply this policy, so that a rural teaching
// point receives only what it shows (the teacher, the slides, the classroom called on) and a
// supervisor's thumbnail costs only the teacher camera's low layer.
import type { Role } from '../api';

export type Layer = 'low' | 'medium' | 'high';

export interface TrackInfo {
  /** The publisher's role (sanke.role), undefined for tokens made elsewhere. */
  role?: Role;
  calledOn: boolean;
  kind: 'audio' | 'video';
  source: 'camera' | 'microphone' | 'screen_share' | 'screen_share_audio' | 'unknown';
}

export interface Decision {
  subscribe: boolean;
  /** For video: the layer to ask for. */
  layer?: Layer;
}

export type Screen = 'teacher' | 'point' | 'viewer' | 'wall-thumb' | 'wall-full';

export interface PolicyState {
  /** Low-bandwidth mode on the teaching-point screen: teacher and classroom videos off. */
  lowBandwidth?: boolean;
}

/** decide returns what screen does with a remote track. */
export function decide(screen: Screen, t: TrackInfo, st: PolicyState = {}): Decision {
  const isTeacher = t.role === 'teacher';
  if (t.kind === 'audio') {
    // Audio is cheap and what a class is about; a supervisor's thumbnail stays silent.
    return { subscribe: screen !== 'wall-thumb' };
  }
  switch (screen) {
    case 'teacher':
      // The grid of teaching points: low layer; the classroom called on larger.
      if (t.source === 'screen_share') return { subscribe: true, layer: 'high' };
      return { subscribe: true, layer: t.calledOn ? 'high' : 'low' };
    case 'point':
    case 'viewer':
      if (t.source === 'screen_share') return { subscribe: true, layer: 'high' }; // slides always
      if (st.lowBandwidth) return { subscribe: false };
      if (isTeacher) return { subscribe: true, layer: 'high' };
      if (t.calledOn) return { subscribe: true, layer: 'medium' };
      return { subscribe: false };
    case 'wall-thumb':
      return isTeacher && t.source === 'camera' ? { subscribe: true, layer: 'low' } : { subscribe: false };
    case 'wall-full':
      if (t.source === 'screen_share') return { subscribe: true, layer: 'high' };
      return { subscribe: true, layer: isTeacher ? 'high' : 'low' };
  }
}
