// Vite configuration of the Sanke web client. `npm run build` writes dist/, which is committed
// and embedded into the sanke binary (embed.go); `npm run dev` serves the sources with a proxy
// to a sanke server on 127.0.0.1:7880 (SANKE_URL overrides it).
import { defineConfig } from 'vitest/config';

const target = process.env.SANKE_URL || 'http://127.0.0.1:7880';

export default defineConfig({
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      output: {
        // Two vendor chunks: ECharts (loaded by the dashboard only) and everything else from
        // node_modules (livekit-client with its protobuf runtime: keep them in one chunk, a
        // split between them breaks module initialisation order).
        manualChunks: (id) => {
          if (!id.includes('node_modules')) return undefined;
          if (id.includes('node_modules/echarts') || id.includes('node_modules/zrender')) return 'echarts';
          return 'vendor';
        },
      },
    },
  },
  server: {
    proxy: {
      '/api': target,
      '/twirp': target,
      '/client-config.json': target,
      '/dev': target,
      '/rtc': { target: target.replace(/^http/, 'ws'), ws: true },
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
  },
});
