package recorder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sanke-edu/sanke/recorder/storage"
)

// sweepInterval is how often the store is searched for abandoned uploads.
const sweepInterval = 10 * time.Minute

// recoveryLoop completes what a crash interrupted: first the recordings found in the local
// spool (complete and seekable: the spool has every closed cluster and the cluster index),
// then multipart uploads and tail objects found only in the store (playable, not indexed).
func (r *Recorder) recoveryLoop() {
	r.recoverSpool()
	r.sweepStore(true)
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
			r.sweepStore(false)
		}
	}
}

// recoverSpool completes every session left in the spool directory.
func (r *Recorder) recoverSpool() {
	ents, err := os.ReadDir(r.opts.SpoolDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "RC_") {
			continue
		}
		r.mu.Lock()
		_, active := r.sessions[e.Name()]
		r.mu.Unlock()
		if active {
			continue
		}
		dir := filepath.Join(r.opts.SpoolDir, e.Name())
		if err := r.recoverSession(dir); err != nil {
			r.log.Error("recovery failed; the spool is kept for the next start", "dir", dir, "err", err)
		}
	}
}

func (r *Recorder) recoverSession(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "session.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return os.RemoveAll(dir)
		}
		return err
	}
	var meta sessionMeta
	if err := json.Unmarshal(b, &meta); err != nil {
		return err
	}
	log := r.log.With("recording", meta.ID, "room", meta.Room)
	log.Info("recovering interrupted recording")
	ctx, cancel := context.WithTimeout(r.ctx, finishTimeout)
	defer cancel()
	m := &Manifest{
		RecordingID: meta.ID, Room: meta.Room, RoomSID: meta.RoomSID, ClassSessionID: meta.ClassSessionID,
		StartedAt: meta.StartedAt, Prefix: meta.Prefix, Recovered: true, Participants: meta.Participants,
		Files: []ManifestFile{},
	}
	if m.Participants == nil {
		m.Participants = []ManifestParticipant{}
	}
	var lastEnd time.Time
	metas, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, mp := range metas {
		if filepath.Base(mp) == "session.json" {
			continue
		}
		mf, err := r.recoverFile(ctx, dir, mp)
		if err != nil {
			return err
		}
		if mf == nil {
			continue
		}
		m.Files = append(m.Files, *mf)
		end := meta.StartedAt.Add(time.Duration((mf.StartOffset + mf.Duration) * float64(time.Second)))
		if end.After(lastEnd) {
			lastEnd = end
		}
	}
	if lastEnd.IsZero() {
		lastEnd = meta.StartedAt
	}
	m.EndedAt = lastEnd
	m.Duration = lastEnd.Sub(meta.StartedAt).Seconds()
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].StartOffset < m.Files[j].StartOffset })
	mb := m.marshal()
	if err := retry(ctx, r, func() error {
		return r.opts.Store.Put(ctx, meta.Prefix+ManifestName, bytes.NewReader(mb), int64(len(mb)), "application/json")
	}); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	log.Info("recovered recording stored", "files", len(m.Files), "duration", m.Duration)
	r.emit(Event{Type: EventRecordingRecovered, RecordingID: meta.ID, Room: meta.Room, Manifest: m})
	return nil
}

// recoverFile completes one spooled file: it cuts the spool after the last indexed cluster
// (a cluster being written at the crash is lost), then finishes it as at a normal end.
func (r *Recorder) recoverFile(ctx context.Context, dir, metaPath string) (*ManifestFile, error) {
	b, err := os.ReadFile(metaPath)
	if err != nil {
		return nil, err
	}
	var m fileMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m.Layout.HeadLen == 0 {
		return nil, nil
	}
	spool, err := os.OpenFile(filepath.Join(dir, m.Name), os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	st, err := spool.Stat()
	if err != nil {
		spool.Close()
		return nil, err
	}
	index, err := readIndex(filepath.Join(dir, m.Name+".idx"), st.Size())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		spool.Close()
		return nil, err
	}
	var dur int64
	for _, c := range index {
		dur = max(dur, c.End)
	}
	end := m.Layout.HeadLen
	if n := len(index); n > 0 {
		end = index[n-1].Offset + index[n-1].Size
	}
	// Parts beyond what the index vouches for cannot be used; neither can an upload the
	// store no longer knows.
	if m.Upload.UploadID != "" {
		if _, err := r.opts.Store.ListParts(ctx, m.Key, m.Upload.UploadID); errors.Is(err, storage.ErrNotFound) || m.Upload.PartEnd > end {
			_ = r.opts.Store.AbortMultipart(ctx, m.Key, m.Upload.UploadID)
			m.Upload = uploadState{}
		}
	}
	mf, err := completeFile(ctx, r, dir, m, spool, index, float64(dur))
	if err != nil {
		spool.Close()
		return nil, err
	}
	mf.Recovered = true
	return mf, nil
}

// sweepStore completes multipart uploads and tail objects that no recording of this node
// owns and that have not changed for StaleAfter: recordings of a node that crashed and
// lost its spool. Tail-only files (shorter than one part) are looked for only at start-up.
func (r *Recorder) sweepStore(startup bool) {
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Minute)
	defer cancel()
	store := r.opts.Store
	uploads, err := store.ListMultipart(ctx, r.opts.Prefix)
	if err != nil {
		r.log.Warn("recovery sweep: cannot list uploads", "err", err)
		return
	}
	owned := r.ownedKeys()
	sessions := map[string]bool{}
	handled := map[string]bool{}
	for _, u := range uploads {
		if owned[u.Key] {
			continue
		}
		parts, err := store.ListParts(ctx, u.Key, u.UploadID)
		if err != nil {
			continue
		}
		tails, _ := store.List(ctx, tailPrefix(u.Key))
		if r.active(u.Started, parts, tails) {
			continue
		}
		handled[u.Key] = true
		if err := r.completeFromStore(ctx, u.Key, u.UploadID, parts, tails); err != nil {
			r.log.Error("recovery sweep: cannot complete upload", "key", u.Key, "err", err)
			continue
		}
		sessions[path.Dir(u.Key)+"/"] = true
	}
	if startup {
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
				if owned[key] || handled[key] || r.active(time.Time{}, nil, tails) {
					continue
				}
				if err := r.completeFromStore(ctx, key, "", nil, tails); err != nil {
					r.log.Error("recovery sweep: cannot complete file", "key", key, "err", err)
					continue
				}
				sessions[path.Dir(key)+"/"] = true
			}
		}
	}
	for prefix := range sessions {
		if err := r.writeRecoveredManifest(ctx, prefix); err != nil {
			r.log.Error("recovery sweep: cannot write manifest", "prefix", prefix, "err", err)
		}
	}
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

// active reports whether an upload changed within StaleAfter.
func (r *Recorder) active(started time.Time, parts []storage.Part, tails []storage.Object) bool {
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
	return time.Since(newest) < r.opts.StaleAfter
}

// completeFromStore makes key from the uploaded parts followed by the tail objects that
// continue them, then removes the tails. An upload with nothing to keep is aborted.
func (r *Recorder) completeFromStore(ctx context.Context, key, uploadID string, parts []storage.Part, tails []storage.Object) error {
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
			return err
		}
		_, err = io.Copy(&tail, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	switch {
	case len(keep) == 0 && tail.Len() == 0:
		if uploadID != "" {
			if err := store.AbortMultipart(ctx, key, uploadID); err != nil {
				return err
			}
		}
	case uploadID == "" || len(keep) == 0:
		if uploadID != "" {
			_ = store.AbortMultipart(ctx, key, uploadID)
		}
		if err := store.Put(ctx, key, bytes.NewReader(tail.Bytes()), int64(tail.Len()), contentTypeOf(key)); err != nil {
			return err
		}
	default:
		if tail.Len() > 0 {
			p, err := store.UploadPart(ctx, key, uploadID, len(keep)+1, bytes.NewReader(tail.Bytes()), int64(tail.Len()))
			if err != nil {
				return err
			}
			keep = append(keep, p)
		}
		if err := store.CompleteMultipart(ctx, key, uploadID, keep); err != nil {
			return err
		}
	}
	for _, t := range tails {
		_ = store.Delete(ctx, t.Key)
	}
	r.log.Warn("recovered a recording file from the store alone (no cues: playable, seeking scans)", "key", key,
		"parts", len(keep), "tail_bytes", tail.Len())
	return nil
}

// writeRecoveredManifest writes the manifest of a recording completed from the store alone,
// unless it has one: room and id from the key, each file's size and checksum.
func (r *Recorder) writeRecoveredManifest(ctx context.Context, prefix string) error {
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
		m.Room, m.RecordingID = parts[len(parts)-2], parts[len(parts)-1]
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
		m.Files = append(m.Files, ManifestFile{Name: rel, Key: o.Key, ContentType: contentTypeOf(o.Key), Size: o.Size,
			SHA256: hex.EncodeToString(h.Sum(nil)), Recovered: true, Tracks: []ManifestTrack{}})
		if m.EndedAt.Before(o.Modified) {
			m.EndedAt = o.Modified
		}
	}
	b := m.marshal()
	r.emit(Event{Type: EventRecordingRecovered, RecordingID: m.RecordingID, Room: m.Room, Manifest: m})
	return store.Put(ctx, prefix+ManifestName, bytes.NewReader(b), int64(len(b)), "application/json")
}
