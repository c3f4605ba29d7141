package testmedia

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestVP8FrameSize(t *testing.T) {
	// Keyframe tag (bit 0 = 0, version 0, show_frame, partition size), start code, 1280|scale 1,
	// 720|scale 2.
	key := []byte{0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x45, 0xd0, 0x82, 0xff}
	if !IsVP8Keyframe(key) {
		t.Fatal("IsVP8Keyframe(key) = false")
	}
	if w, h, ok := VP8FrameSize(key); !ok || w != 1280 || h != 720 {
		t.Fatalf("VP8FrameSize = %d, %d, %v; want 1280, 720, true", w, h, ok)
	}
	small := []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00}
	if w, h, ok := VP8FrameSize(small); !ok || w != 320 || h != 180 {
		t.Fatalf("VP8FrameSize = %d, %d, %v; want 320, 180, true", w, h, ok)
	}

	inter := append([]byte{}, key...)
	inter[0] |= 1
	if IsVP8Keyframe(inter) {
		t.Error("interframe reported as keyframe")
	}
	if _, _, ok := VP8FrameSize(inter); ok {
		t.Error("VP8FrameSize accepted an interframe")
	}
	badStart := append([]byte{}, key...)
	badStart[4] = 0x02
	if IsVP8Keyframe(badStart) {
		t.Error("bad start code accepted")
	}
	for n := 0; n < len(key)-1; n++ {
		if _, _, ok := VP8FrameSize(key[:n]); ok && n < vp8KeyframeHeader {
			t.Errorf("VP8FrameSize accepted %d bytes", n)
		}
	}
	if _, _, ok := VP8FrameSize(nil); ok {
		t.Error("VP8FrameSize(nil) ok")
	}
}

func TestLevelDBov(t *testing.T) {
	full := make([]byte, 1920)
	for i := 0; i < len(full); i += 2 {
		// square wave at full scale: RMS 1 => 0 dBov
		v := int16(32767)
		if (i/2)%2 == 1 {
			v = -32767
		}
		full[i], full[i+1] = byte(uint16(v)), byte(uint16(v)>>8)
	}
	if got := levelDBov(full); got != 0 {
		t.Errorf("full scale: %d dBov, want 0", got)
	}
	if got := levelDBov(make([]byte, 1920)); got != 127 {
		t.Errorf("silence: %d dBov, want 127", got)
	}
}

func TestSplitH264AccessUnits(t *testing.T) {
	sps := []byte{0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f}
	pps := []byte{0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80}
	idr := []byte{0, 0, 0, 1, 0x65, 0x88, 0x84}      // first_mb_in_slice = 0
	idr2 := []byte{0, 0, 1, 0x65, 0x40, 0x84}        // second slice of the same picture
	p1 := []byte{0, 0, 0, 1, 0x41, 0x9a, 0x02}       // next picture
	p2 := []byte{0, 0, 0, 1, 0x41, 0x9a, 0x04, 0x00} // next picture
	var stream []byte
	for _, n := range [][]byte{sps, pps, idr, idr2, p1, p2} {
		stream = append(stream, n...)
	}
	aus := SplitH264AccessUnits(stream)
	if len(aus) != 3 {
		t.Fatalf("%d access units, want 3", len(aus))
	}
	if !IsH264Keyframe(aus[0]) || IsH264Keyframe(aus[1]) || IsH264Keyframe(aus[2]) {
		t.Error("keyframe detection wrong")
	}
	if want := len(sps) + len(pps) + len(idr) + len(idr2); len(aus[0]) != want {
		t.Errorf("first AU has %d bytes, want %d", len(aus[0]), want)
	}
}

// TestEnsureConcurrent checks that concurrent callers (goroutines here, processes in real use)
// generate once and all get the complete set.
func TestEnsureConcurrent(t *testing.T) {
	root := t.TempDir()
	var calls atomic.Int32
	fake := func(ctx context.Context, dir string) (Files, error) {
		calls.Add(1)
		time.Sleep(200 * time.Millisecond) // widen the race window
		f := Files{FPS: FPS, Duration: Duration}
		for i, l := range vp8Layers() {
			f.VP8[i] = VP8Layer{Path: l.file, Width: l.width, Height: l.height}
		}
		f.Opus.Path, f.H264.Path, f.VP9.Path = opusFile, h264File, vp9File
		for _, p := range []string{f.VP8[0].Path, f.VP8[1].Path, f.VP8[2].Path, f.Opus.Path, f.H264.Path, f.VP9.Path} {
			if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644); err != nil {
				return Files{}, err
			}
		}
		return f, writeManifest(dir, f)
	}
	var wg sync.WaitGroup
	var generated atomic.Int32
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			f, gen, err := ensure(context.Background(), root, fake)
			if err != nil {
				errs <- err
				return
			}
			if gen {
				generated.Add(1)
			}
			if f.VP8[High].Width != 1280 || filepath.Dir(f.VP8[High].Path) != f.Dir {
				t.Errorf("bad files: %+v", f)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if calls.Load() != 1 || generated.Load() != 1 {
		t.Fatalf("generator ran %d times, %d callers saw generated; want 1 and 1", calls.Load(), generated.Load())
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if filepath.Ext(e.Name()) == "" && e.Name()[0] == '.' && e.Name() != ".lock" {
			t.Errorf("left over %s", e.Name())
		}
	}
}

// TestGet generates (or reuses) the real fixtures with ffmpeg and checks what the e2e tests
// rely on. It fails when ffmpeg is missing.
func TestGet(t *testing.T) {
	f := Get(t)
	wantFrames := int(Duration.Seconds()) * FPS
	wantSizes := [3][2]int{{320, 180}, {640, 360}, {1280, 720}}
	rids := [3]string{"q", "h", "f"}
	for i, l := range f.VP8 {
		if l.Width != wantSizes[i][0] || l.Height != wantSizes[i][1] || l.RID != rids[i] {
			t.Errorf("layer %d: %dx%d rid %q", i, l.Width, l.Height, l.RID)
		}
		if l.Frames != wantFrames {
			t.Errorf("layer %d: %d frames, want %d", i, l.Frames, wantFrames)
		}
		for k, idx := range l.Keyframes {
			if idx != k*KeyframeInterval {
				t.Errorf("layer %d: keyframes at %v, want every %d frames", i, l.Keyframes, KeyframeInterval)
				break
			}
		}
		if len(l.Keyframes) != wantFrames/KeyframeInterval {
			t.Errorf("layer %d: %d keyframes", i, len(l.Keyframes))
		}
		bitrate := float64(l.Bytes*8) / Duration.Seconds()
		if bitrate < 0.6*float64(l.Bitrate) || bitrate > 1.5*float64(l.Bitrate) {
			t.Errorf("layer %d: %.0f bit/s, target %d", i, bitrate, l.Bitrate)
		}
		ivf, err := ReadIVF(l.Path)
		if err != nil {
			t.Fatal(err)
		}
		if ivf.Width != l.Width || ivf.Height != l.Height || ivf.TimebaseNum*FPS != ivf.TimebaseDen {
			t.Errorf("layer %d: IVF header %dx%d timebase %d/%d", i, ivf.Width, ivf.Height, ivf.TimebaseNum, ivf.TimebaseDen)
		}
		for k, ts := range ivf.Timestamps {
			if ts != uint64(k) {
				t.Errorf("layer %d: frame %d has pts %d", i, k, ts)
				break
			}
		}
		for _, k := range l.Keyframes {
			if w, h, ok := VP8FrameSize(ivf.Frames[k]); !ok || w != l.Width || h != l.Height {
				t.Errorf("layer %d keyframe %d: %dx%d %v", i, k, w, h, ok)
			}
		}
	}

	wantPackets := int(Duration / (20 * time.Millisecond))
	if f.Opus.Packets < wantPackets-2 || f.Opus.Packets > wantPackets+2 || len(f.Opus.Levels) != f.Opus.Packets {
		t.Errorf("opus: %d packets, %d levels; want ~%d", f.Opus.Packets, len(f.Opus.Levels), wantPackets)
	}
	if len(f.Opus.Levels) > 200 {
		loud, quiet := f.Opus.Levels[50], f.Opus.Levels[150] // 1 s (loud half), 3 s (quiet half)
		if loud > 20 || quiet < 30 {
			t.Errorf("opus levels: %d dBov at 1s, %d dBov at 3s; want loud <= 20, quiet >= 30", loud, quiet)
		}
	}

	if f.H264.Frames != wantFrames || len(f.H264.Keyframes) != wantFrames/KeyframeInterval {
		t.Errorf("h264: %d frames, keyframes %v", f.H264.Frames, f.H264.Keyframes)
	}
	if f.VP9.Width != 640 || f.VP9.Height != 360 || f.VP9.Frames != wantFrames || len(f.VP9.Keyframes) != wantFrames/KeyframeInterval {
		t.Errorf("vp9: %dx%d, %d frames, keyframes %v", f.VP9.Width, f.VP9.Height, f.VP9.Frames, f.VP9.Keyframes)
	}
	if vp9, err := ReadIVF(f.VP9.Path); err != nil || vp9.FourCC != "VP90" || IsVP9Keyframe(vp9.Frames[1]) {
		t.Errorf("vp9 file: %v, frame 1 a keyframe", err)
	}

	// A second call reuses the cache.
	start := time.Now()
	again := Get(t)
	if again.Dir != f.Dir {
		t.Errorf("second Get used %s, first %s", again.Dir, f.Dir)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cached Get took %v", d)
	}
}
