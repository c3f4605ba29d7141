package testmedia

import (
	"fmt"

	"github.com/pion/rtp/codecs/vp9"
)

// VP9FrameSize returns the frame size coded in a VP9 keyframe's uncompressed header. ok is
// false when frame is not a keyframe or its header does not parse.
func VP9FrameSize(frame []byte) (w, h int, ok bool) {
	var hdr vp9.Header
	if err := hdr.Unmarshal(frame); err != nil || hdr.ShowExistingFrame || hdr.NonKeyFrame {
		return 0, 0, false
	}
	return int(hdr.Width()), int(hdr.Height()), true
}

// IsVP9Keyframe reports whether frame (a whole VP9 frame) is a keyframe.
func IsVP9Keyframe(frame []byte) bool {
	_, _, ok := VP9FrameSize(frame)
	return ok
}

// describeVP9 reads a generated IVF file and reports its frames and keyframes.
func describeVP9(path string) (VP9File, error) {
	ivf, err := ReadIVF(path)
	if err != nil {
		return VP9File{}, fmt.Errorf("%s: %w", path, err)
	}
	if ivf.FourCC != "VP90" || len(ivf.Frames) == 0 {
		return VP9File{}, fmt.Errorf("%s: not a VP9 file (%q, %d frames)", path, ivf.FourCC, len(ivf.Frames))
	}
	f := VP9File{Frames: len(ivf.Frames)}
	for i, fr := range ivf.Frames {
		if IsVP9Keyframe(fr) {
			f.Keyframes = append(f.Keyframes, i)
		}
	}
	w, h, ok := VP9FrameSize(ivf.Frames[0])
	if !ok {
		return VP9File{}, fmt.Errorf("%s: %w", path, errNoKeyframe)
	}
	f.Width, f.Height = w, h
	return f, nil
}
