package recorder

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/rtp/codecs/vp9"
	"github.com/pion/webrtc/v4"

	"github.com/sanke-edu/sanke/recorder/mkv"
)

// maxPending and maxPendingBytes bound the media buffered while a file gathers its tracks
// (frames, and their bytes): past either the oldest frames are dropped.
const (
	maxPending      = 600
	maxPendingBytes = 16 << 20
)

// Tags of every file: what it is a recording of, exactly (names in keys are escaped, and
// were not one-to-one before). Completing a file from the store alone reads them back.
const (
	tagRoom        = "SANKE_ROOM"
	tagParticipant = "SANKE_PARTICIPANT"
	tagSource      = "SANKE_SOURCE"
	tagRecording   = "SANKE_RECORDING_ID"
)

// maxSIDs bounds the track SIDs a file track lists (and the participant SIDs a manifest
// lists): a participant who republishes again and again continues the same file.
const maxSIDs = 32

// maxTrackName bounds a track name copied into a file (bytes).
const maxTrackName = 256

// avcHeadWait bounds how long after the gather window a file's head waits for the first
// keyframe of an H.264 track, whose parameter sets make the track's CodecPrivate. Past it
// the track is left out of the file.
const avcHeadWait = 8 * time.Second

// fileTrack is one track of a file.
type fileTrack struct {
	mkv.Track
	kind   webrtc.RTPCodecType
	mime   string
	sids   []string
	active *trackReader
	// needKey: video must restart on a keyframe (after dropped media).
	needKey bool
	// dropped: left out of the file (an H.264 track without a keyframe when the head was
	// written); its media is ignored.
	dropped bool
}

// videoConfig is what a keyframe tells about its track: the CodecPrivate it needs (H.264)
// and the picture size.
type videoConfig struct {
	codecPrivate  []byte
	width, height int
}

// frame is media waiting for the file head.
type frame struct {
	ft       *fileTrack
	pts, dur int64
	key      bool
	data     []byte
}

// fileMeta is a file's state file (<name>.json in the session spool directory).
type fileMeta struct {
	Name        string      `json:"name"`
	Key         string      `json:"key"`
	Identity    string      `json:"identity"`
	Group       string      `json:"group"`
	ContentType string      `json:"content_type"`
	StartOffset float64     `json:"start_offset"`
	Layout      mkv.Layout  `json:"layout"`
	Tracks      []metaTrack `json:"tracks"`
	Upload      uploadState `json:"upload"`
}

type metaTrack struct {
	mkv.Track
	SIDs []string `json:"sids"`
}

// outFile is one recorded file: a participant's camera+microphone or screen share.
type outFile struct {
	s *session
	// name and key (with docType and ctype) change while the file gathers its tracks (H.264
	// video makes a .webm an .mkv): takeTrack writes them holding s.mu and mu, so either lock
	// is enough to read them then (currentName).
	name     string
	key      string
	identity string
	group    string
	docType  string
	ctype    string
	created  time.Time

	mu       sync.Mutex
	tracks   []*fileTrack
	fixed    bool // tracks can no longer be added
	gathered bool // the gather window has passed
	headDone bool
	gather   *time.Timer
	pending  []frame
	pendingN int // bytes in pending
	mux      *mkv.Muxer
	layout   mkv.Layout
	spool    *os.File
	idx      *os.File
	written  int64
	closed   bool
	failed   error
	readers  []*trackReader
	up       *uploader
}

func fileExt(mime string) (ext, docType, ctype string) {
	if strings.Contains(mime, "h264") {
		return ".mkv", "matroska", "video/x-matroska"
	}
	return ".webm", "webm", "video/webm"
}

func newOutFile(s *session, identity, group string, n int, mime string, kind webrtc.RTPCodecType) *outFile {
	ext, doc, ctype := fileExt(mime)
	if kind == webrtc.RTPCodecTypeAudio {
		ext, doc, ctype = ".webm", "webm", "video/webm" // may turn into .mkv if H.264 video joins
	}
	f := &outFile{
		s: s, name: fileName(identity, group, n, ext), identity: identity, group: group, docType: doc, ctype: ctype,
		created: time.Now(),
	}
	f.key = s.meta.Prefix + f.name
	f.gather = time.AfterFunc(s.r.opts.GatherWindow, f.gatherDone)
	return f
}

// gatherDone ends the gather window (and, re-armed, the wait for H.264 parameter sets).
func (f *outFile) gatherDone() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fixed, f.gathered = true, true
	f.maybeWriteHeadLocked()
}

// maybeWriteHeadLocked writes the head once the tracks are fixed, media is waiting, every
// track has media or the gather window has passed, and every H.264 track knows its
// CodecPrivate (or avcHeadWait has passed: such a track is then left out).
func (f *outFile) maybeWriteHeadLocked() {
	if f.headDone || f.closed || f.failed != nil || !f.fixed || len(f.pending) == 0 {
		return
	}
	if !f.gathered && !f.allTracksHaveMedia() {
		return
	}
	if f.waitingAVCLocked() {
		if wait := time.Until(f.created.Add(f.s.r.opts.GatherWindow + avcHeadWait)); wait > 0 {
			f.gather.Reset(wait)
			return
		}
		f.dropAVCWithoutConfigLocked()
	}
	f.writeHeadLocked()
}

// waitingAVCLocked reports whether an H.264 track has no CodecPrivate yet.
func (f *outFile) waitingAVCLocked() bool {
	for _, ft := range f.tracks {
		if ft.CodecID == mkv.CodecH264 && len(ft.CodecPrivate) == 0 {
			return true
		}
	}
	return false
}

// dropAVCWithoutConfigLocked leaves out of the file the H.264 tracks that sent no usable
// keyframe: Matroska cannot declare them without their parameter sets.
func (f *outFile) dropAVCWithoutConfigLocked() {
	kept := f.tracks[:0]
	for _, ft := range f.tracks {
		if ft.CodecID == mkv.CodecH264 && len(ft.CodecPrivate) == 0 {
			ft.dropped = true
			f.s.log.Warn("H.264 track left out of the file: no keyframe with parameter sets arrived",
				"file", f.name, "track", ft.sids)
			continue
		}
		kept = append(kept, ft)
	}
	f.tracks = kept
}

// currentName returns the file's name, which may still change while the file gathers.
func (f *outFile) currentName() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.name
}

// takeTrack returns the file's track for kind/codec, adding one while the file gathers.
func (f *outFile) takeTrack(kind webrtc.RTPCodecType, mime string, info *livekit.TrackInfo) (*fileTrack, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, false
	}
	for _, ft := range f.tracks {
		if ft.kind == kind {
			if ft.mime != mime {
				return nil, false
			}
			if len(ft.sids) < maxSIDs {
				ft.sids = appendUnique(ft.sids, info.GetSid())
			}
			ft.needKey = true
			return ft, true
		}
	}
	if f.fixed {
		return nil, false
	}
	ft := &fileTrack{kind: kind, mime: mime, sids: []string{info.GetSid()}, needKey: true}
	ft.Number = uint64(len(f.tracks) + 1)
	ft.CodecID = codecID(mime)
	ft.Name = truncateUTF8(info.GetName(), maxTrackName)
	if kind == webrtc.RTPCodecTypeVideo {
		ft.Type = mkv.TypeVideo
		ft.Width, ft.Height = int(info.GetWidth()), int(info.GetHeight())
		for _, l := range info.GetLayers() { //nolint:staticcheck // LiveKit protocol: TrackInfo.layers has the sizes
			ft.Width, ft.Height = max(ft.Width, int(l.GetWidth())), max(ft.Height, int(l.GetHeight()))
		}
		if ext, doc, ctype := fileExt(mime); !strings.HasSuffix(f.name, ext) {
			// Audio came first (a .webm) and H.264 video joins: the file becomes Matroska.
			f.name = strings.TrimSuffix(f.name, ".webm") + ext
			f.key = f.s.meta.Prefix + f.name
			f.docType, f.ctype = doc, ctype
		}
	} else {
		ft.Type = mkv.TypeAudio
		ft.SampleRate, ft.Channels = 48000, 2
		ft.CodecPrivate = mkv.OpusHead(2)
	}
	f.tracks = append(f.tracks, ft)
	if len(f.tracks) == 2 {
		// Camera and microphone (or screen and its audio): nothing else will join.
		f.fixed = true
	}
	return ft, true
}

// truncateUTF8 cuts s to at most n bytes, on a character boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func appendUnique(list []string, s string) []string {
	if s == "" || contains(list, s) {
		return list
	}
	return append(list, s)
}

func (f *outFile) attachReader(ft *fileTrack, tr *trackReader, _ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old := ft.active; old != nil {
		old.stop()
	}
	ft.active = tr
	// Readers replaced by a republished track are dropped, so republishing keeps nothing.
	f.readers = slices.DeleteFunc(f.readers, func(r *trackReader) bool { return r.stopped.Load() })
	f.readers = append(f.readers, tr)
}

func (f *outFile) stopReaders() {
	f.mu.Lock()
	rs := append([]*trackReader(nil), f.readers...)
	f.mu.Unlock()
	for _, r := range rs {
		r.stop()
	}
}

// write adds a frame from reader tr. pts is in ms since f.created. cfg comes with H.264
// keyframes.
func (f *outFile) write(tr *trackReader, ft *fileTrack, pts, dur int64, key bool, data []byte, cfg *videoConfig) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || ft.active != tr || f.failed != nil || ft.dropped {
		return
	}
	video := ft.Type == mkv.TypeVideo
	if f.s.r.spoolFull.Load() {
		if video {
			ft.needKey = true
		}
		return
	}
	if video && ft.needKey {
		if !key {
			tr.askKeyframe()
			return
		}
		ft.needKey = false
	}
	if video && key && !f.headDone {
		switch {
		case ft.CodecID == mkv.CodecVP8:
			if w, h, ok := vp8Size(data); ok {
				ft.Width, ft.Height = max(ft.Width, w), max(ft.Height, h)
			}
		case ft.CodecID == mkv.CodecVP9:
			if w, h, ok := vp9Size(data); ok {
				ft.Width, ft.Height = max(ft.Width, w), max(ft.Height, h)
			}
		case ft.CodecID == mkv.CodecH264 && cfg != nil:
			// The first keyframe's parameter sets declare the track; later ones travel
			// in-band (every keyframe carries its SPS and PPS), so a size change decodes.
			if len(ft.CodecPrivate) == 0 {
				ft.CodecPrivate = cfg.codecPrivate
			}
			ft.Width, ft.Height = max(ft.Width, cfg.width), max(ft.Height, cfg.height)
		}
	}
	if !f.headDone {
		for len(f.pending) > 0 && (len(f.pending) >= maxPending || f.pendingN+len(data) > maxPendingBytes) {
			f.pendingN -= len(f.pending[0].data)
			f.pending = f.pending[1:]
		}
		f.pending = append(f.pending, frame{ft: ft, pts: pts, dur: dur, key: key, data: data})
		f.pendingN += len(data)
		f.maybeWriteHeadLocked()
		return
	}
	f.muxLocked(ft, pts, dur, key, data)
}

func (f *outFile) allTracksHaveMedia() bool {
	for _, ft := range f.tracks {
		found := false
		for _, p := range f.pending {
			if p.ft == ft {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// writeHeadLocked fixes the tracks, writes the head and the media that waited for it.
func (f *outFile) writeHeadLocked() {
	f.fixed = true
	f.gather.Stop()
	tracks := make([]mkv.Track, len(f.tracks))
	for i, ft := range f.tracks {
		tracks[i] = ft.Track
	}
	l, err := mkv.NewHead(f.docType, tracks, "sanke", f.created, map[string]string{
		tagRoom: f.s.room, tagParticipant: f.identity, tagSource: f.group, tagRecording: f.s.id,
	})
	if err == nil {
		err = os.MkdirAll(f.s.dir, 0o755)
	}
	if err == nil {
		f.spool, err = os.OpenFile(filepath.Join(f.s.dir, f.name), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	}
	if err == nil {
		f.idx, err = os.OpenFile(filepath.Join(f.s.dir, f.name+".idx"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
	}
	if err == nil {
		_, err = f.spool.Write(l.Head)
	}
	if err != nil {
		f.closeSpoolLocked()
		f.spoolFailedLocked(err)
		return
	}
	f.layout = l
	f.written = l.HeadLen
	f.mux = mkv.NewMuxer(l, tracks, f.s.r.opts.ClusterMax)
	f.headDone = true
	f.up = newUploader(f)
	f.saveMetaLocked()
	pend := f.pending
	f.pending, f.pendingN = nil, 0
	sort.SliceStable(pend, func(i, j int) bool { return pend[i].pts < pend[j].pts })
	for _, p := range pend {
		f.muxLocked(p.ft, p.pts, p.dur, p.key, p.data)
	}
	f.s.log.Info("file started", "file", f.name, "tracks", len(tracks))
	go f.up.run()
}

// fail stops writing the file: what was written is kept and completed at the end. f.mu held.
func (f *outFile) fail(err error) {
	if f.failed == nil {
		f.failed = err
		f.s.log.Error("recording file failed: it is completed as far as it was written", "file", f.name, "err", err)
	}
}

// spoolFailedLocked is fail for an error writing the spool (a full disk). f.mu held.
func (f *outFile) spoolFailedLocked(err error) {
	f.fail(err)
	f.s.r.spoolFailed(err)
}

// isFailed reports whether writing the file failed.
func (f *outFile) isFailed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed != nil
}

// closeSpoolLocked closes the spool and index files, if open. f.mu held.
func (f *outFile) closeSpoolLocked() {
	if f.idx != nil {
		_ = f.idx.Close()
		f.idx = nil
	}
	if f.spool != nil && !f.headDone {
		_ = f.spool.Close()
		f.spool = nil
	}
}

func (f *outFile) muxLocked(ft *fileTrack, pts, dur int64, key bool, data []byte) {
	b, c, err := f.mux.Write(ft.Number, pts, dur, key, data)
	if err != nil {
		f.fail(err)
		return
	}
	if c != nil {
		f.appendClusterLocked(b, c)
	}
}

// appendClusterLocked appends a complete cluster to the spool, then its index entry.
func (f *outFile) appendClusterLocked(b []byte, c *mkv.Cluster) {
	if _, err := f.spool.WriteAt(b, c.Offset); err != nil {
		f.spoolFailedLocked(err)
		return
	}
	line, _ := json.Marshal(c)
	if _, err := f.idx.Write(append(line, '\n')); err != nil {
		f.spoolFailedLocked(err)
		return
	}
	f.written = c.Offset + c.Size
	f.up.setWritten(f.written)
}

func (f *outFile) metaLocked() fileMeta {
	m := fileMeta{
		Name: f.name, Key: f.key, Identity: f.identity, Group: f.group, ContentType: f.ctype,
		StartOffset: f.created.Sub(f.s.meta.StartedAt).Seconds(), Layout: f.layout,
	}
	for _, ft := range f.tracks {
		m.Tracks = append(m.Tracks, metaTrack{Track: ft.Track, SIDs: ft.sids})
	}
	if f.up != nil {
		m.Upload = f.up.snapshot()
	}
	return m
}

// saveMetaLocked writes <name>.json. f.mu must be held (the uploader calls saveMeta).
func (f *outFile) saveMetaLocked() {
	b, _ := json.Marshal(f.metaLocked())
	if err := writeFileAtomic(filepath.Join(f.s.dir, f.name+".json"), b); err != nil {
		f.s.log.Error("cannot save file state", "file", f.name, "err", err)
	}
}

func (f *outFile) saveMeta() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saveMetaLocked()
}

// handOver moves f's running tracks into to, the file replacing f: each continues there
// (video from its next keyframe) from its next frame on, so a track that joins late never
// ends the recording of those already there. A track to cannot take (one of the same kind
// with another codec replaces it) stays in f and ends with it.
func (f *outFile) handOver(to *outFile) {
	f.mu.Lock()
	var moving []*fileTrack
	for _, ft := range f.tracks {
		if tr := ft.active; tr != nil && !tr.stopped.Load() && !ft.dropped {
			moving = append(moving, ft)
		}
	}
	f.mu.Unlock()
	for _, ft := range moving {
		info := &livekit.TrackInfo{Name: ft.Name, Width: uint32(ft.Width), Height: uint32(ft.Height)}
		if len(ft.sids) > 0 {
			info.Sid = ft.sids[len(ft.sids)-1]
		}
		nft, ok := to.takeTrack(ft.kind, ft.mime, info)
		if !ok {
			continue
		}
		f.mu.Lock()
		tr := ft.active
		// finishEarly stops f's readers: this one goes on, into to.
		f.readers = slices.DeleteFunc(f.readers, func(r *trackReader) bool { return r == tr })
		f.mu.Unlock()
		if tr == nil {
			continue
		}
		to.attachReader(nft, tr, info.Sid)
		tr.moveTo(to, nft)
	}
}

// finishEarly completes a file replaced by a new one (its track set changed) in the
// background; the session's finish waits for it like for any other file.
func (f *outFile) finishEarly() {
	f.mu.Lock()
	f.fixed = true
	f.mu.Unlock()
	f.stopReaders()
}

// close stops the file and finalizes it in the spool (no store call): cues and the patched
// head after the last cluster written. It returns nil, nil for a file that never received
// media. A file whose writing failed (a full disk) is completed as far as it was written;
// either way nothing of it is left running: its uploader is stopped, its share of the spool
// accounting given back and its index file closed.
func (f *outFile) close() (*spooledFile, error) {
	f.mu.Lock()
	if !f.closed {
		f.closed = true
		f.gather.Stop()
		if !f.headDone && len(f.pending) > 0 && f.failed == nil {
			f.dropAVCWithoutConfigLocked()
			f.writeHeadLocked()
		}
		if f.headDone && f.failed == nil {
			b, c, err := f.mux.Flush()
			if err != nil {
				f.fail(err)
			} else if c != nil {
				f.appendClusterLocked(b, c)
			}
		}
		f.pending, f.pendingN = nil, 0
	}
	headDone, failed, written := f.headDone, f.failed, f.written
	f.closeSpoolLocked()
	f.mu.Unlock()
	if !headDone {
		return nil, failed
	}
	f.up.stop()
	f.up.release()
	// The clusters written, all of them unless writing failed.
	var index []mkv.Cluster
	var dur int64
	for _, c := range f.mux.Index() {
		if c.Offset+c.Size > written {
			break
		}
		index = append(index, c)
		dur = max(dur, c.End)
	}
	if failed == nil {
		dur = f.mux.Duration()
	} else if len(index) == 0 {
		_ = f.spool.Close()
		removeSpooled(f.s.dir, f.name)
		return nil, failed
	}
	sf, err := finalizeSpool(f.s.r, f.s.dir, f.metaForFinish(), f.spool, index, float64(dur))
	if err != nil {
		return nil, err
	}
	if failed != nil {
		f.s.log.Warn("a file whose writing failed is kept as far as it was written", "file", f.name,
			"clusters", len(index), "duration_ms", dur, "err", failed)
	}
	return sf, nil
}

func (f *outFile) metaForFinish() fileMeta {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.metaLocked()
}

// spooledFile is a file finalized in the spool, to be stored.
type spooledFile struct {
	dir   string
	meta  fileMeta
	spool *os.File
	total int64
	// entry is the file's manifest entry.
	entry ManifestFile
}

// finalizeSpool finalizes a spooled file in place: the clusters of index, then cues and the
// patched head, so that it is seekable. If the spool cannot take the cues (a full disk), the
// file is kept without them: playable, seeking by scanning. Both the end of a recording and
// crash recovery use it; doing it again on the same spool gives the same file.
func finalizeSpool(r *Recorder, dir string, m fileMeta, spool *os.File, index []mkv.Cluster, durationMs float64) (*spooledFile, error) {
	end := m.Layout.HeadLen
	if n := len(index); n > 0 {
		end = index[n-1].Offset + index[n-1].Size
	}
	total, indexed := end, true
	cues, head, err := mkv.Finalize(m.Layout, index, end, durationMs)
	if err == nil {
		_, err = spool.WriteAt(cues, end)
	}
	if err == nil {
		err = spool.Truncate(end + int64(len(cues)))
	}
	if err == nil {
		if _, err = spool.WriteAt(head, 0); err != nil {
			// The head may be half written: put the original back, or the file is lost.
			if _, rerr := spool.WriteAt(m.Layout.Head, 0); rerr != nil {
				return nil, fmt.Errorf("restoring the head: %w (after %v)", rerr, err)
			}
		}
	}
	if err == nil {
		total = end + int64(len(cues))
	} else {
		// Stored as written, up to the last cluster (bytes past it are not uploaded).
		r.log.Warn("cannot add the cues to a file: it is stored without them (playable, seeking scans)", "file", m.Name, "err", err)
		indexed = false
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(spool, 0, total)); err != nil {
		return nil, err
	}
	mf := ManifestFile{
		Name: m.Name, Key: m.Key, Participant: m.Identity, Source: m.Group, ContentType: m.ContentType,
		StartOffset: m.StartOffset, Duration: durationMs / 1000, Size: total,
		SHA256: hex.EncodeToString(h.Sum(nil)), Indexed: indexed, Tracks: []ManifestTrack{},
	}
	for _, t := range m.Tracks {
		kind := "audio"
		if t.Type == mkv.TypeVideo {
			kind = "video"
		}
		mf.Tracks = append(mf.Tracks, ManifestTrack{Number: t.Number, Kind: kind, Codec: t.CodecID,
			Width: t.Width, Height: t.Height, TrackSIDs: t.SIDs})
	}
	return &spooledFile{dir: dir, meta: m, spool: spool, total: total, entry: mf}, nil
}

// store uploads what the store does not have of the file yet, completes it there and
// removes it from the spool. Retries until ctx ends.
func (sf *spooledFile) store(ctx context.Context, r *Recorder) error {
	m := sf.meta
	u := &uploader{r: r, key: m.Key, spool: sf.spool, state: m.Upload, tailPrefix: tailPrefix(m.Key)}
	if err := u.complete(ctx, sf.total); err != nil {
		return err
	}
	_ = sf.spool.Close()
	removeSpooled(sf.dir, m.Name)
	return nil
}

// removeSpooled removes a file and its state from the spool.
func removeSpooled(dir, name string) {
	for _, suffix := range []string{"", ".idx", ".json"} {
		_ = os.Remove(filepath.Join(dir, name+suffix))
	}
}

// readIndex loads a file's cluster index, ignoring a torn last line and clusters that are
// not entirely in a spool of size size.
func readIndex(p string, size int64) ([]mkv.Cluster, error) {
	fh, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer func() { _ = fh.Close() }() // only read from: closing loses nothing
	var out []mkv.Cluster
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var next int64 = -1
	for sc.Scan() {
		var c mkv.Cluster
		if json.Unmarshal(sc.Bytes(), &c) != nil {
			break
		}
		if (next >= 0 && c.Offset != next) || c.Offset+c.Size > size {
			break
		}
		next = c.Offset + c.Size
		out = append(out, c)
	}
	return out, nil
}

func codecID(mime string) string {
	switch {
	case strings.HasSuffix(mime, "vp8"):
		return mkv.CodecVP8
	case strings.HasSuffix(mime, "vp9"):
		return mkv.CodecVP9
	case strings.HasSuffix(mime, "h264"):
		return mkv.CodecH264
	default:
		return mkv.CodecOpus
	}
}

func supportedCodec(mime string) bool {
	switch mime {
	case "video/vp8", "video/vp9", "video/h264", "audio/opus":
		return true
	}
	return false
}

// vp8Size reads the frame size of a VP8 keyframe.
func vp8Size(b []byte) (w, h int, ok bool) {
	if len(b) < 10 || b[0]&1 != 0 || b[3] != 0x9d || b[4] != 0x01 || b[5] != 0x2a {
		return 0, 0, false
	}
	w = int(b[6]) | int(b[7]&0x3f)<<8
	h = int(b[8]) | int(b[9]&0x3f)<<8
	return w, h, w > 0 && h > 0
}

// vp9Size returns the frame size a VP9 keyframe's uncompressed header declares.
func vp9Size(b []byte) (w, h int, ok bool) {
	var hdr vp9.Header
	if err := hdr.Unmarshal(b); err != nil || hdr.ShowExistingFrame || hdr.NonKeyFrame {
		return 0, 0, false
	}
	w, h = int(hdr.Width()), int(hdr.Height())
	return w, h, w > 0 && h > 0
}
