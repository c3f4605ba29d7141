// Package testmedia generates the media files that Sanke's end-to-end tests publish: three VP8
// simulcast layers (IVF) cut from one synthetic source, VP9 (IVF), Opus in Ogg, and H.264
// Annex-B.
//
// The files are made once with ffmpeg and kept in a cache directory shared by every test
// process (see CacheRoot); a generation directory is named after Version and a hash of the
// ffmpeg parameters, so changing the parameters regenerates by itself. Generation is safe when
// several test processes ask at once: it is serialised with a file lock and written into a
// temporary directory that is renamed into place.
//
// Tests call Get, which fails the test (never skips it) when ffmpeg is missing.
package testmedia

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Version names the fixture set. Bump it when the way files are derived changes in a way the
// parameter hash does not see (for example the manifest layout).
const Version = "v1"

// CacheEnv is the environment variable that overrides the cache root directory.
const CacheEnv = "SANKE_TEST_CACHE"

// Duration is the length of every generated clip.
const Duration = 20 * time.Second

// FPS is the frame rate of the generated video.
const FPS = 30

// KeyframeInterval is the distance in frames between two keyframes of the video files.
const KeyframeInterval = 60

// Simulcast layer indexes into Files.VP8, lowest first.
const (
	Low    = 0
	Medium = 1
	High   = 2
)

// VP8Layer describes one generated VP8 simulcast layer.
type VP8Layer struct {
	// Path is the absolute path of the IVF file.
	Path string `json:"path"`
	// RID is the simulcast RTP stream id LiveKit clients use for this layer: "q", "h" or "f".
	RID string `json:"rid"`
	// Width and Height are the coded frame size.
	Width  int `json:"width"`
	Height int `json:"height"`
	// Bitrate is the encoder's target in bits per second.
	Bitrate int `json:"bitrate"`
	// Frames is the number of frames in the file.
	Frames int `json:"frames"`
	// Keyframes lists the indexes of the keyframes, ascending; the first is 0.
	Keyframes []int `json:"keyframes"`
	// Bytes is the total size of the frames (without IVF headers).
	Bytes int `json:"bytes"`
}

// OpusFile describes the generated Opus clip.
type OpusFile struct {
	// Path is the absolute path of the Ogg file.
	Path string `json:"path"`
	// SampleRate is the Opus clock rate, 48000.
	SampleRate int `json:"sample_rate"`
	// Channels is the number of encoded channels.
	Channels int `json:"channels"`
	// FrameDuration is the duration of each packet (20 ms).
	FrameDuration time.Duration `json:"frame_duration"`
	// Packets is the number of Opus packets in the file.
	Packets int `json:"packets"`
	// Levels holds, for each 20 ms packet, the audio level of the decoded signal as RFC 6464
	// -dBov (0 is loudest, 127 silence). The clip alternates loud (2 s) and quiet (2 s).
	Levels []uint8 `json:"levels"`
}

// H264File describes the generated H.264 clip (constrained baseline, Annex-B byte stream,
// SPS/PPS repeated before every IDR).
type H264File struct {
	// Path is the absolute path of the .h264 file.
	Path string `json:"path"`
	// Width and Height are the coded frame size.
	Width  int `json:"width"`
	Height int `json:"height"`
	// Frames is the number of access units (pictures) in the file.
	Frames int `json:"frames"`
	// Keyframes lists the indexes of the IDR access units, ascending.
	Keyframes []int `json:"keyframes"`
}

// VP9File describes the generated VP9 clip (profile 0, one layer, no superframes).
type VP9File struct {
	// Path is the absolute path of the IVF file.
	Path string `json:"path"`
	// Width and Height are the coded frame size.
	Width  int `json:"width"`
	Height int `json:"height"`
	// Frames is the number of frames in the file.
	Frames int `json:"frames"`
	// Keyframes lists the indexes of the keyframes, ascending; the first is 0.
	Keyframes []int `json:"keyframes"`
}

// Files is the generated fixture set.
type Files struct {
	// Dir is the directory that holds the files.
	Dir string `json:"-"`
	// FPS is the video frame rate; every video frame lasts 1/FPS s.
	FPS int `json:"fps"`
	// Duration is the length of each clip.
	Duration time.Duration `json:"duration"`
	// VP8 are the simulcast layers, indexed by Low, Medium, High.
	VP8 [3]VP8Layer `json:"vp8"`
	// Opus is the audio clip.
	Opus OpusFile `json:"opus"`
	// H264 is the H.264 clip (640x360).
	H264 H264File `json:"h264"`
	// VP9 is the VP9 clip (640x360).
	VP9 VP9File `json:"vp9"`
}

// Get returns the fixture set, generating it on first use. It fails the test with an
// explanation when ffmpeg is not installed or generation fails; it never skips.
func Get(tb testing.TB) Files {
	tb.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		tb.Fatalf("testmedia: ffmpeg is not installed (%v). End-to-end tests need it to make their "+
			"media: run ./scripts/test.sh, which installs it, or apt-get install -y ffmpeg", err)
	}
	root, err := CacheRoot()
	if err != nil {
		tb.Fatalf("testmedia: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	files, generated, err := Ensure(ctx, root)
	if err != nil {
		tb.Fatalf("testmedia: %v", err)
	}
	if generated {
		tb.Logf("testmedia: generated fixtures in %s (%.1fs)", files.Dir, time.Since(start).Seconds())
	}
	return files
}

// CacheRoot returns the directory under which fixture sets are kept: $SANKE_TEST_CACHE when
// set, otherwise sanke-testmedia under the user cache directory (~/.cache on Linux).
func CacheRoot() (string, error) {
	if dir := os.Getenv(CacheEnv); dir != "" {
		return filepath.Abs(dir)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (set %s): %w", CacheEnv, err)
	}
	return filepath.Join(base, "sanke-testmedia"), nil
}

// Ensure returns the fixture set kept under root, generating it first when it is missing.
// generated reports whether this call made the files.
func Ensure(ctx context.Context, root string) (files Files, generated bool, err error) {
	return ensure(ctx, root, generate)
}

// ensure is Ensure with the generator as a parameter (tests use a fake one).
func ensure(ctx context.Context, root string, gen func(context.Context, string) (Files, error)) (files Files, generated bool, err error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return Files{}, false, err
	}
	dir := filepath.Join(root, Version+"-"+paramsHash())
	if f, err := load(dir); err == nil {
		return f, false, nil
	}

	unlock, err := lockFile(ctx, filepath.Join(root, ".lock"))
	if err != nil {
		return Files{}, false, err
	}
	defer unlock()
	// Another process may have finished while we waited for the lock.
	if f, err := load(dir); err == nil {
		return f, false, nil
	}

	tmp, err := os.MkdirTemp(root, ".gen-")
	if err != nil {
		return Files{}, false, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Files{}, false, err
	}
	defer func() { _ = os.RemoveAll(tmp) }() // no-op once renamed

	if _, err := gen(ctx, tmp); err != nil {
		return Files{}, false, err
	}
	// A stale, incomplete directory (no manifest) would block the rename.
	if _, err := os.Stat(dir); err == nil {
		if err := os.RemoveAll(dir); err != nil {
			return Files{}, false, err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if f, lerr := load(dir); lerr == nil {
			return f, false, nil
		}
		return Files{}, false, fmt.Errorf("install fixtures: %w", err)
	}
	f, err := load(dir)
	return f, true, err
}

const manifestName = "manifest.json"

// load reads the manifest of a complete fixture directory and makes its paths absolute.
func load(dir string) (Files, error) {
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return Files{}, err
	}
	var f Files
	if err := json.Unmarshal(data, &f); err != nil {
		return Files{}, fmt.Errorf("corrupt manifest in %s: %w", dir, err)
	}
	f.Dir = dir
	for i := range f.VP8 {
		f.VP8[i].Path = filepath.Join(dir, f.VP8[i].Path)
	}
	f.Opus.Path = filepath.Join(dir, f.Opus.Path)
	f.H264.Path = filepath.Join(dir, f.H264.Path)
	f.VP9.Path = filepath.Join(dir, f.VP9.Path)
	for _, p := range []string{f.VP8[0].Path, f.VP8[1].Path, f.VP8[2].Path, f.Opus.Path, f.H264.Path, f.VP9.Path} {
		if _, err := os.Stat(p); err != nil {
			return Files{}, err
		}
	}
	return f, nil
}

// generate makes every file into dir and writes the manifest last. Paths in the manifest are
// relative to dir.
func generate(ctx context.Context, dir string) (Files, error) {
	f := Files{FPS: FPS, Duration: Duration}
	if err := runFFmpeg(ctx, dir, vp8Args()); err != nil {
		return Files{}, fmt.Errorf("generate VP8 layers: %w", err)
	}
	for i, l := range vp8Layers() {
		layer, err := describeVP8(filepath.Join(dir, l.file))
		if err != nil {
			return Files{}, err
		}
		if layer.Width != l.width || layer.Height != l.height {
			return Files{}, fmt.Errorf("%s: keyframe says %dx%d, want %dx%d", l.file, layer.Width, layer.Height, l.width, l.height)
		}
		layer.Path = l.file
		layer.RID = l.rid
		layer.Bitrate = l.bitrate
		f.VP8[i] = layer
	}

	if err := runFFmpeg(ctx, dir, opusArgs()); err != nil {
		return Files{}, fmt.Errorf("generate Opus: %w", err)
	}
	opus, err := describeOpus(ctx, filepath.Join(dir, opusFile))
	if err != nil {
		return Files{}, err
	}
	opus.Path = opusFile
	f.Opus = opus

	if err := runFFmpeg(ctx, dir, h264Args()); err != nil {
		return Files{}, fmt.Errorf("generate H.264: %w", err)
	}
	h264, err := describeH264(filepath.Join(dir, h264File))
	if err != nil {
		return Files{}, err
	}
	h264.Path = h264File
	h264.Width, h264.Height = h264Width, h264Height
	f.H264 = h264

	if err := runFFmpeg(ctx, dir, vp9Args()); err != nil {
		return Files{}, fmt.Errorf("generate VP9: %w", err)
	}
	vp9, err := describeVP9(filepath.Join(dir, vp9File))
	if err != nil {
		return Files{}, err
	}
	if vp9.Width != vp9Width || vp9.Height != vp9Height {
		return Files{}, fmt.Errorf("%s: keyframe says %dx%d, want %dx%d", vp9File, vp9.Width, vp9.Height, vp9Width, vp9Height)
	}
	vp9.Path = vp9File
	f.VP9 = vp9

	return f, writeManifest(dir, f)
}

// writeManifest records f (with paths relative to dir) as the completion marker of dir.
func writeManifest(dir string, f Files) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, manifestName), data, 0o644)
}

// runFFmpeg runs ffmpeg with args in dir, returning its stderr on failure.
func runFFmpeg(ctx context.Context, dir string, args []string) error {
	cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ffmpeg %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// paramsHash identifies the generation parameters, so that changing them invalidates caches.
func paramsHash() string {
	h := sha256.New()
	for _, args := range [][]string{vp8Args(), opusArgs(), h264Args(), vp9Args()} {
		_, _ = fmt.Fprintln(h, strings.Join(args, "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// errNoKeyframe is returned when a video file does not start with a keyframe.
var errNoKeyframe = errors.New("first frame is not a keyframe")
