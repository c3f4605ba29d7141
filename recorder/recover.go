package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
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
// then multipart uploads and tail objects found only in the store. Uploads that changed too
// recently to be judged abandoned at start-up are looked at again as soon as they would be;
// then the store is swept every sweepInterval.
func (r *Recorder) recoveryLoop() {
	r.recoverSpool()
	if again := r.sweepStore(true); again > 0 && again < sweepInterval {
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(again + 100*time.Millisecond):
		}
		r.sweepStore(true)
	}
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
	r.catalog.put(m, meta.Prefix)
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
		_ = spool.Close() // the error returned says what failed
		return nil, err
	}
	index, err := readIndex(filepath.Join(dir, m.Name+".idx"), st.Size())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		_ = spool.Close() // the error returned says what failed
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
	sf, err := finalizeSpool(r, dir, m, spool, index, float64(dur))
	if err == nil {
		err = sf.store(ctx, r)
	}
	if err != nil {
		_ = spool.Close() // the error returned says what failed
		return nil, err
	}
	mf := sf.entry
	mf.Recovered = true
	return &mf, nil
}
