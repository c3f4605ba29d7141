package recorder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/sanke-edu/sanke/recorder/storage"
)

// spoolRecheck is how soon after a failed check the spool is checked again when a recording
// is to start.
const spoolRecheck = 10 * time.Second

// storeCheckTimeout bounds the store check at start.
const storeCheckTimeout = 30 * time.Second

// ErrSpoolUnwritable means the spool directory cannot take files, so nothing can be recorded.
var ErrSpoolUnwritable = errors.New("recorder: the spool directory is not writable")

// health is what keeps the recorder from working, for the logs and the API's answers. It
// has its own lock: files report spool failures while holding theirs.
type health struct {
	mu         sync.Mutex
	spoolErr   error     // why the spool cannot take files (nil: it can)
	spoolAt    time.Time // when spoolErr was last set
	storeErr   error     // the last failure of the store while it is down
	storeSince time.Time
}

// checkSpool checks that the spool directory takes files, records and logs the result.
func (r *Recorder) checkSpool() error {
	err := os.MkdirAll(r.opts.SpoolDir, 0o755)
	if err == nil {
		err = storage.WriteProbe(r.opts.SpoolDir)
	}
	if err != nil {
		err = fmt.Errorf("%w: %s: %v", ErrSpoolUnwritable, r.opts.SpoolDir, err)
	}
	r.health.mu.Lock()
	was := r.health.spoolErr
	r.health.spoolErr, r.health.spoolAt = err, time.Now()
	r.health.mu.Unlock()
	switch {
	case err != nil && was == nil:
		r.log.Error("RECORDING IS NOT POSSIBLE: the spool directory is not writable; rooms are served but not recorded until it is",
			"spool_dir", r.opts.SpoolDir, "err", err)
	case err == nil && was != nil:
		r.log.Info("the spool directory is writable again: recording resumes", "spool_dir", r.opts.SpoolDir)
	}
	return err
}

// spoolUsable returns why a recording cannot start (nil: it can), checking the spool again
// if the last check failed more than spoolRecheck ago.
func (r *Recorder) spoolUsable() error {
	r.health.mu.Lock()
	err, at := r.health.spoolErr, r.health.spoolAt
	r.health.mu.Unlock()
	if err != nil && time.Since(at) >= spoolRecheck {
		return r.checkSpool()
	}
	return err
}

// spoolFailed records that writing to the spool failed (a full disk): new recordings wait
// for a successful check.
func (r *Recorder) spoolFailed(err error) {
	r.health.mu.Lock()
	first := r.health.spoolErr == nil
	r.health.spoolErr, r.health.spoolAt = fmt.Errorf("%w: %v", ErrSpoolUnwritable, err), time.Now()
	r.health.mu.Unlock()
	if first {
		r.log.Error("writing to the spool failed: the files being written are completed as far as they go", "spool_dir", r.opts.SpoolDir, "err", err)
	}
}

// checkStore asks the store whether it takes objects (a folder that is not writable, a
// bucket that does not answer) and reports the result like a failed upload.
func (r *Recorder) checkStore() {
	c, ok := r.opts.Store.(storage.Checker)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, storeCheckTimeout)
	defer cancel()
	if err := c.Check(ctx); err != nil {
		r.setStoreDown(true, err)
		return
	}
	r.setStoreDown(false, nil)
}

func (r *Recorder) setStoreDown(down bool, err error) {
	r.health.mu.Lock()
	if down {
		r.health.storeErr = err
		if r.health.storeSince.IsZero() {
			r.health.storeSince = time.Now()
		}
	} else {
		r.health.storeErr, r.health.storeSince = nil, time.Time{}
	}
	r.health.mu.Unlock()
	if down && r.storeDown.CompareAndSwap(false, true) {
		r.emit(Event{Type: EventStoreUnavailable, Error: fmt.Sprintf("store %s unreachable, spooling locally: %v", r.opts.Store.Name(), err)})
	} else if !down && r.storeDown.CompareAndSwap(true, false) {
		r.emit(Event{Type: EventStoreAvailable})
	}
}

// Problems describes what keeps the recorder from recording or storing, in plain words
// (empty when all is well): the spool directory not writable, the store not answering, the
// spool limit reached, the stored recordings not read yet. The API's answers carry them.
func (r *Recorder) Problems() []string {
	r.health.mu.Lock()
	spoolErr, storeErr, storeSince := r.health.spoolErr, r.health.storeErr, r.health.storeSince
	r.health.mu.Unlock()
	out := []string{}
	if spoolErr != nil {
		out = append(out, fmt.Sprintf("nothing can be recorded: %v", spoolErr))
	}
	if storeErr != nil {
		out = append(out, fmt.Sprintf("the store %s has failed since %s (recordings wait in the spool and are uploaded when it answers): %v",
			r.opts.Store.Name(), storeSince.UTC().Format(time.RFC3339), storeErr))
	}
	if r.spoolFull.Load() {
		out = append(out, fmt.Sprintf("the spool limit (%d bytes waiting for upload) is reached: new media is dropped", r.opts.SpoolLimit))
	}
	if loaded, err := r.catalog.status(); !loaded && err != nil {
		out = append(out, fmt.Sprintf("the recordings in the store could not be read yet: %v", err))
	}
	return out
}
