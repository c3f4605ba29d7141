// Inline SVG icons (24x24, stroke), so the bundle needs no icon font.
const paths: Record<string, string> = {
  mic: 'M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3zM5 11a7 7 0 0 0 14 0M12 18v3',
  micOff: 'M15 9.3V6a3 3 0 0 0-5.7-1.3M9 9v3a3 3 0 0 0 5.1 2.1M5 11a7 7 0 0 0 11.5 5.4M19 11a7 7 0 0 1-.5 2.6M12 18v3M3 3l18 18',
  cam: 'M3 7h12v10H3zM15 10l6-3v10l-6-3',
  camOff: 'M3 7h9m3 3 6-3v10l-6-3M3 7v10h12v-3M3 3l18 18',
  screen: 'M3 4h18v12H3zM8 20h8M12 16v4',
  slides: 'M4 4h16v12H4zM4 16l-1 4M20 16l1 4M8 8h8M8 11h5',
  hand: 'M8 12V5.5a1.5 1.5 0 0 1 3 0V11m0-6.5a1.5 1.5 0 0 1 3 0V11m0-5a1.5 1.5 0 0 1 3 0v7c0 4-2.5 7-6.5 7S5 17.5 4.2 15.2L3 12a1.5 1.5 0 0 1 2.8-1L8 14',
  record: 'M12 12m-7 0a7 7 0 1 0 14 0a7 7 0 1 0-14 0',
  stop: 'M6 6h12v12H6z',
  chat: 'M4 5h16v11H9l-5 4z',
  end: 'M3 14c5-5 13-5 18 0l-3 3-3-2v-3a10 10 0 0 0-6 0v3l-3 2z',
  play: 'M7 5l12 7-12 7z',
  back: 'M15 5l-7 7 7 7',
  grid: 'M4 4h7v7H4zM13 4h7v7h-7zM4 13h7v7H4zM13 13h7v7h-7z',
  chart: 'M4 20V10M10 20V4M16 20v-7M22 20H2',
  film: 'M4 4h16v16H4zM8 4v16M16 4v16M4 9h4M4 15h4M16 9h4M16 15h4',
  home: 'M3 11l9-7 9 7M5 10v10h14V10',
  logout: 'M15 4h4v16h-4M10 8l-4 4 4 4M6 12h11',
  globe: 'M12 3a9 9 0 1 0 0 18 9 9 0 1 0 0-18M3 12h18M12 3c3 3 3 15 0 18M12 3c-3 3-3 15 0 18',
  speaker: 'M4 9h4l5-4v14l-5-4H4zM17 8a5 5 0 0 1 0 8',
  signal: 'M4 20v-3M9 20v-7M14 20V9M19 20V5',
  download: 'M12 4v12M7 11l5 5 5-5M4 20h16',
  expand: 'M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5',
  layout: 'M3 4h18v16H3zM14 4v16',
  leaf: 'M5 19c0-8 6-14 15-14 0 9-6 15-14 15M5 19l7-7',
  eye: 'M2 12s4-7 10-7 10 7 10 7-4 7-10 7S2 12 2 12zM12 9a3 3 0 1 0 0 6 3 3 0 1 0 0-6',
  check: 'M5 12l5 5 9-10',
  alert: 'M12 3l10 18H2zM12 10v5M12 18v.5',
};

export function Icon({ name, size = 22 }: { name: string; size?: number }) {
  return (
    <svg class="icon" width={size} height={size} viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">
      <path d={paths[name] ?? ''} />
    </svg>
  );
}
