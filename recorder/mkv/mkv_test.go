package mkv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/internal/testmedia"
)

// TestMuxVP8Opus muxes the fixture VP8 and Opus clips and checks the result with ffprobe,
// both as written (unfinalized) and after Finalize.
func TestMuxVP8Opus(t *testing.T) {
	files := testmedia.Get(t)
	ivf, err := testmedia.ReadIVF(files.VP8[testmedia.Medium].Path)
	if err != nil {
		t.Fatal(err)
	}
	opus, err := testmedia.ReadOggOpus(files.Opus.Path)
	if err != nil {
		t.Fatal(err)
	}
	tracks := []Track{
		{Number: 1, Type: TypeVideo, CodecID: CodecVP8, Width: ivf.Width, Height: ivf.Height},
		{Number: 2, Type: TypeAudio, CodecID: CodecOpus, CodecPrivate: OpusHead(2), SampleRate: 48000, Channels: 2},
	}
	l, err := NewHead("webm", tracks, "sanke-test", time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	file.Write(l.Head)
	m := NewMuxer(l, tracks, 5*time.Second)
	write := func(b []byte, c *Cluster) {
		if c != nil {
			if c.Offset != int64(file.Len()) {
				t.Fatalf("cluster offset %d, file at %d", c.Offset, file.Len())
			}
			file.Write(b)
		}
	}
	vi, ai := 0, 0
	for vi < len(ivf.Frames) || ai < len(opus) {
		vt := int64(vi) * 1000 / 30
		at := int64(ai) * 20
		if vi < len(ivf.Frames) && (ai >= len(opus) || vt <= at) {
			key := ivf.Frames[vi][0]&1 == 0
			b, c, err := m.Write(1, vt, 33, key, ivf.Frames[vi])
			if err != nil {
				t.Fatal(err)
			}
			write(b, c)
			vi++
		} else {
			b, c, err := m.Write(2, at, 20, true, opus[ai])
			if err != nil {
				t.Fatal(err)
			}
			write(b, c)
			ai++
		}
	}
	b, c, err := m.Flush()
	if err != nil {
		t.Fatal(err)
	}
	write(b, c)
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw.webm")
	if err := os.WriteFile(raw, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cues, head, err := Finalize(l, m.Index(), int64(file.Len()), float64(m.Duration()))
	if err != nil {
		t.Fatal(err)
	}
	fin := bytes.Clone(file.Bytes())
	copy(fin, head)
	fin = append(fin, cues...)
	final := filepath.Join(dir, "final.webm")
	if err := os.WriteFile(final, fin, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{raw, final} {
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name,nb_read_frames", "-count_frames", "-of", "compact", p).CombinedOutput()
		if err != nil {
			t.Fatalf("ffprobe %s: %v\n%s", p, err, out)
		}
		t.Logf("%s: %s", filepath.Base(p), strings.TrimSpace(string(out)))
	}
}
