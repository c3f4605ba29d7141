package testmedia

import (
	"fmt"
	"strconv"
)

// vp8Layer is the recipe of one simulcast layer.
type vp8Layer struct {
	file          string
	rid           string
	width, height int
	bitrate       int
}

// vp8Layers lists the simulcast layers lowest first, with the RIDs LiveKit clients use.
func vp8Layers() [3]vp8Layer {
	return [3]vp8Layer{
		{file: "vp8-q-320x180.ivf", rid: "q", width: 320, height: 180, bitrate: 150_000},
		{file: "vp8-h-640x360.ivf", rid: "h", width: 640, height: 360, bitrate: 500_000},
		{file: "vp8-f-1280x720.ivf", rid: "f", width: 1280, height: 720, bitrate: 1_500_000},
	}
}

const (
	opusFile   = "audio-opus-48k.ogg"
	h264File   = "h264-640x360.h264"
	h264Width  = 640
	h264Height = 360
	vp9File    = "vp9-640x360.ivf"
	vp9Width   = 640
	vp9Height  = 360
)

// secs is Duration in whole seconds, as ffmpeg wants it.
func secs() string { return strconv.Itoa(int(Duration.Seconds())) }

// vp8Args encodes the three layers in one ffmpeg run from one testsrc2 source (moving
// gradients, a sweeping clock hand and a frame counter), so that every layer shows the same
// picture at the same frame index, with keyframes at the same indexes.
//
// libvpx notes: with -deadline realtime a positive -cpu-used makes VP8 adapt its speed to a CPU
// budget, which throttles the encoder to about real time (20 s of 720p takes ~45 s); a negative
// value is a fixed speed, so -16 (the fastest) is used. -error-resilient 1, no alt-ref and no
// lag are what real-time WebRTC encoders do; keyint_min = g gives keyframes exactly every
// KeyframeInterval frames and nowhere else.
func vp8Args() []string {
	layers := vp8Layers()
	args := []string{
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=1280x720:rate=%d:duration=%s", FPS, secs()),
		"-filter_complex", fmt.Sprintf("[0:v]split=3[a][b][c];[a]scale=%d:%d[l0];[b]scale=%d:%d[l1];[c]null[l2]",
			layers[0].width, layers[0].height, layers[1].width, layers[1].height),
	}
	for i, l := range layers {
		args = append(args,
			"-map", fmt.Sprintf("[l%d]", i),
			"-c:v", "libvpx", "-b:v", strconv.Itoa(l.bitrate),
			"-deadline", "realtime", "-cpu-used", "-16",
			"-g", strconv.Itoa(KeyframeInterval), "-keyint_min", strconv.Itoa(KeyframeInterval),
			"-error-resilient", "1", "-auto-alt-ref", "0", "-lag-in-frames", "0",
			"-pix_fmt", "yuv420p",
			"-f", "ivf", l.file,
		)
	}
	return args
}

// opusArgs makes 48 kHz mono Opus in 20 ms packets: a 440 Hz tone over quiet pink noise, loud
// for 2 s then 30 dB quieter for 2 s, repeating, so audio levels (and speaker detection) vary.
func opusArgs() []string {
	return []string{
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=" + secs(),
		"-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.02:sample_rate=48000:duration=" + secs(),
		"-filter_complex", "[0:a][1:a]amix=inputs=2:normalize=0,volume='if(lt(mod(t,4),2),2.5,0.08)':eval=frame[out]",
		"-map", "[out]",
		"-ac", "1", "-ar", "48000",
		"-c:a", "libopus", "-b:a", "48k", "-frame_duration", "20", "-application", "audio", "-vbr", "on",
		"-f", "ogg", opusFile,
	}
}

// vp9Args makes VP9 (profile 0) in IVF the way vp8Args makes each VP8 layer: real-time
// settings as a WebRTC encoder uses them (error resilient, no alt-ref, no lag, so no hidden
// frames or superframes), a fixed speed (-cpu-used 8, the fastest for real time) and a
// keyframe exactly every KeyframeInterval frames.
func vp9Args() []string {
	return []string{
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d:duration=%s", vp9Width, vp9Height, FPS, secs()),
		"-c:v", "libvpx-vp9", "-b:v", "500k", "-pix_fmt", "yuv420p",
		"-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1",
		"-g", strconv.Itoa(KeyframeInterval), "-keyint_min", strconv.Itoa(KeyframeInterval),
		"-error-resilient", "1", "-auto-alt-ref", "0", "-lag-in-frames", "0",
		"-f", "ivf", vp9File,
	}
}

// h264Args makes constrained-baseline H.264 as an Annex-B byte stream, one slice per picture,
// SPS/PPS before every IDR, an IDR exactly every KeyframeInterval frames and no B-frames.
func h264Args() []string {
	return []string{
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d:duration=%s", h264Width, h264Height, FPS, secs()),
		"-c:v", "libx264", "-profile:v", "baseline", "-level", "3.1", "-pix_fmt", "yuv420p",
		"-preset", "ultrafast", "-tune", "zerolatency", "-b:v", "600k",
		"-g", strconv.Itoa(KeyframeInterval), "-keyint_min", strconv.Itoa(KeyframeInterval), "-sc_threshold", "0",
		"-x264-params", "repeat-headers=1:sliced-threads=0",
		"-bsf:v", "h264_mp4toannexb",
		"-f", "h264", h264File,
	}
}
