package recorder

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sanke-edu/sanke/recorder/storage"
)

// inProgressDir names the folder, beside a recording's files, that holds its tail objects
// while it is being recorded. Listing and the API ignore it; it is empty once the recording
// is complete.
const inProgressDir = ".inprogress/"

// tailPrefix is where the tail objects of the file at key go: <prefix>.inprogress/<name>/.
func tailPrefix(key string) string {
	i := strings.LastIndexByte(key, '/')
	return key[:i+1] + inProgressDir + key[i+1:] + "/"
}

// maxTails bounds the tail objects of a file: past it, one object holding everything not
// yet in a part replaces them (a file growing too slowly to fill a part, a muted
// participant's, would otherwise add one every flush interval for the whole recording).
const maxTails = 32

// tailKey names the tail object holding the bytes from offset start.
func tailKey(prefix string, start int64) string { return fmt.Sprintf("%s%016d", prefix, start) }

// partState is an uploaded part and the byte range of the file it holds.
type partState struct {
	storage.Part
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// uploadState is what has been uploaded of a file: the multipart upload (parts cover
// [0, PartEnd)) and the tail objects (cover [PartEnd, TailEnd)).
type uploadState struct {
	UploadID string      `json:"upload_id,omitempty"`
	Parts    []partState `json:"parts,omitempty"`
	PartEnd  int64       `json:"part_end"`
	TailEnd  int64       `json:"tail_end"`
	Tails    []string    `json:"tails,omitempty"`
}

// uploader uploads a file while it is recorded: whole parts of at least PartSize through a
// multipart upload, and what is not yet in a part as small tail objects every FlushInterval,
// so a crash loses at most the cluster being written plus one flush interval. Bytes always
// come from the spool file, so an unreachable store only delays uploads (the spool limit
// bounds how far).
type uploader struct {
	r          *Recorder
	f          *outFile // nil during recovery
	key        string
	tailPrefix string
	spool      *os.File

	mu        sync.Mutex
	state     uploadState
	written   int64
	accounted int64 // this file's share of Recorder.spoolPending
	lastTail  time.Time

	// ctx ends the background uploads: stop cancels the call in flight rather than wait for
	// a store that does not answer.
	ctx     context.Context
	cancel  context.CancelFunc
	wake    chan struct{}
	stopped chan struct{}
}

func newUploader(f *outFile) *uploader {
	ctx, cancel := context.WithCancel(f.s.r.ctx)
	return &uploader{
		r: f.s.r, f: f, key: f.key, tailPrefix: tailPrefix(f.key), spool: f.spool,
		written: f.written, lastTail: time.Now(), ctx: ctx, cancel: cancel,
		wake: make(chan struct{}, 1), stopped: make(chan struct{}),
	}
}

func (u *uploader) snapshot() uploadState {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.state
	s.Parts = append([]partState(nil), s.Parts...)
	s.Tails = append([]string(nil), s.Tails...)
	return s
}

// setWritten records that the spool now holds n complete bytes.
func (u *uploader) setWritten(n int64) {
	u.mu.Lock()
	u.written = n
	u.account()
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// account updates the recorder's count of bytes waiting for upload. u.mu held.
func (u *uploader) account() {
	pending := max(u.written-max(u.state.PartEnd, u.state.TailEnd), 0)
	if d := pending - u.accounted; d != 0 {
		u.accounted = pending
		u.r.addPending(d)
	}
}

func (u *uploader) run() {
	defer close(u.stopped)
	tick := time.NewTicker(u.r.opts.FlushInterval / 2)
	defer tick.Stop()
	backoff := time.Duration(0)
	for {
		if backoff > 0 {
			select {
			case <-u.ctx.Done():
				return
			case <-time.After(backoff):
			}
		} else {
			select {
			case <-u.ctx.Done():
				return
			case <-u.wake:
			case <-tick.C:
			}
		}
		ctx, cancel := context.WithTimeout(u.ctx, 2*time.Minute)
		err := u.step(ctx)
		cancel()
		if u.ctx.Err() != nil {
			return
		}
		if err != nil {
			u.r.setStoreDown(true, err)
			backoff = min(max(backoff*2, 500*time.Millisecond), 5*time.Second)
			continue
		}
		backoff = 0
	}
}

// release gives back this file's share of the spool accounting (complete takes over).
func (u *uploader) release() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.r.addPending(-u.accounted)
	u.accounted = 0
}

// stop ends the background uploads, cancelling the call in flight (complete does the rest).
func (u *uploader) stop() {
	u.cancel()
	<-u.stopped
}

// step uploads a part when enough data is pending, else a tail object when the flush
// interval has passed.
func (u *uploader) step(ctx context.Context) error {
	u.mu.Lock()
	w, st := u.written, u.state
	due := time.Since(u.lastTail) >= u.r.opts.FlushInterval
	u.mu.Unlock()
	if w-st.PartEnd >= u.r.opts.PartSize {
		if err := u.uploadPart(ctx, st.PartEnd, w); err != nil {
			return err
		}
		u.r.setStoreDown(false, nil)
		u.deleteTails(ctx)
		return nil
	}
	if w > st.TailEnd && due {
		start := max(st.TailEnd, st.PartEnd)
		merge := len(st.Tails) >= maxTails
		if merge {
			// One object from the parts' end replaces the tails (it overwrites the first).
			start = st.PartEnd
		}
		k := tailKey(u.tailPrefix, start)
		if err := u.r.opts.Store.Put(ctx, k, io.NewSectionReader(u.spool, start, w-start), w-start, "application/octet-stream"); err != nil {
			return err
		}
		u.r.setStoreDown(false, nil)
		u.mu.Lock()
		old := u.state.Tails
		u.state.TailEnd = w
		if merge {
			u.state.Tails = []string{k}
		} else {
			u.state.Tails = append(u.state.Tails, k)
		}
		u.lastTail = time.Now()
		u.account()
		u.mu.Unlock()
		u.save()
		if merge {
			// Best effort: a tail left behind starts inside the merged one, and recovery
			// takes only tails that continue what it has.
			for _, o := range old {
				if o != k {
					_ = u.r.opts.Store.Delete(ctx, o)
				}
			}
		}
	}
	return nil
}

func (u *uploader) save() {
	if u.f != nil {
		u.f.saveMeta()
	}
}

// uploadPart uploads [start, end) as the next part, starting the multipart upload if needed.
func (u *uploader) uploadPart(ctx context.Context, start, end int64) error {
	u.mu.Lock()
	id := u.state.UploadID
	n := len(u.state.Parts) + 1
	u.mu.Unlock()
	if id == "" {
		var err error
		if id, err = u.r.opts.Store.CreateMultipart(ctx, u.key, contentTypeOf(u.key)); err != nil {
			return err
		}
		u.mu.Lock()
		u.state.UploadID = id
		u.mu.Unlock()
		u.save()
	}
	p, err := u.r.opts.Store.UploadPart(ctx, u.key, id, n, io.NewSectionReader(u.spool, start, end-start), end-start)
	if err != nil {
		return err
	}
	u.mu.Lock()
	u.state.Parts = append(u.state.Parts, partState{Part: p, Start: start, End: end})
	u.state.PartEnd = end
	u.state.TailEnd = max(u.state.TailEnd, end)
	u.account()
	u.mu.Unlock()
	u.save()
	return nil
}

// deleteTails removes the tail objects now covered by parts (best effort: recovery ignores
// tails below the parts' end, and complete removes the rest).
func (u *uploader) deleteTails(ctx context.Context) {
	u.mu.Lock()
	tails := u.state.Tails
	u.state.Tails = nil
	u.mu.Unlock()
	for _, k := range tails {
		_ = u.r.opts.Store.Delete(ctx, k)
	}
	u.save()
}

// complete uploads the finalized file of total bytes: the rest as the last part and part 1
// again (its head was patched), then completes the upload; or, for a file that never
// reached a part, a single object. Retries until ctx ends.
func (u *uploader) complete(ctx context.Context, total int64) error {
	st := u.snapshot()
	store := u.r.opts.Store
	if st.UploadID == "" {
		if err := retry(ctx, u.r, func() error {
			return store.Put(ctx, u.key, io.NewSectionReader(u.spool, 0, total), total, contentTypeOf(u.key))
		}); err != nil {
			return err
		}
	} else {
		if st.PartEnd < total {
			if err := retry(ctx, u.r, func() error { return u.uploadPart(ctx, st.PartEnd, total) }); err != nil {
				return err
			}
		}
		st = u.snapshot()
		first := st.Parts[0]
		if err := retry(ctx, u.r, func() error {
			p, err := store.UploadPart(ctx, u.key, st.UploadID, 1, io.NewSectionReader(u.spool, 0, first.End), first.End)
			if err == nil {
				st.Parts[0].Part = p
			}
			return err
		}); err != nil {
			return err
		}
		parts := make([]storage.Part, len(st.Parts))
		for i, p := range st.Parts {
			parts[i] = p.Part
		}
		if err := retry(ctx, u.r, func() error { return store.CompleteMultipart(ctx, u.key, st.UploadID, parts) }); err != nil {
			return err
		}
	}
	u.mu.Lock()
	u.written = total
	u.state.PartEnd, u.state.TailEnd = total, total
	u.account()
	u.mu.Unlock()
	// The file is stored: its tail objects are no longer needed.
	objs, err := store.List(ctx, u.tailPrefix)
	if err == nil {
		for _, o := range objs {
			_ = store.Delete(ctx, o.Key)
		}
	}
	return nil
}

func contentTypeOf(key string) string {
	switch {
	case strings.HasSuffix(key, ".webm"):
		return "video/webm"
	case strings.HasSuffix(key, ".mkv"):
		return "video/x-matroska"
	case strings.HasSuffix(key, ".json"):
		return "application/json"
	}
	return "application/octet-stream"
}

// tailStart parses the offset of a tail object key.
func tailStart(key string) (int64, bool) {
	i := strings.LastIndexByte(key, '/')
	n, err := strconv.ParseInt(key[i+1:], 10, 64)
	return n, err == nil
}
