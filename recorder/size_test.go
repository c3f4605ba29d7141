package recorder

import (
	"testing"

	"github.com/sanke-edu/sanke/test/testmedia"
)

// TestKeyframeSize reads the frame size of the fixtures' VP8 and VP9 keyframes (what the
// file head declares when the publisher did not say) and refuses interframes.
func TestKeyframeSize(t *testing.T) {
	files := testmedia.Get(t)
	for _, c := range []struct {
		name   string
		path   string
		w, h   int
		sizeOf func([]byte) (int, int, bool)
	}{
		{"vp8", files.VP8[testmedia.Medium].Path, files.VP8[testmedia.Medium].Width, files.VP8[testmedia.Medium].Height, vp8Size},
		{"vp9", files.VP9.Path, files.VP9.Width, files.VP9.Height, vp9Size},
	} {
		ivf, err := testmedia.ReadIVF(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if w, h, ok := c.sizeOf(ivf.Frames[0]); !ok || w != c.w || h != c.h {
			t.Errorf("%s keyframe: %dx%d %v, want %dx%d", c.name, w, h, ok, c.w, c.h)
		}
		if w, h, ok := c.sizeOf(ivf.Frames[1]); ok {
			t.Errorf("%s interframe read as a keyframe of %dx%d", c.name, w, h)
		}
		if _, _, ok := c.sizeOf(ivf.Frames[0][:3]); ok {
			t.Errorf("%s: a truncated keyframe read", c.name)
		}
	}
}
