// Package mkv writes WebM/Matroska files in a layout made for crash-safe, incremental upload.
//
// A file is produced as an append-only byte stream:
//
//	EBML header
//	Segment (8-byte size field, "unknown" while recording)
//	  Void     reserved for the SeekHead
//	  Info     with a Duration element holding 0 (= unknown) while recording
//	  Tags     global tags, if any (what the file is a recording of)
//	  Tracks
//	  Cluster* each with a known size, written only once complete
//	  Cues     appended by Finish
//
// Everything after the head (the first HeadLen bytes) is only ever appended, and every
// append is a whole Cluster, so any prefix of the stream ending at a cluster boundary is a
// valid, playable file (a live-style Matroska stream). Finish appends Cues and returns a new
// head of exactly the same length with the Segment size, the SeekHead (Info, Tracks, Cues)
// and the Duration filled in: patching those bytes in place makes the file seekable without
// rewriting anything else. Finalize does the same from a Layout and the cluster index alone,
// which is how an interrupted recording is completed after a crash.
//
// Elements are encoded with github.com/at-wat/ebml-go; this package only decides the layout.
package mkv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
)

// Codec IDs.
const (
	CodecVP8  = "V_VP8"
	CodecVP9  = "V_VP9"
	CodecH264 = "V_MPEG4/ISO/AVC"
	CodecOpus = "A_OPUS"
)

// Track types (Matroska TrackType).
const (
	TypeVideo = 1
	TypeAudio = 2
)

// seekVoidLen is the room reserved for the SeekHead (three entries need about 60 bytes).
const seekVoidLen = 96

// maxClusterSpan bounds a cluster: block timecodes are 16-bit offsets from the cluster's.
const maxClusterSpan = 30000

var (
	idSegment = []byte{0x18, 0x53, 0x80, 0x67}
	idInfo    = []byte{0x15, 0x49, 0xA9, 0x66}
	idTracks  = []byte{0x16, 0x54, 0xAE, 0x6B}
	idCues    = []byte{0x1C, 0x53, 0xBB, 0x6B}
	idTags    = []byte{0x12, 0x54, 0xC3, 0x67}
	// durationZero is a Duration element (ID 0x4489, 8-byte float) holding 0.
	durationZero = []byte{0x44, 0x89, 0x88, 0, 0, 0, 0, 0, 0, 0, 0}
)

// Track describes one track of a file.
type Track struct {
	Number       uint64 `json:"number"`
	Type         int    `json:"type"` // TypeVideo or TypeAudio
	CodecID      string `json:"codec_id"`
	CodecPrivate []byte `json:"codec_private,omitempty"`
	Name         string `json:"name,omitempty"`
	// Video
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
	// Audio
	SampleRate float64 `json:"sample_rate,omitempty"`
	Channels   int     `json:"channels,omitempty"`
}

// Layout records where the patchable elements of a head are. It is all Finalize needs
// besides the cluster index.
type Layout struct {
	HeadLen          int64  `json:"head_len"`
	SegmentDataStart int64  `json:"segment_data_start"`
	SeekOffset       int64  `json:"seek_offset"`
	InfoOffset       int64  `json:"info_offset"`
	DurationOffset   int64  `json:"duration_offset"`
	TracksOffset     int64  `json:"tracks_offset"`
	Head             []byte `json:"head"` // the head as first written
}

// Cluster is one entry of the cluster index.
type Cluster struct {
	Offset   int64 `json:"o"` // from the start of the file
	Size     int64 `json:"s"`
	Timecode int64 `json:"t"` // ms
	End      int64 `json:"e"` // ms: the end of the last block
	// KeyTrack is the track whose keyframe starts the cluster (a cue point), 0 if none.
	KeyTrack uint64 `json:"k,omitempty"`
}

// OpusHead returns the CodecPrivate of an Opus track (RFC 7845 identification header).
func OpusHead(channels int) []byte {
	b := make([]byte, 19)
	copy(b, "OpusHead")
	b[8] = 1
	b[9] = byte(channels)
	binary.LittleEndian.PutUint16(b[10:], 0)     // pre-skip
	binary.LittleEndian.PutUint32(b[12:], 48000) // input sample rate (informational)
	return b
}

type ebmlHeader struct {
	Header webm.EBMLHeader `ebml:"EBML"`
}

type info struct {
	TimecodeScale uint64    `ebml:"TimecodeScale"`
	MuxingApp     string    `ebml:"MuxingApp"`
	WritingApp    string    `ebml:"WritingApp"`
	DateUTC       time.Time `ebml:"DateUTC"`
	Duration      float64   `ebml:"Duration"`
}

type infoElem struct {
	Info info `ebml:"Info"`
}

// tagsElem holds global tags (a Tag with empty Targets applies to the whole file).
type tagsElem struct {
	Tags struct {
		Tag []tagElem `ebml:"Tag"`
	} `ebml:"Tags"`
}

type tagElem struct {
	Targets   struct{}    `ebml:"Targets"`
	SimpleTag []simpleTag `ebml:"SimpleTag"`
}

type simpleTag struct {
	TagName   string `ebml:"TagName"`
	TagString string `ebml:"TagString"`
}

type tracksElem struct {
	Tracks webm.Tracks `ebml:"Tracks"`
}

type clusterElem struct {
	Cluster webm.Cluster `ebml:"Cluster"`
}

type cuesElem struct {
	Cues webm.Cues `ebml:"Cues"`
}

type seekHeadElem struct {
	SeekHead webm.SeekHead `ebml:"SeekHead"`
}

// NewHead builds the head of a file: docType is "webm" or "matroska"; tags (may be nil)
// become global tags of the file (Scan reads them back).
func NewHead(docType string, tracks []Track, app string, created time.Time, tags map[string]string) (Layout, error) {
	var buf bytes.Buffer
	if err := ebml.Marshal(&ebmlHeader{Header: webm.EBMLHeader{
		EBMLVersion: 1, EBMLReadVersion: 1, EBMLMaxIDLength: 4, EBMLMaxSizeLength: 8,
		DocType: docType, DocTypeVersion: 4, DocTypeReadVersion: 2,
	}}, &buf); err != nil {
		return Layout{}, err
	}
	buf.Write(idSegment)
	buf.Write([]byte{0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}) // unknown size
	var l Layout
	l.SegmentDataStart = int64(buf.Len())
	l.SeekOffset = int64(buf.Len())
	buf.Write(voidElement(seekVoidLen))
	l.InfoOffset = int64(buf.Len())
	var ib bytes.Buffer
	if err := ebml.Marshal(&infoElem{Info: info{
		TimecodeScale: 1000000, MuxingApp: app, WritingApp: app, DateUTC: created,
	}}, &ib); err != nil {
		return Layout{}, err
	}
	i := bytes.Index(ib.Bytes(), durationZero)
	if i < 0 {
		return Layout{}, errors.New("mkv: duration element not found in info")
	}
	l.DurationOffset = l.InfoOffset + int64(i)
	buf.Write(ib.Bytes())
	if len(tags) > 0 {
		var te tagsElem
		te.Tags.Tag = []tagElem{{}}
		for _, k := range slices.Sorted(maps.Keys(tags)) {
			te.Tags.Tag[0].SimpleTag = append(te.Tags.Tag[0].SimpleTag, simpleTag{TagName: k, TagString: tags[k]})
		}
		if err := ebml.Marshal(&te, &buf); err != nil {
			return Layout{}, err
		}
	}
	l.TracksOffset = int64(buf.Len())
	var te []webm.TrackEntry
	for _, t := range tracks {
		e := webm.TrackEntry{
			Name: t.Name, TrackNumber: t.Number, TrackUID: t.Number, CodecID: t.CodecID,
			CodecPrivate: t.CodecPrivate, TrackType: uint64(t.Type),
		}
		switch t.Type {
		case TypeVideo:
			e.Video = &webm.Video{PixelWidth: uint64(max(t.Width, 1)), PixelHeight: uint64(max(t.Height, 1))}
		case TypeAudio:
			e.Audio = &webm.Audio{SamplingFrequency: t.SampleRate, Channels: uint64(t.Channels)}
			if t.CodecID == CodecOpus {
				e.SeekPreRoll = 80000000
			}
		}
		te = append(te, e)
	}
	if err := ebml.Marshal(&tracksElem{Tracks: webm.Tracks{TrackEntry: te}}, &buf); err != nil {
		return Layout{}, err
	}
	l.HeadLen = int64(buf.Len())
	l.Head = buf.Bytes()
	return l, nil
}

// voidElement returns a Void element of exactly n bytes (n >= 2).
func voidElement(n int) []byte {
	b := make([]byte, n)
	b[0] = 0xEC
	if n-2 < 127 {
		b[1] = 0x80 | byte(n-2)
		return b
	}
	size := uint64(n - 9)
	b[1] = 0x01
	for i := 0; i < 7; i++ {
		b[8-i] = byte(size >> (8 * i))
	}
	return b
}

// Finalize computes what completes a file whose clusters end at end (the offset right after
// the last cluster): the Cues to append at end and the patched head (same length as
// l.HeadLen) to write at offset 0. duration is in milliseconds.
func Finalize(l Layout, index []Cluster, end int64, duration float64) (cues, head []byte, err error) {
	var cb bytes.Buffer
	var points []webm.CuePoint
	for _, c := range index {
		if c.KeyTrack == 0 {
			continue
		}
		points = append(points, webm.CuePoint{CueTime: uint64(max(c.Timecode, 0)), CueTrackPositions: []webm.CueTrackPosition{{
			CueTrack: c.KeyTrack, CueClusterPosition: uint64(c.Offset - l.SegmentDataStart),
		}}})
	}
	if len(points) == 0 && len(index) > 0 {
		// Audio-only files have no keyframe clusters: cue every cluster on track 1.
		for _, c := range index {
			points = append(points, webm.CuePoint{CueTime: uint64(max(c.Timecode, 0)), CueTrackPositions: []webm.CueTrackPosition{{
				CueTrack: 1, CueClusterPosition: uint64(c.Offset - l.SegmentDataStart),
			}}})
		}
	}
	cuesOffset := end
	if len(points) > 0 {
		if err := ebml.Marshal(&cuesElem{Cues: webm.Cues{CuePoint: points}}, &cb); err != nil {
			return nil, nil, err
		}
	}
	head = bytes.Clone(l.Head)
	if int64(len(head)) != l.HeadLen {
		return nil, nil, fmt.Errorf("mkv: head is %d bytes, layout says %d", len(head), l.HeadLen)
	}
	segSize := end + int64(cb.Len()) - l.SegmentDataStart
	sizeField := head[l.SegmentDataStart-8 : l.SegmentDataStart]
	binary.BigEndian.PutUint64(sizeField, uint64(segSize))
	sizeField[0] = 0x01 // 8-byte vint marker (segSize < 2^56)
	seeks := []webm.Seek{
		{SeekID: idInfo, SeekPosition: uint64(l.InfoOffset - l.SegmentDataStart)},
		{SeekID: idTracks, SeekPosition: uint64(l.TracksOffset - l.SegmentDataStart)},
	}
	if cb.Len() > 0 {
		seeks = append(seeks, webm.Seek{SeekID: idCues, SeekPosition: uint64(cuesOffset - l.SegmentDataStart)})
	}
	var sb bytes.Buffer
	if err := ebml.Marshal(&seekHeadElem{SeekHead: webm.SeekHead{Seek: seeks}}, &sb); err != nil {
		return nil, nil, err
	}
	if sb.Len() > seekVoidLen-2 {
		return nil, nil, fmt.Errorf("mkv: seek head of %d bytes does not fit", sb.Len())
	}
	copy(head[l.SeekOffset:], sb.Bytes())
	copy(head[l.SeekOffset+int64(sb.Len()):], voidElement(seekVoidLen-sb.Len()))
	binary.BigEndian.PutUint64(head[l.DurationOffset+3:], math.Float64bits(duration))
	return cb.Bytes(), head, nil
}

// Muxer collects blocks into clusters. It is not safe for concurrent use.
type Muxer struct {
	layout   Layout
	video    uint64 // number of the video track, 0 if none
	offset   int64  // file offset where the open cluster will go
	open     *webm.Cluster
	openKey  uint64
	openEnd  int64
	lastPTS  map[uint64]int64
	index    []Cluster
	maxSpan  int64
	duration int64
}

// NewMuxer returns a muxer for a file with the given head. Clusters start at each keyframe
// of the video track and at least every maxCluster.
func NewMuxer(l Layout, tracks []Track, maxCluster time.Duration) *Muxer {
	m := &Muxer{layout: l, offset: l.HeadLen, lastPTS: map[uint64]int64{}, maxSpan: min(maxCluster.Milliseconds(), maxClusterSpan)}
	for _, t := range tracks {
		if t.Type == TypeVideo && m.video == 0 {
			m.video = t.Number
		}
	}
	return m
}

// Write adds a frame at pts (ms from the start of the file) lasting dur ms. It returns the
// bytes of a cluster completed by this call (to append to the file), if any, with its index
// entry.
func (m *Muxer) Write(track uint64, pts, dur int64, keyframe bool, data []byte) ([]byte, *Cluster, error) {
	if last, ok := m.lastPTS[track]; ok && pts <= last {
		// Keep every track strictly increasing: two frames of a track at the same time (a
		// late frame, or timestamps a layer switch put a tick apart) are an invalid
		// stream to decoders ("non monotonically increasing dts").
		pts = last + 1
	}
	if pts < 0 {
		pts = 0
	}
	m.lastPTS[track] = pts
	var out []byte
	var done *Cluster
	if m.open != nil {
		start := int64(m.open.Timecode)
		startNew := (track == m.video && keyframe) || pts-start >= m.maxSpan || pts < start-maxClusterSpan
		if startNew {
			var err error
			if out, done, err = m.Flush(); err != nil {
				return nil, nil, err
			}
		}
	}
	if m.open == nil {
		m.open = &webm.Cluster{Timecode: uint64(pts)}
		m.openKey = 0
		m.openEnd = pts
		if track == m.video && keyframe {
			m.openKey = track
		} else if m.video == 0 && len(m.index) == 0 {
			m.openKey = 0
		}
	}
	m.open.SimpleBlock = append(m.open.SimpleBlock, ebml.Block{
		TrackNumber: track, Timecode: int16(pts - int64(m.open.Timecode)), Keyframe: keyframe || track != m.video,
		Data: [][]byte{data},
	})
	m.openEnd = max(m.openEnd, pts+dur)
	m.duration = max(m.duration, pts+dur)
	return out, done, nil
}

// Flush closes the open cluster, returning its bytes and index entry (nil if none was open).
func (m *Muxer) Flush() ([]byte, *Cluster, error) {
	if m.open == nil || len(m.open.SimpleBlock) == 0 {
		m.open = nil
		return nil, nil, nil
	}
	var b bytes.Buffer
	if err := ebml.Marshal(&clusterElem{Cluster: *m.open}, &b); err != nil {
		return nil, nil, err
	}
	c := Cluster{Offset: m.offset, Size: int64(b.Len()), Timecode: int64(m.open.Timecode), End: m.openEnd, KeyTrack: m.openKey}
	m.offset += c.Size
	m.index = append(m.index, c)
	m.open = nil
	return b.Bytes(), &c, nil
}

// Duration returns the end of the latest frame written, in ms.
func (m *Muxer) Duration() int64 { return m.duration }

// Index returns the clusters completed so far.
func (m *Muxer) Index() []Cluster { return m.index }

// Pending reports whether a cluster is open.
func (m *Muxer) Pending() bool { return m.open != nil }

// Layout returns the head layout.
func (m *Muxer) Layout() Layout { return m.layout }
