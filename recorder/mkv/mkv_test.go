package mkv

import (
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/test/testmedia"
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
	l, err := NewHead("webm", tracks, "sanke-test", time.Unix(1700000000, 0), nil)
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

// TestMuxStrictlyIncreasing writes frames of a track out of order and at the same time: the
// muxer keeps each track's timestamps strictly increasing.
func TestMuxStrictlyIncreasing(t *testing.T) {
	tracks := []Track{
		{Number: 1, Type: TypeVideo, CodecID: CodecVP8, Width: 320, Height: 180},
		{Number: 2, Type: TypeAudio, CodecID: CodecOpus, CodecPrivate: OpusHead(2), SampleRate: 48000, Channels: 2},
	}
	l, err := NewHead("webm", tracks, "sanke-test", time.Unix(1700000000, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMuxer(l, tracks, 5*time.Second)
	writes := []struct {
		track uint64
		pts   int64
		key   bool
	}{{1, 0, true}, {2, 0, false}, {1, 33, false}, {1, 33, false}, {2, 20, false}, {2, 20, false}, {1, 20, false}, {1, 100, false}}
	for _, w := range writes {
		if _, c, err := m.Write(w.track, w.pts, 20, w.key, []byte{0}); err != nil || c != nil {
			t.Fatalf("write %+v: cluster %v, %v", w, c, err)
		}
	}
	got := map[uint64][]int64{}
	for _, b := range m.open.SimpleBlock {
		got[b.TrackNumber] = append(got[b.TrackNumber], int64(m.open.Timecode)+int64(b.Timecode))
	}
	if want := []int64{0, 33, 34, 35, 100}; !slices.Equal(got[1], want) {
		t.Errorf("video at %v, want %v", got[1], want)
	}
	if want := []int64{0, 20, 21}; !slices.Equal(got[2], want) {
		t.Errorf("audio at %v, want %v", got[2], want)
	}
}

// scanTags are the tags of muxSynthetic's file (names with spaces and non-ASCII).
var scanTags = map[string]string{"SANKE_ROOM": "class 1", "SANKE_PARTICIPANT": "王老师 a/b"}

// muxSynthetic muxes 10 s of made-up video (a keyframe every second) and audio frames.
func muxSynthetic(t *testing.T) (Layout, []Track, *Muxer, []byte) {
	t.Helper()
	tracks := []Track{
		{Number: 1, Type: TypeAudio, CodecID: CodecOpus, CodecPrivate: OpusHead(2), SampleRate: 48000, Channels: 2},
		{Number: 2, Type: TypeVideo, CodecID: CodecH264, CodecPrivate: []byte{1, 0x42, 0xc0, 0x1f, 0xff, 0xe0, 0}, Width: 640, Height: 360},
	}
	l, err := NewHead("matroska", tracks, "sanke-test", time.Unix(1700000000, 0), scanTags)
	if err != nil {
		t.Fatal(err)
	}
	file := bytes.Clone(l.Head)
	m := NewMuxer(l, tracks, 4*time.Second)
	add := func(b []byte, c *Cluster) {
		if c != nil {
			if c.Offset != int64(len(file)) {
				t.Fatalf("cluster at %d, file at %d", c.Offset, len(file))
			}
			file = append(file, b...)
		}
	}
	for ms := int64(0); ms < 10000; ms += 10 {
		if ms%20 == 0 {
			b, c, err := m.Write(1, ms, 20, true, bytes.Repeat([]byte{0xa5}, 80))
			if err != nil {
				t.Fatal(err)
			}
			add(b, c)
		}
		if ms%30 == 0 {
			b, c, err := m.Write(2, ms, 30, ms%1000 == 0, bytes.Repeat([]byte{0x5a}, 400))
			if err != nil {
				t.Fatal(err)
			}
			add(b, c)
		}
	}
	b, c, err := m.Flush()
	if err != nil {
		t.Fatal(err)
	}
	add(b, c)
	return l, tracks, m, file
}

// TestScan rebuilds the layout and cluster index of files cut at various places and checks
// that Finalize gives the same result as from the muxer's own index.
func TestScan(t *testing.T) {
	l, tracks, m, file := muxSynthetic(t)
	idx := m.Index()
	cut := idx[len(idx)/2]
	cues, head, err := Finalize(l, idx, int64(len(file)), float64(m.Duration()))
	if err != nil {
		t.Fatal(err)
	}
	finished := append(bytes.Clone(file), cues...)
	copy(finished, head)
	tests := []struct {
		name      string
		in        []byte
		clusters  int
		finalized bool
		err       bool
	}{
		{name: "complete", in: file, clusters: len(idx)},
		{name: "cut after a cluster", in: file[:cut.Offset+cut.Size], clusters: len(idx)/2 + 1},
		{name: "cut inside a cluster", in: file[:cut.Offset+cut.Size/2], clusters: len(idx) / 2},
		{name: "head only", in: file[:l.HeadLen], clusters: 0},
		{name: "finished", in: finished, finalized: true},
		{name: "head cut short", in: file[:l.HeadLen-3], err: true},
		{name: "not Matroska", in: []byte("RIFF....WAVEfmt "), err: true},
		{name: "empty", in: nil, err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var copied bytes.Buffer
			s, err := Scan(bytes.NewReader(tc.in), &copied)
			if tc.err {
				if err == nil {
					t.Fatalf("want an error, got %+v", s)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Finalized != tc.finalized {
				t.Fatalf("finalized = %v", s.Finalized)
			}
			if tc.finalized {
				return
			}
			got := s.Layout
			if got.HeadLen != l.HeadLen || got.SegmentDataStart != l.SegmentDataStart || got.SeekOffset != l.SeekOffset ||
				got.InfoOffset != l.InfoOffset || got.DurationOffset != l.DurationOffset || got.TracksOffset != l.TracksOffset ||
				!bytes.Equal(got.Head, l.Head) {
				t.Errorf("layout differs:\n got %+v\nwant %+v", got, l)
			}
			if len(s.Tracks) != len(tracks) || !bytes.Equal(s.Tracks[1].CodecPrivate, tracks[1].CodecPrivate) || s.Tracks[1].Width != 640 {
				t.Errorf("tracks %+v", s.Tracks)
			}
			if !s.Created.Equal(time.Unix(1700000000, 0)) {
				t.Errorf("created %v", s.Created)
			}
			if !maps.Equal(s.Tags, scanTags) {
				t.Errorf("tags %v, want %v", s.Tags, scanTags)
			}
			if len(s.Index) != tc.clusters {
				t.Fatalf("%d clusters, want %d", len(s.Index), tc.clusters)
			}
			for i, c := range s.Index {
				w := idx[i]
				if c.Offset != w.Offset || c.Size != w.Size || c.Timecode != w.Timecode || c.KeyTrack != w.KeyTrack || c.End < w.End-30 || c.End > w.End+30 {
					t.Errorf("cluster %d = %+v, want %+v", i, c, w)
				}
			}
			if !bytes.Equal(copied.Bytes(), tc.in[:s.End]) {
				t.Errorf("copied %d bytes, want the %d up to the last cluster", copied.Len(), s.End)
			}
			if tc.clusters == len(idx) {
				c2, h2, err := Finalize(s.Layout, s.Index, s.End, float64(m.Duration()))
				if err != nil || !bytes.Equal(c2, cues) || !bytes.Equal(h2, head) {
					t.Errorf("Finalize from the scan differs from Finalize from the muxer (%v)", err)
				}
			}
		})
	}
}
