package recorder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/sanke-edu/sanke/recorder/mkv"
	"github.com/sanke-edu/sanke/recorder/storage"
)

// Completing a recording from the store alone (its node crashed and lost its spool) happens
// in two steps, each safe to interrupt:
//
//  1. The multipart upload is completed from its parts followed by the tail objects that
//     continue them (or, without parts, the tails are stored as one object), and the tails
//     are deleted. Nothing uploaded can be lost after this step: the object is a prefix of
//     the recording ending at a cluster boundary, playable but without cues or duration.
//  2. The object is read back: mkv.Scan rebuilds the head's layout and the cluster index,
//     and the object is stored again, by a new multipart upload, with the cues appended and
//     the head patched (duration, seek head), the same finish as from the spool. Part 1,
//     with the patched head, is uploaded last: an interrupted rewrite leaves an upload
//     without a complete run of parts from 1, which the next sweep aborts, and the object of
//     step 1 stays as it was.

// sweepStore completes multipart uploads and tail objects that no recording of this node
// owns and that have not changed for StaleAfter: recordings of a node that crashed and lost
// its spool. Tail-only files (shorter than one part) are looked for only when full is set
// (a listing of every object under the prefix). It returns how long until the last upload it
// left alone as recently active goes stale (0 if none), so that start-up can look again then.
func (r *Recorder) sweepStore(full bool) (again time.Duration) {
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Minute)
	defer cancel()
	store := r.opts.Store
	uploads, err := store.ListMultipart(ctx, r.opts.Prefix)
	if err != nil {
		r.log.Warn("recovery sweep: cannot list uploads", "err", err)
		return 0
	}
	owned := r.ownedKeys()
	sessions := map[string]bool{}
	handled := map[string]bool{}
	found := map[string]*storedFile{}
	skip := func(newest time.Time) {
		again = max(again, time.Until(newest.Add(r.opts.StaleAfter)))
	}
	for _, u := range uploads {
		if owned[u.Key] {
			continue
		}
		parts, err := store.ListParts(ctx, u.Key, u.UploadID)
		if err != nil {
			continue
		}
		tails, _ := store.List(ctx, tailPrefix(u.Key))
		if newest, active := r.active(u.Started, parts, tails); active {
			skip(newest)
			continue
		}
		handled[u.Key] = true
		sf, err := r.completeFromStore(ctx, u.Key, u.UploadID, parts, tails)
		if err != nil {
			r.log.Error("recovery sweep: cannot complete upload", "key", u.Key, "err", err)
			continue
		}
		if sf != nil {
			found[u.Key] = sf
			sessions[path.Dir(u.Key)+"/"] = true
		}
	}
	if full {
		objs, err := store.List(ctx, r.opts.Prefix)
		if err == nil {
			byFile := map[string][]storage.Object{}
			for _, o := range objs {
				i := strings.Index(o.Key, "/"+inProgressDir)
				if i < 0 {
					continue
				}
				rest := o.Key[i+1+len(inProgressDir):]
				name, _, ok := strings.Cut(rest, "/")
				if !ok {
					continue
				}
				key := o.Key[:i+1] + name
				byFile[key] = append(byFile[key], o)
			}
			for key, tails := range byFile {
				if owned[key] || handled[key] {
					continue
				}
				if newest, active := r.active(time.Time{}, nil, tails); active {
					skip(newest)
					continue
				}
				sf, err := r.completeFromStore(ctx, key, "", nil, tails)
				if err != nil {
					r.log.Error("recovery sweep: cannot complete file", "key", key, "err", err)
					continue
				}
				if sf != nil {
					found[key] = sf
					sessions[path.Dir(key)+"/"] = true
				}
			}
		}
	}
	for prefix := range sessions {
		if err := r.writeRecoveredManifest(ctx, prefix, found); err != nil {
			r.log.Error("recovery sweep: cannot write manifest", "prefix", prefix, "err", err)
		}
	}
	return again
}

// ownedKeys lists the file keys of this node's recordings in progress.
func (r *Recorder) ownedKeys() map[string]bool {
	r.mu.Lock()
	ss := make([]*session, 0, len(r.sessions))
	for _, s := range r.sessions {
		ss = append(ss, s)
	}
	r.mu.Unlock()
	out := map[string]bool{}
	for _, s := range ss {
		s.mu.Lock()
		for _, f := range s.files {
			f.mu.Lock()
			out[f.key] = true
			f.mu.Unlock()
		}
		s.mu.Unlock()
	}
	return out
}

// active reports whether an upload changed within StaleAfter, and when it last changed.
func (r *Recorder) active(started time.Time, parts []storage.Part, tails []storage.Object) (time.Time, bool) {
	newest := started
	for _, p := range parts {
		if p.Modified.After(newest) {
			newest = p.Modified
		}
	}
	for _, t := range tails {
		if t.Modified.After(newest) {
			newest = t.Modified
		}
	}
	return newest, time.Since(newest) < r.opts.StaleAfter
}

// storedFile is what completing a file from the store learned about it, for the manifest.
type storedFile struct {
	// scan is nil when the file could not be read back (stored without cues).
	scan *mkv.Scanned
}

// completeFromStore makes key from the uploaded parts followed by the tail objects that
// continue them, removes the tails, then makes the object seekable (indexStored). An upload
// with nothing to keep is aborted; it then returns nil.
func (r *Recorder) completeFromStore(ctx context.Context, key, uploadID string, parts []storage.Part, tails []storage.Object) (*storedFile, error) {
	store := r.opts.Store
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	var end int64
	var keep []storage.Part
	for i, p := range parts {
		if p.Number != i+1 {
			break
		}
		keep = append(keep, p)
		end += p.Size
	}
	sort.Slice(tails, func(i, j int) bool { return tails[i].Key < tails[j].Key })
	var tail bytes.Buffer
	for _, t := range tails {
		start, ok := tailStart(t.Key)
		if !ok || start != end+int64(tail.Len()) {
			continue
		}
		rc, err := store.Get(ctx, t.Key)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(&tail, rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
	}
	stored := true
	switch {
	case len(keep) == 0 && tail.Len() == 0:
		stored = false
		if uploadID != "" {
			if err := store.AbortMultipart(ctx, key, uploadID); err != nil {
				return nil, err
			}
		}
	case uploadID == "" || len(keep) == 0:
		if uploadID != "" {
			_ = store.AbortMultipart(ctx, key, uploadID)
		}
		if err := store.Put(ctx, key, bytes.NewReader(tail.Bytes()), int64(tail.Len()), contentTypeOf(key)); err != nil {
			return nil, err
		}
	default:
		if tail.Len() > 0 {
			p, err := store.UploadPart(ctx, key, uploadID, len(keep)+1, bytes.NewReader(tail.Bytes()), int64(tail.Len()))
			if err != nil {
				return nil, err
			}
			keep = append(keep, p)
		}
		if err := store.CompleteMultipart(ctx, key, uploadID, keep); err != nil {
			return nil, err
		}
	}
	for _, t := range tails {
		_ = store.Delete(ctx, t.Key)
	}
	if !stored {
		return nil, nil
	}
	s, err := r.indexStored(ctx, key)
	if err != nil {
		r.log.Warn("recovered a recording file from the store alone, without cues (playable, seeking scans)",
			"key", key, "parts", len(keep), "tail_bytes", tail.Len(), "err", err)
		return &storedFile{}, nil
	}
	r.log.Warn("recovered a recording file from the store alone", "key", key, "parts", len(keep),
		"tail_bytes", tail.Len(), "clusters", len(s.Index), "duration_ms", s.Duration)
	return &storedFile{scan: s}, nil
}

// indexStored reads key back and stores it again with cues and the patched head.
func (r *Recorder) indexStored(ctx context.Context, key string) (*mkv.Scanned, error) {
	rc, err := r.opts.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	w := &rewriter{ctx: ctx, r: r, key: key}
	s, err := mkv.Scan(rc, w)
	if err == nil && !s.Finalized && len(s.Index) > 0 {
		var cues, head []byte
		if cues, head, err = mkv.Finalize(s.Layout, s.Index, s.End, float64(s.Duration)); err == nil {
			err = w.finish(head, cues)
		}
		if err == nil {
			return s, nil
		}
	}
	w.abort()
	if err == nil && !s.Finalized {
		err = errNoClusters
	}
	return s, err
}

// errNoClusters: a file holds nothing but its head.
var errNoClusters = errors.New("recorder: the file holds no complete cluster")

// rewriter stores an object again under its key as it is read back: parts of PartSize from
// part 2 on while reading, then the last part and finally part 1 with the patched head. A
// file shorter than one part is stored with a single PUT.
type rewriter struct {
	ctx        context.Context
	r          *Recorder
	key        string
	first, cur []byte
	uploadID   string
	parts      []storage.Part
}

// Write implements io.Writer.
func (w *rewriter) Write(p []byte) (int, error) {
	n := len(p)
	size := int(w.r.opts.PartSize)
	if k := min(size-len(w.first), len(p)); k > 0 {
		w.first = append(w.first, p[:k]...)
		p = p[k:]
	}
	w.cur = append(w.cur, p...)
	if len(w.cur) >= size {
		if err := w.flush(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// flush uploads w.cur as the next part (from 2).
func (w *rewriter) flush() error {
	store := w.r.opts.Store
	if w.uploadID == "" {
		if err := retry(w.ctx, w.r, func() error {
			id, err := store.CreateMultipart(w.ctx, w.key, contentTypeOf(w.key))
			w.uploadID = id
			return err
		}); err != nil {
			return err
		}
	}
	n := len(w.parts) + 2
	if err := retry(w.ctx, w.r, func() error {
		p, err := store.UploadPart(w.ctx, w.key, w.uploadID, n, bytes.NewReader(w.cur), int64(len(w.cur)))
		if err == nil {
			w.parts = append(w.parts, p)
		}
		return err
	}); err != nil {
		return err
	}
	w.cur = w.cur[:0]
	return nil
}

// finish patches the head into part 1, appends the cues and completes the object.
func (w *rewriter) finish(head, cues []byte) error {
	store := w.r.opts.Store
	copy(w.first, head)
	w.cur = append(w.cur, cues...)
	if w.uploadID == "" {
		all := append(w.first, w.cur...)
		return retry(w.ctx, w.r, func() error {
			return store.Put(w.ctx, w.key, bytes.NewReader(all), int64(len(all)), contentTypeOf(w.key))
		})
	}
	if len(w.cur) > 0 {
		if err := w.flush(); err != nil {
			return err
		}
	}
	var p1 storage.Part
	if err := retry(w.ctx, w.r, func() error {
		var err error
		p1, err = store.UploadPart(w.ctx, w.key, w.uploadID, 1, bytes.NewReader(w.first), int64(len(w.first)))
		return err
	}); err != nil {
		return err
	}
	parts := append([]storage.Part{p1}, w.parts...)
	return retry(w.ctx, w.r, func() error { return store.CompleteMultipart(w.ctx, w.key, w.uploadID, parts) })
}

// abort discards the rewrite (the object stays as it was).
func (w *rewriter) abort() {
	if w.uploadID != "" {
		_ = w.r.opts.Store.AbortMultipart(w.ctx, w.key, w.uploadID)
	}
}

// recordingStart reads the start time from a recording id (newRecordingID).
func recordingStart(id string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(id, "RC_")
	if !ok || len(rest) < len("20060102T150405Z") {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102T150405Z", rest[:len("20060102T150405Z")])
	return t, err == nil
}

// writeRecoveredManifest writes the manifest of a recording completed from the store alone,
// unless it has one: id from the key, start time from the id, each file's size and checksum,
// and what reading the file back found (tracks, duration, start, and the exact room and
// participant in the file's tags). Access to a recording is decided on the room of its
// manifest, so the room is taken only from the tags: a key names it escaped (or, before the
// escaping, not one-to-one). A recording whose files carry no readable tags (written by an
// older release, or unreadable) gets a manifest naming no room: it stays in the store, where
// an administrator finds it, but no room's token lists it.
func (r *Recorder) writeRecoveredManifest(ctx context.Context, prefix string, found map[string]*storedFile) error {
	store := r.opts.Store
	if _, err := store.Stat(ctx, prefix+ManifestName); err == nil {
		return nil
	}
	objs, err := store.List(ctx, prefix)
	if err != nil {
		return err
	}
	parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(prefix, r.opts.Prefix), "/"), "/")
	m := &Manifest{Prefix: prefix, Recovered: true, Participants: []ManifestParticipant{}, Files: []ManifestFile{}}
	if len(parts) >= 2 {
		m.RecordingID = parts[len(parts)-1]
	}
	rooms := map[string]bool{}
	started, haveStart := recordingStart(m.RecordingID)
	if haveStart {
		m.StartedAt = started
	}
	for _, o := range objs {
		rel := strings.TrimPrefix(o.Key, prefix)
		if strings.Contains(rel, "/") || rel == ManifestName {
			continue
		}
		rc, err := store.Get(ctx, o.Key)
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return err
		}
		mf := ManifestFile{Name: rel, Key: o.Key, ContentType: contentTypeOf(o.Key), Size: o.Size,
			SHA256: hex.EncodeToString(h.Sum(nil)), Recovered: true, Tracks: []ManifestTrack{}}
		mf.Participant, mf.Source, _ = fileOwner(rel)
		end := o.Modified
		if sf := found[o.Key]; sf != nil && sf.scan != nil {
			s := sf.scan
			if room, ok := s.Tags[tagRoom]; ok {
				rooms[room] = true
				mf.Participant, mf.Source = s.Tags[tagParticipant], s.Tags[tagSource]
			}
			mf.Indexed = true
			mf.Duration = float64(s.Duration) / 1000
			if haveStart && !s.Created.IsZero() {
				mf.StartOffset = max(s.Created.Sub(started).Seconds(), 0)
				end = started.Add(time.Duration((mf.StartOffset + mf.Duration) * float64(time.Second)))
			}
			for _, t := range s.Tracks {
				kind := "audio"
				if t.Type == mkv.TypeVideo {
					kind = "video"
				}
				mf.Tracks = append(mf.Tracks, ManifestTrack{Number: t.Number, Kind: kind, Codec: t.CodecID, Width: t.Width, Height: t.Height})
			}
		}
		m.Files = append(m.Files, mf)
		if m.EndedAt.Before(end) {
			m.EndedAt = end
		}
	}
	if haveStart && m.EndedAt.After(started) {
		m.Duration = m.EndedAt.Sub(started).Seconds()
	}
	switch len(rooms) {
	case 1:
		for room := range rooms {
			m.Room = room
		}
	default:
		r.log.Warn("a recording completed from the store alone names no room in its files: its manifest names none, no room's token lists it",
			"prefix", prefix, "rooms_found", len(rooms))
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if f.Participant != "" && !seen[f.Participant] {
			seen[f.Participant] = true
			m.Participants = append(m.Participants, ManifestParticipant{Identity: f.Participant})
		}
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].StartOffset < m.Files[j].StartOffset })
	b := m.marshal()
	if err := store.Put(ctx, prefix+ManifestName, bytes.NewReader(b), int64(len(b)), "application/json"); err != nil {
		return err
	}
	r.catalog.put(m, prefix)
	r.emit(Event{Type: EventRecordingRecovered, RecordingID: m.RecordingID, Room: m.Room, Manifest: m})
	return nil
}
