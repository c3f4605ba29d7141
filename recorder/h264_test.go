package recorder

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/Eyevinn/mp4ff/avc"
)

// NAL units of the testmedia H.264 fixture (640x360 constrained baseline); slices cut short,
// which the conversion does not mind (it reads slice headers only).
var (
	testSPS = mustHex("6742c01fda0280bfe5c044000003000400000300f23c60ca80")
	testPPS = mustHex("68ce3c80")
	testSEI = mustHex("0605ffff5edc45e9bde6d948b7962cd820d923eeef78")
	testIDR = mustHex("658884320c6001f05b46776502a40024e0215a5da9f0997c2c")
	testP   = mustHex("419a208bc185498653c91c200022292b080b11800a2a6367")
	testAUD = []byte{0x09, 0xf0}
	// crafted: pic_order_cnt_type 1 with 2^40 reference frames in the cycle, which would make
	// mp4ff's SPS parser allocate terabytes.
	evilSPS = mustHex("6742c01fd3" + "0000000000" + "ffffffffff" + "ff80")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// annexB joins NAL units with 4-byte start codes.
func annexB(nalus ...[]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = append(b, 0, 0, 0, 1)
		b = append(b, n...)
	}
	return b
}

// annexB3 joins NAL units with 3-byte start codes.
func annexB3(nalus ...[]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = append(b, 0, 0, 1)
		b = append(b, n...)
	}
	return b
}

func TestAVCConvert(t *testing.T) {
	tests := []struct {
		name  string
		prior [][]byte // access units converted before (parameter sets remembered)
		in    []byte
		err   error // nil: success; errAny: any error
		key   bool
		want  [][]byte // NAL units of the sample
	}{
		{name: "SPS+PPS+IDR", in: annexB(testSPS, testPPS, testIDR), key: true,
			want: [][]byte{testSPS, testPPS, testIDR}},
		{name: "AUD+SPS+PPS+SEI+IDR, 3-byte start codes", in: annexB3(testAUD, testSPS, testPPS, testSEI, testIDR), key: true,
			want: [][]byte{testAUD, testSPS, testPPS, testSEI, testIDR}},
		{name: "non-IDR", in: annexB(testP), want: [][]byte{testP}},
		{name: "non-IDR with trailing zero bytes", in: append(annexB(testP), 0, 0), want: [][]byte{testP}},
		{name: "IDR, no parameter sets ever", in: annexB(testIDR), err: errAVCNoSPS},
		{name: "SPS+IDR, missing PPS", in: annexB(testSPS, testIDR), err: errAVCNoPPS},
		{name: "PPS+IDR, missing SPS", in: annexB(testPPS, testIDR), err: errAVCNoSPS},
		{name: "IDR after parameter sets were seen", prior: [][]byte{annexB(testSPS, testPPS, testIDR)},
			in: annexB(testAUD, testIDR), key: true, want: [][]byte{testAUD, testSPS, testPPS, testIDR}},
		{name: "SPS+IDR after a PPS was seen", prior: [][]byte{annexB(testSPS, testPPS)},
			in: annexB(testSPS, testIDR), key: true, want: [][]byte{testSPS, testPPS, testIDR}},
		{name: "parameter sets alone", in: annexB(testSPS, testPPS), err: errAVCNoSlice},
		{name: "SEI alone", in: annexB(testSEI), err: errAVCNoSlice},
		{name: "empty", in: nil, err: errAVCNoNALU},
		{name: "garbage without start code", in: []byte("definitely not h264"), err: errAVCNoNALU},
		{name: "forbidden bit", in: annexB([]byte{0xe5, 0x88, 0x84}), err: errAVCForbiddenBit},
		{name: "unspecified NAL type", in: annexB([]byte{0x78, 0x00, 0x10}), err: errAny},
		{name: "truncated IDR slice", in: annexB(testSPS, testPPS, []byte{0x65}), err: errAny},
		{name: "IDR with a P slice type", in: annexB(testSPS, testPPS, []byte{0x65, 0x9a, 0x20}), err: errAny},
		{name: "short SPS", in: annexB([]byte{0x67, 0x42}, testPPS, testIDR), err: errAVCBadSPS},
		{name: "truncated SPS", in: annexB(testSPS[:6], testPPS, testIDR), err: errAVCBadSPS},
		{name: "SPS with a huge poc cycle", in: annexB(evilSPS, testPPS, testIDR), err: errAVCBadSPS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c avcConverter
			for _, p := range tc.prior {
				_, _ = c.convert(p)
			}
			au, err := c.convert(tc.in)
			switch {
			case tc.err == nil && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.err != nil && err == nil:
				t.Fatalf("want error %v, got none", tc.err)
			case tc.err != nil && tc.err != errAny && !errors.Is(err, tc.err):
				t.Fatalf("error %v, want %v", err, tc.err)
			case tc.err != nil:
				t.Logf("error: %v", err)
				return
			}
			if au.key != tc.key {
				t.Errorf("key = %v, want %v", au.key, tc.key)
			}
			got, err := avc.GetNalusFromSample(au.sample)
			if err != nil {
				t.Fatalf("sample is not AVCC: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("sample has %d NAL units, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Errorf("NAL unit %d = %x, want %x", i, got[i], tc.want[i])
				}
			}
			if !tc.key {
				if au.config != nil {
					t.Errorf("non-key access unit with a decoder configuration")
				}
				return
			}
			if au.width != 640 || au.height != 360 {
				t.Errorf("size %dx%d, want 640x360", au.width, au.height)
			}
			rec, err := avc.DecodeAVCDecConfRec(au.config)
			if err != nil {
				t.Fatalf("CodecPrivate is not an AVCDecoderConfigurationRecord: %v", err)
			}
			if len(rec.SPSnalus) != 1 || !bytes.Equal(rec.SPSnalus[0], testSPS) || len(rec.PPSnalus) != 1 || !bytes.Equal(rec.PPSnalus[0], testPPS) {
				t.Errorf("decoder configuration holds SPS %x PPS %x", rec.SPSnalus, rec.PPSnalus)
			}
			if rec.AVCProfileIndication != 66 || rec.AVCLevelIndication != 31 {
				t.Errorf("profile %d level %d, want 66 and 31", rec.AVCProfileIndication, rec.AVCLevelIndication)
			}
		})
	}
}

// errAny stands for "some error" in TestAVCConvert.
var errAny = errors.New("any error")

// TestAVCConvertMutations converts thousands of damaged copies of a keyframe: every result is
// an error or a well-formed sample, never a panic.
func TestAVCConvertMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	base := annexB(testAUD, testSPS, testPPS, testSEI, testIDR, testP)
	ok := 0
	for i := 0; i < 5000; i++ {
		in := bytes.Clone(base)
		for n := rng.IntN(8) + 1; n > 0; n-- {
			switch rng.IntN(3) {
			case 0:
				in[rng.IntN(len(in))] = byte(rng.Uint32())
			case 1:
				in = in[:rng.IntN(len(in))]
			default:
				p := rng.IntN(len(in) + 1)
				in = append(in[:p:p], append([]byte{0, 0, 1, byte(rng.Uint32())}, in[p:]...)...)
			}
			if len(in) == 0 {
				break
			}
		}
		var c avcConverter
		au, err := c.convert(in)
		if err != nil {
			continue
		}
		ok++
		if _, err := avc.GetNalusFromSample(au.sample); err != nil {
			t.Fatalf("input %x: sample is not AVCC: %v", in, err)
		}
		if au.key {
			if _, err := avc.DecodeAVCDecConfRec(au.config); err != nil {
				t.Fatalf("input %x: bad decoder configuration: %v", in, err)
			}
		}
	}
	t.Logf("%d of 5000 damaged access units were accepted", ok)
}

// FuzzAVCConvert checks that no input makes the conversion panic.
func FuzzAVCConvert(f *testing.F) {
	f.Add(annexB(testSPS, testPPS, testIDR))
	f.Add(annexB(testP))
	f.Add(annexB(evilSPS, testPPS, testIDR))
	f.Add([]byte{0, 0, 1, 0x67})
	f.Fuzz(func(t *testing.T, in []byte) {
		var c avcConverter
		au, err := c.convert(in)
		if err == nil {
			if _, err := avc.GetNalusFromSample(au.sample); err != nil {
				t.Fatalf("sample is not AVCC: %v", err)
			}
		}
	})
}
