package recorder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/bits"
	"github.com/pion/rtp/codecs"
)

// H.264 access units are rebuilt by pion's depacketizer as Annex-B byte streams (start codes
// before each NAL unit). Matroska's V_MPEG4/ISO/AVC wants each NAL unit behind a 4-byte length
// and the parameter sets in the track's CodecPrivate as an AVCDecoderConfigurationRecord.
// avcConverter does that conversion with github.com/Eyevinn/mp4ff/avc and checks what it can
// cheaply, so that a malformed payload is an error (the frame is skipped and a keyframe asked
// for), never a panic or a broken file.

// Limits on what a decodable H.264 track can declare.
const (
	maxAVCDimension = 16384
	maxAVCNALUs     = 1024
)

// Errors of the H.264 conversion.
var (
	errAVCNoNALU       = errors.New("h264: no NAL unit in the access unit")
	errAVCForbiddenBit = errors.New("h264: NAL unit with the forbidden bit set")
	errAVCNoSlice      = errors.New("h264: access unit without a coded slice")
	errAVCNoSPS        = errors.New("h264: keyframe without a sequence parameter set")
	errAVCNoPPS        = errors.New("h264: keyframe without a picture parameter set")
	errAVCBadSPS       = errors.New("h264: malformed sequence parameter set")
)

// avcAccessUnit is an access unit made ready for Matroska.
type avcAccessUnit struct {
	// sample is the NAL units, each behind a 4-byte big-endian length (AVCC), parameter sets
	// included: a keyframe always carries the SPS and PPS it needs.
	sample []byte
	// key: the access unit holds an IDR slice.
	key bool
	// For keyframes: the AVCDecoderConfigurationRecord of its parameter sets (the track's
	// CodecPrivate) and the picture size the SPS declares.
	config        []byte
	width, height int
}

// avcConverter converts the access units of one track. It remembers the latest parameter
// sets, for keyframes sent without them. It is not safe for concurrent use.
type avcConverter struct {
	sps, pps []byte
}

// convert turns an Annex-B access unit into an avcAccessUnit. Malformed input is an error.
func (c *avcConverter) convert(annexB []byte) (au avcAccessUnit, err error) {
	defer func() {
		// mp4ff's bit readers are written for well-formed streams: a payload crafted to trip
		// them must cost a frame, not the server.
		if r := recover(); r != nil {
			au, err = avcAccessUnit{}, fmt.Errorf("h264: malformed access unit: %v", r)
		}
	}()
	nalus := avc.ExtractNalusFromByteStream(annexB)
	if len(nalus) > maxAVCNALUs {
		return au, fmt.Errorf("h264: %d NAL units in one access unit", len(nalus))
	}
	var spss, ppss, keep [][]byte
	slices := 0
	for _, n := range nalus {
		// Trailing zero bytes belong to the byte stream (mp4ff trims them from all but the
		// last NAL unit).
		n = bytes.TrimRight(n, "\x00")
		if len(n) == 0 {
			continue
		}
		if n[0]&0x80 != 0 {
			return au, errAVCForbiddenBit
		}
		switch t := avc.GetNaluType(n[0]); {
		case t == 0 || t >= 24:
			// 0 and 24..31 are unspecified (RTP uses them for aggregation and fragments).
			return au, fmt.Errorf("h264: NAL unit of unspecified type %d", t)
		case t == avc.NALU_SPS:
			if err := checkSPS(n); err != nil {
				return au, err
			}
			spss = append(spss, n)
		case t == avc.NALU_PPS:
			if len(n) < 2 {
				return au, errors.New("h264: empty picture parameter set")
			}
			ppss = append(ppss, n)
		case t == avc.NALU_NON_IDR || t == avc.NALU_IDR || t == 2:
			st, err := avc.GetSliceTypeFromNALU(n)
			if err != nil {
				return au, fmt.Errorf("h264: slice header: %w", err)
			}
			if t == avc.NALU_IDR {
				if st != avc.SLICE_I && st != avc.SLICE_SI {
					return au, fmt.Errorf("h264: IDR slice of type %s", st)
				}
				au.key = true
			}
			slices++
		case t == 3 || t == 4:
			slices++ // data partitions B and C
		}
		keep = append(keep, n)
	}
	if len(keep) == 0 {
		return au, errAVCNoNALU
	}
	if len(spss) > 0 {
		c.sps = spss[len(spss)-1]
	}
	if len(ppss) > 0 {
		c.pps = ppss[len(ppss)-1]
	}
	if slices == 0 {
		return au, errAVCNoSlice
	}
	if au.key {
		if len(spss) == 0 {
			if c.sps == nil {
				return au, errAVCNoSPS
			}
			spss = [][]byte{c.sps}
			keep = insertAfter(keep, c.sps, func(avc.NaluType) bool { return false })
		}
		if len(ppss) == 0 {
			if c.pps == nil {
				return au, errAVCNoPPS
			}
			ppss = [][]byte{c.pps}
			keep = insertAfter(keep, c.pps, func(t avc.NaluType) bool { return t == avc.NALU_SPS })
		}
		if au.config, au.width, au.height, err = avcConfig(spss, ppss); err != nil {
			return au, err
		}
	}
	size := 0
	for _, n := range keep {
		size += 4 + len(n)
	}
	au.sample = make([]byte, 0, size)
	for _, n := range keep {
		au.sample = binary.BigEndian.AppendUint32(au.sample, uint32(len(n)))
		au.sample = append(au.sample, n...)
	}
	return au, nil
}

// insertAfter inserts nalu after an access unit delimiter and the NAL units for which after
// is true at the start of list.
func insertAfter(list [][]byte, nalu []byte, after func(avc.NaluType) bool) [][]byte {
	i := 0
	for i < len(list) {
		t := avc.GetNaluType(list[i][0])
		if t != avc.NALU_AUD && !after(t) {
			break
		}
		i++
	}
	out := make([][]byte, 0, len(list)+1)
	out = append(out, list[:i]...)
	out = append(out, nalu)
	return append(out, list[i:]...)
}

// avcConfig builds the AVCDecoderConfigurationRecord of a keyframe's parameter sets and
// reads the picture size.
func avcConfig(spss, ppss [][]byte) (config []byte, width, height int, err error) {
	sps, err := avc.ParseSPSNALUnit(spss[0], false)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: %v", errAVCBadSPS, err)
	}
	width, height = int(sps.Width), int(sps.Height)
	if width <= 0 || height <= 0 || width > maxAVCDimension || height > maxAVCDimension {
		return nil, 0, 0, fmt.Errorf("%w: picture size %dx%d", errAVCBadSPS, width, height)
	}
	rec, err := avc.CreateAVCDecConfRec(spss, ppss, true)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: %v", errAVCBadSPS, err)
	}
	var b bytes.Buffer
	if err := rec.Encode(&b); err != nil {
		return nil, 0, 0, fmt.Errorf("h264: decoder configuration: %w", err)
	}
	return b.Bytes(), width, height, nil
}

// checkSPS reads an SPS as far as num_ref_frames_in_pic_order_cnt_cycle, which mp4ff's
// parser uses as a slice length: the standard bounds it to 255, a crafted SPS could make it
// billions. The fields before it are read exactly as avc.ParseSPSNALUnit does.
func checkSPS(n []byte) error {
	if len(n) < 4 {
		return fmt.Errorf("%w: %d bytes", errAVCBadSPS, len(n))
	}
	r := bits.NewEBSPReader(bytes.NewReader(n[1:]))
	profile := r.Read(8)
	r.Read(16) // constraint flags, level
	r.ReadExpGolomb()
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chroma := byte(r.ReadExpGolomb())
		if chroma == 3 {
			r.ReadFlag()
		}
		r.ReadExpGolomb()
		r.ReadExpGolomb()
		r.ReadFlag()
		if r.ReadFlag() {
			lists := 8
			if chroma == 3 {
				lists = 12
			}
			for i := 0; i < lists; i++ {
				if !r.ReadFlag() {
					continue
				}
				size := 16
				if i >= 6 {
					size = 64
				}
				last, next := 8, 8
				for j := 0; j < size && r.AccError() == nil; j++ {
					if next != 0 {
						next = (last + r.ReadSignedGolomb() + 256) % 256
					}
					if next != 0 {
						last = next
					}
				}
			}
		}
	}
	r.ReadExpGolomb() // log2_max_frame_num_minus4
	if r.ReadExpGolomb() == 1 {
		r.ReadFlag()
		r.ReadSignedGolomb()
		r.ReadSignedGolomb()
		if c := r.ReadExpGolomb(); c > 255 {
			return fmt.Errorf("%w: %d reference frames in the picture order count cycle", errAVCBadSPS, c)
		}
	}
	if err := r.AccError(); err != nil {
		return fmt.Errorf("%w: %v", errAVCBadSPS, err)
	}
	return nil
}

// h264Depacketizer is pion's H.264 depacketizer, reset at the start of each fragmented NAL
// unit: pion keeps the fragments of an unfinished FU-A (its end was lost) and would prepend
// them to the next one.
type h264Depacketizer struct {
	codecs.H264Packet
}

// Unmarshal implements rtp.Depacketizer.
func (d *h264Depacketizer) Unmarshal(payload []byte) ([]byte, error) {
	if len(payload) >= 2 && payload[0]&0x1f == 28 && payload[1]&0x80 != 0 {
		d.H264Packet = codecs.H264Packet{}
	}
	return d.H264Packet.Unmarshal(payload)
}
