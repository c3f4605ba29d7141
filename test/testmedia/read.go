package testmedia

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"time"

	"github.com/livekit/server-sdk-go/v2/pkg/oggreader"
)

// IVF is an IVF file loaded in memory.
type IVF struct {
	// FourCC is the codec tag, "VP80" for VP8.
	FourCC string
	// Width and Height are the frame size from the file header.
	Width, Height int
	// TimebaseNum / TimebaseDen is the duration of one timestamp tick in seconds.
	TimebaseNum, TimebaseDen int
	// Frames holds each frame's data.
	Frames [][]byte
	// Timestamps holds each frame's presentation timestamp in timebase ticks.
	Timestamps []uint64
}

// ReadIVF loads a whole IVF file.
func ReadIVF(path string) (*IVF, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseIVF(data)
}

// ParseIVF parses an IVF file held in memory. Frames share data's memory.
func ParseIVF(data []byte) (*IVF, error) {
	const headerSize, frameHeaderSize = 32, 12
	if len(data) < headerSize || string(data[:4]) != "DKIF" {
		return nil, errors.New("ivf: bad signature")
	}
	hlen := int(binary.LittleEndian.Uint16(data[6:8]))
	if hlen < headerSize || hlen > len(data) {
		return nil, fmt.Errorf("ivf: bad header length %d", hlen)
	}
	f := &IVF{
		FourCC:      string(data[8:12]),
		Width:       int(binary.LittleEndian.Uint16(data[12:14])),
		Height:      int(binary.LittleEndian.Uint16(data[14:16])),
		TimebaseDen: int(binary.LittleEndian.Uint32(data[16:20])),
		TimebaseNum: int(binary.LittleEndian.Uint32(data[20:24])),
	}
	for off := hlen; off < len(data); {
		if len(data)-off < frameHeaderSize {
			return nil, fmt.Errorf("ivf: truncated frame header at %d", off)
		}
		size := int(binary.LittleEndian.Uint32(data[off : off+4]))
		pts := binary.LittleEndian.Uint64(data[off+4 : off+12])
		off += frameHeaderSize
		if size > len(data)-off {
			return nil, fmt.Errorf("ivf: truncated frame at %d", off)
		}
		f.Frames = append(f.Frames, data[off:off+size:off+size])
		f.Timestamps = append(f.Timestamps, pts)
		off += size
	}
	return f, nil
}

// describeVP8 reads a generated IVF file and reports its frames and keyframes.
func describeVP8(path string) (VP8Layer, error) {
	ivf, err := ReadIVF(path)
	if err != nil {
		return VP8Layer{}, fmt.Errorf("%s: %w", path, err)
	}
	if ivf.FourCC != "VP80" || len(ivf.Frames) == 0 {
		return VP8Layer{}, fmt.Errorf("%s: not a VP8 file (%q, %d frames)", path, ivf.FourCC, len(ivf.Frames))
	}
	l := VP8Layer{Frames: len(ivf.Frames)}
	for i, fr := range ivf.Frames {
		l.Bytes += len(fr)
		if IsVP8Keyframe(fr) {
			l.Keyframes = append(l.Keyframes, i)
		}
	}
	w, h, ok := VP8FrameSize(ivf.Frames[0])
	if !ok {
		return VP8Layer{}, fmt.Errorf("%s: %w", path, errNoKeyframe)
	}
	l.Width, l.Height = w, h
	return l, nil
}

// ReadOggOpus returns the Opus packets of an Ogg Opus file, without the header packets.
func ReadOggOpus(path string) ([][]byte, error) {
	fp, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = fp.Close() }()
	r, _, err := oggreader.NewOggReader(bufio.NewReader(fp))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var packets [][]byte
	for {
		p, err := r.ReadPacket()
		if errors.Is(err, io.EOF) {
			return packets, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(p) == 0 || bytes.HasPrefix(p, []byte("OpusTags")) || bytes.HasPrefix(p, []byte("OpusHead")) {
			continue
		}
		packets = append(packets, p)
	}
}

// describeOpus counts the packets of the generated Ogg file, checks they last 20 ms, and
// measures the level of each 20 ms of decoded audio.
func describeOpus(ctx context.Context, path string) (OpusFile, error) {
	packets, err := ReadOggOpus(path)
	if err != nil {
		return OpusFile{}, err
	}
	for i, p := range packets {
		d, err := oggreader.ParsePacketDuration(p)
		if err != nil {
			return OpusFile{}, fmt.Errorf("%s: packet %d: %w", path, i, err)
		}
		if d != 20*time.Millisecond {
			return OpusFile{}, fmt.Errorf("%s: packet %d lasts %v, want 20ms", path, i, d)
		}
	}
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
		"-i", path, "-f", "s16le", "-ac", "1", "-ar", "48000", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pcm, err := cmd.Output()
	if err != nil {
		return OpusFile{}, fmt.Errorf("decode %s: %w\n%s", path, err, stderr.Bytes())
	}
	const samplesPerPacket = 960 // 20 ms at 48 kHz
	levels := make([]uint8, len(packets))
	for i := range packets {
		start, end := i*samplesPerPacket*2, (i+1)*samplesPerPacket*2
		if end > len(pcm) {
			end = len(pcm) &^ 1
		}
		levels[i] = 127
		if start < end {
			levels[i] = levelDBov(pcm[start:end])
		}
	}
	return OpusFile{
		SampleRate:    48000,
		Channels:      1,
		FrameDuration: 20 * time.Millisecond,
		Packets:       len(packets),
		Levels:        levels,
	}, nil
}

// levelDBov returns the RFC 6464 level (-dBov, 0..127) of little-endian signed 16-bit samples.
func levelDBov(pcm []byte) uint8 {
	n := len(pcm) / 2
	if n == 0 {
		return 127
	}
	var sum float64
	for i := 0; i < n; i++ {
		s := float64(int16(binary.LittleEndian.Uint16(pcm[2*i:]))) / 32768
		sum += s * s
	}
	rms := math.Sqrt(sum / float64(n))
	if rms <= 0 {
		return 127
	}
	db := -20 * math.Log10(rms)
	switch {
	case db < 0:
		return 0
	case db > 127:
		return 127
	default:
		return uint8(math.Round(db))
	}
}

// H264NAL types used below.
const (
	h264NALSlice = 1
	h264NALIDR   = 5
	h264NALSEI   = 6
	h264NALSPS   = 7
	h264NALPPS   = 8
	h264NALAUD   = 9
)

// ReadH264AccessUnits loads an Annex-B H.264 file and splits it into access units, each an
// Annex-B byte string (start codes kept) holding all the NAL units of one picture, parameter
// sets included. It relies on first_mb_in_slice being 0 in the first slice of a picture.
func ReadH264AccessUnits(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return SplitH264AccessUnits(data), nil
}

// SplitH264AccessUnits splits an Annex-B byte stream into access units; see
// ReadH264AccessUnits.
func SplitH264AccessUnits(data []byte) [][]byte {
	nals := splitAnnexB(data)
	var (
		units   [][]byte
		cur     []byte
		haveVCL bool
	)
	for _, nal := range nals {
		body := bytes.TrimLeft(nal, "\x00")
		if len(body) < 2 { // start code byte 0x01 then at least a header
			continue
		}
		hdr := body[1]
		typ := hdr & 0x1f
		startsAU := false
		switch typ {
		case h264NALAUD, h264NALSPS, h264NALPPS, h264NALSEI:
			startsAU = haveVCL
		case h264NALSlice, h264NALIDR:
			// first_mb_in_slice is ue(v); it is 0 exactly when the first bit is 1.
			startsAU = haveVCL && len(body) > 2 && body[2]&0x80 != 0
		}
		if startsAU {
			units = append(units, cur)
			cur, haveVCL = nil, false
		}
		cur = append(cur, nal...)
		if typ == h264NALSlice || typ == h264NALIDR {
			haveVCL = true
		}
	}
	if haveVCL {
		units = append(units, cur)
	}
	return units
}

// IsH264Keyframe reports whether an Annex-B access unit holds an IDR slice.
func IsH264Keyframe(au []byte) bool {
	for _, nal := range splitAnnexB(au) {
		body := bytes.TrimLeft(nal, "\x00")
		if len(body) >= 2 && body[1]&0x1f == h264NALIDR {
			return true
		}
	}
	return false
}

// splitAnnexB cuts an Annex-B stream before each start code; each piece keeps its start code.
func splitAnnexB(data []byte) [][]byte {
	var starts []int
	for i := 0; i+3 <= len(data); i++ {
		if data[i] == 0 && data[i+1] == 0 && data[i+2] == 1 {
			s := i
			if s > 0 && data[s-1] == 0 {
				s--
			}
			starts = append(starts, s)
			i += 2
		}
	}
	out := make([][]byte, 0, len(starts))
	for i, s := range starts {
		e := len(data)
		if i+1 < len(starts) {
			e = starts[i+1]
		}
		out = append(out, data[s:e:e])
	}
	return out
}

// describeH264 counts the access units and IDRs of the generated H.264 file.
func describeH264(path string) (H264File, error) {
	units, err := ReadH264AccessUnits(path)
	if err != nil {
		return H264File{}, err
	}
	if len(units) == 0 || !IsH264Keyframe(units[0]) {
		return H264File{}, fmt.Errorf("%s: %w", path, errNoKeyframe)
	}
	f := H264File{Frames: len(units)}
	for i, u := range units {
		if IsH264Keyframe(u) {
			f.Keyframes = append(f.Keyframes, i)
		}
	}
	return f, nil
}
