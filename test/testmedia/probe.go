package testmedia

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ProbeResult is what ffprobe reports of a recorded file.
type ProbeResult struct {
	VideoCodec  string
	AudioCodec  string
	Duration    float64
	VideoFrames int
	AudioFrames int
	Width       int
	Height      int
}

// Probe runs ffprobe (with -count_frames: every frame is decoded) and checks that the file
// has a video and an audio stream, starts its video on a keyframe and decodes without error
// (ffmpeg to a null muxer).
func Probe(t testing.TB, path string) ProbeResult {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_type,codec_name,nb_read_frames,width,height:format=duration", "-of", "json", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	var p struct {
		Streams []struct {
			CodecType    string `json:"codec_type"`
			CodecName    string `json:"codec_name"`
			NbReadFrames string `json:"nb_read_frames"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	var r ProbeResult
	r.Duration, _ = strconv.ParseFloat(p.Format.Duration, 64)
	for _, s := range p.Streams {
		n, _ := strconv.Atoi(s.NbReadFrames)
		switch s.CodecType {
		case "video":
			r.VideoCodec, r.VideoFrames, r.Width, r.Height = s.CodecName, n, s.Width, s.Height
		case "audio":
			r.AudioCodec, r.AudioFrames = s.CodecName, n
		}
	}
	t.Logf("ffprobe %s: %s", filepath.Base(path), strings.Join(strings.Fields(string(out)), " "))
	if r.VideoFrames == 0 || r.AudioFrames == 0 {
		t.Errorf("%s: want video and audio frames, got %+v", path, r)
	}
	first, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1",
		"-show_entries", "frame=key_frame,pict_type", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(first)), "1") {
		t.Errorf("%s: first video frame is not a keyframe: %q %v", path, first, err)
	}
	// Decoded frames keep the file's millisecond timestamps (-enc_time_base -1): in the
	// null muxer's default 1/fps time base, two frames can round to the same tick when the
	// video starts half a frame after the audio, which ffmpeg reports as an error.
	dec, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-enc_time_base", "-1", "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(dec)) > 0 {
		t.Errorf("%s: decoding reported errors: %v\n%s", path, err, dec)
	}
	return r
}
