package mkv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/at-wat/ebml-go"
)

// Element IDs Scan looks for besides those of the head.
var (
	idEBML     = []byte{0x1A, 0x45, 0xDF, 0xA3}
	idSeekHead = []byte{0x11, 0x4D, 0x9B, 0x74}
	idCluster  = []byte{0x1F, 0x43, 0xB6, 0x75}
	idVoid     = []byte{0xEC}
	idDuration = []byte{0x44, 0x89}
)

// maxElementSize bounds an element Scan reads into memory (a cluster spans at most 30 s).
const maxElementSize = 256 << 20

// lastBlockDuration is the duration Scan gives the last block of a file (blocks carry none).
const lastBlockDuration = 20

// Scanned is what Scan found in a file.
type Scanned struct {
	// Layout is the head's layout, Head as found (Finalize patches it).
	Layout Layout
	// Tracks are the file's tracks.
	Tracks []Track
	// Created is the Info DateUTC: when the file was started.
	Created time.Time
	// Tags are the file's global tags (NewHead), nil if none.
	Tags map[string]string
	// Index lists the complete clusters, End is the offset right after the last one.
	Index []Cluster
	End   int64
	// Duration is the end of the last block in ms (for a finalized file, its Duration).
	Duration int64
	// Finalized: the Segment has a known size, Finish or Finalize already completed the
	// file. Scan stops after the head.
	Finalized bool
}

// Scan reads from r a file written by this package, possibly cut after any cluster, and
// rebuilds what Finalize needs: the head's layout and the cluster index. This is how a file
// is completed when nothing but its bytes is left (the spool with its index was lost). Each
// element read is copied to w once complete, so w receives exactly the bytes [0, End). A
// truncated or unknown element after the head ends the scan without error.
func Scan(r io.Reader, w io.Writer) (*Scanned, error) {
	sc := &scanner{r: bufio.NewReaderSize(r, 64<<10), w: w}
	out, err := sc.head()
	if err != nil || out.Finalized {
		return out, err
	}
	video := uint64(0)
	for _, t := range out.Tracks {
		if t.Type == TypeVideo && video == 0 {
			video = t.Number
		}
	}
	out.End = out.Layout.HeadLen
	for {
		off := sc.off
		id, b, err := sc.element()
		if err != nil || !bytes.Equal(id, idCluster) {
			return out, nil // end of file, a torn cluster, or the Cues of a finished file
		}
		var ce clusterElem
		if err := ebml.Unmarshal(bytes.NewReader(b), &ce, ebml.WithIgnoreUnknown(true)); err != nil {
			return out, nil
		}
		c := Cluster{Offset: off, Size: int64(len(b)), Timecode: int64(ce.Cluster.Timecode), End: int64(ce.Cluster.Timecode)}
		for i, bl := range ce.Cluster.SimpleBlock {
			if i == 0 && bl.TrackNumber == video && bl.Keyframe {
				c.KeyTrack = video
			}
			c.End = max(c.End, c.Timecode+int64(bl.Timecode)+lastBlockDuration)
		}
		if _, err := w.Write(b); err != nil {
			return nil, err
		}
		out.Index = append(out.Index, c)
		out.End = off + c.Size
		out.Duration = max(out.Duration, c.End)
	}
}

type scanner struct {
	r        *bufio.Reader
	w        io.Writer
	off      int64
	lastSize []byte // the size field of the last header read
}

// head reads and copies the EBML header, the Segment header, the SeekHead or Void, Info,
// Tags and Tracks.
func (sc *scanner) head() (*Scanned, error) {
	out := &Scanned{}
	var head bytes.Buffer
	id, b, err := sc.element()
	if err != nil || !bytes.Equal(id, idEBML) {
		return nil, fmt.Errorf("mkv: not an EBML file (%v)", err)
	}
	head.Write(b)
	id, sizeLen, size, err := sc.header()
	if err != nil || !bytes.Equal(id, idSegment) || sizeLen != 8 {
		return nil, fmt.Errorf("mkv: no Segment of 8-byte size after the EBML header (%v)", err)
	}
	head.Write(idSegment)
	head.Write(sc.lastSize)
	out.Finalized = size >= 0
	l := &out.Layout
	l.SegmentDataStart = sc.off
	for l.TracksOffset == 0 {
		off := sc.off
		id, b, err := sc.element()
		if err != nil {
			return nil, fmt.Errorf("mkv: head: %w", err)
		}
		switch {
		case bytes.Equal(id, idSeekHead) || bytes.Equal(id, idVoid):
			if l.SeekOffset == 0 {
				l.SeekOffset = off
			}
		case bytes.Equal(id, idInfo):
			l.InfoOffset = off
			var ie infoElem
			if err := ebml.Unmarshal(bytes.NewReader(b), &ie, ebml.WithIgnoreUnknown(true)); err != nil {
				return nil, fmt.Errorf("mkv: info: %w", err)
			}
			out.Created = ie.Info.DateUTC
			if out.Finalized {
				out.Duration = int64(ie.Info.Duration)
			}
			i, ok := findChild(b[len(id)+len(sc.lastSize):], idDuration, 8)
			if !ok {
				return nil, errors.New("mkv: info has no 8-byte Duration")
			}
			l.DurationOffset = off + int64(len(id)+len(sc.lastSize)+i)
		case bytes.Equal(id, idTags):
			var te tagsElem
			if err := ebml.Unmarshal(bytes.NewReader(b), &te, ebml.WithIgnoreUnknown(true)); err != nil {
				return nil, fmt.Errorf("mkv: tags: %w", err)
			}
			for _, t := range te.Tags.Tag {
				for _, st := range t.SimpleTag {
					if out.Tags == nil {
						out.Tags = map[string]string{}
					}
					out.Tags[st.TagName] = st.TagString
				}
			}
		case bytes.Equal(id, idTracks):
			l.TracksOffset = off
			var te tracksElem
			if err := ebml.Unmarshal(bytes.NewReader(b), &te, ebml.WithIgnoreUnknown(true)); err != nil {
				return nil, fmt.Errorf("mkv: tracks: %w", err)
			}
			for _, e := range te.Tracks.TrackEntry {
				t := Track{Number: e.TrackNumber, Type: int(e.TrackType), CodecID: e.CodecID, CodecPrivate: e.CodecPrivate, Name: e.Name}
				if e.Video != nil {
					t.Width, t.Height = int(e.Video.PixelWidth), int(e.Video.PixelHeight)
				}
				if e.Audio != nil {
					t.SampleRate, t.Channels = e.Audio.SamplingFrequency, int(e.Audio.Channels)
				}
				out.Tracks = append(out.Tracks, t)
			}
		default:
			return nil, fmt.Errorf("mkv: unexpected element %x in the head", id)
		}
		head.Write(b)
	}
	if l.SeekOffset == 0 || l.InfoOffset == 0 {
		return nil, errors.New("mkv: head without a SeekHead space or Info")
	}
	l.HeadLen = sc.off
	l.Head = head.Bytes()
	if _, err := sc.w.Write(l.Head); err != nil {
		return nil, err
	}
	return out, nil
}

// findChild returns the offset in body (the data of a master element) of the child element
// with the given ID and data size.
func findChild(body, id []byte, size int64) (int, bool) {
	sc := &scanner{r: bufio.NewReader(bytes.NewReader(body))}
	for {
		off := sc.off
		cid, _, n, err := sc.header()
		if err != nil || n < 0 {
			return 0, false
		}
		if bytes.Equal(cid, id) && n == size {
			return int(off), true
		}
		if _, err := sc.r.Discard(int(n)); err != nil {
			return 0, false
		}
		sc.off += n
	}
}

// element reads a whole element: its ID and all its bytes (header included). The bytes
// are not copied to w.
func (sc *scanner) element() (id, b []byte, err error) {
	id, _, size, err := sc.header()
	if err != nil {
		return nil, nil, err
	}
	if size < 0 || size > maxElementSize {
		return nil, nil, fmt.Errorf("mkv: element %x of size %d", id, size)
	}
	b = make([]byte, 0, len(id)+len(sc.lastSize)+int(size))
	b = append(append(b, id...), sc.lastSize...)
	b = b[:cap(b)]
	if _, err := io.ReadFull(sc.r, b[len(id)+len(sc.lastSize):]); err != nil {
		return nil, nil, err
	}
	sc.off += size
	return id, b, nil
}

// header reads an element ID and size (-1: unknown); sc.lastSize keeps the size's bytes.
func (sc *scanner) header() (id []byte, sizeLen int, size int64, err error) {
	id, err = sc.vint(4)
	if err != nil {
		return nil, 0, 0, err
	}
	s, err := sc.vint(8)
	if err != nil {
		return nil, 0, 0, err
	}
	sc.lastSize = s
	size = int64(s[0] & (0xFF >> len(s)))
	unknown := size == int64(0xFF>>len(s))
	for _, c := range s[1:] {
		size = size<<8 | int64(c)
		unknown = unknown && c == 0xFF
	}
	if unknown {
		size = -1
	}
	return id, len(s), size, nil
}

// vint reads an EBML variable-length integer of at most maxLen bytes, as raw bytes.
func (sc *scanner) vint(maxLen int) ([]byte, error) {
	first, err := sc.r.ReadByte()
	if err != nil {
		return nil, err
	}
	n := 1
	for n <= 8 && first&(0x80>>(n-1)) == 0 {
		n++
	}
	if n > maxLen {
		return nil, fmt.Errorf("mkv: bad variable-length integer %#x", first)
	}
	b := make([]byte, n)
	b[0] = first
	if _, err := io.ReadFull(sc.r, b[1:]); err != nil {
		return nil, err
	}
	sc.off += int64(n)
	return b, nil
}
