package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sanke-edu/sanke/recorder/storage"
)

// The catalog is what the recorder knows of stored recordings: their manifests, by
// recording id. It is loaded from the store in the background at start, updated as this node
// stores recordings, and a room's prefixes are read again (a scan) when the room is listed
// and its last scan is older than catalogFresh. The API answers from the catalog: it waits
// for a scan at most listWait, so a store that does not answer delays no answer by more, and
// access is decided on the room each manifest names, never on where it is stored.

const (
	// catalogFresh is how long a room's listing is answered without reading the store again.
	catalogFresh = 30 * time.Second
	// listWait bounds how long an answer waits for a scan of the store.
	listWait = 3 * time.Second
	// maxScans bounds the scans in flight (each is one goroutine).
	maxScans = 4
	// maxScannedRooms bounds the rooms whose last scan is remembered.
	maxScannedRooms = 4096
	// catalogScanTimeout bounds one scan (a room's prefixes, or the whole store at start).
	catalogScanTimeout = 2 * time.Minute
	// maxManifestSize bounds a manifest read from the store.
	maxManifestSize = 4 << 20
)

// catalogEntry is a stored recording.
type catalogEntry struct {
	m *Manifest
	// dir is the key prefix the manifest was found under: its files are there.
	dir string
	// added is when the entry was made (a scan that started before forgets nothing newer).
	added time.Time
}

// roomScan is a scan of a room's prefixes.
type roomScan struct {
	done chan struct{} // closed when the scan ends
	at   time.Time     // when it ended
	err  error
}

type catalog struct {
	r   *Recorder
	sem chan struct{}

	mu      sync.Mutex
	byID    map[string]catalogEntry
	byDir   map[string]string // dir -> recording id
	loaded  bool
	loadErr error
	scans   map[string]*roomScan // by room name
}

func newCatalog(r *Recorder) *catalog {
	return &catalog{r: r, sem: make(chan struct{}, maxScans), byID: map[string]catalogEntry{},
		byDir: map[string]string{}, scans: map[string]*roomScan{}}
}

// errStoreSlow: a listing was answered before the store.
var errStoreSlow = fmt.Errorf("the store has not answered within %v: the list may miss recordings", listWait)

// errBadManifest: a stored manifest is not JSON (it is skipped).
var errBadManifest = errors.New("unreadable manifest")

// errStoreBusy: too many scans are waiting for the store.
var errStoreBusy = errors.New("the store is busy with other listings: the list may miss recordings")

// manifestDir returns the recording folder of a manifest key (<prefix><room>/<id>/).
func manifestDir(key, prefix string) (string, bool) {
	rel, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return "", false
	}
	parts := strings.Split(rel, "/")
	if len(parts) != 3 || parts[2] != ManifestName || parts[0] == "" || parts[1] == "" || strings.HasPrefix(parts[1], ".") {
		return "", false
	}
	return prefix + parts[0] + "/" + parts[1] + "/", true
}

// readManifest reads a stored manifest.
func readManifest(ctx context.Context, store storage.Store, key string) (*Manifest, error) {
	rc, err := store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxManifestSize))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w %s: %v", errBadManifest, key, err)
	}
	return &m, nil
}

// put records a manifest stored under dir.
func (c *catalog) put(m *Manifest, dir string) {
	id := m.RecordingID
	if id == "" {
		id = strings.TrimSuffix(dir[strings.LastIndexByte(strings.TrimSuffix(dir, "/"), '/')+1:], "/")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byID[id]; ok && old.dir != dir {
		delete(c.byDir, old.dir)
	}
	c.byID[id] = catalogEntry{m: m, dir: dir, added: time.Now()}
	c.byDir[dir] = id
}

// scan reads the manifests under each prefix that the catalog does not know yet, and forgets
// those no longer stored.
func (c *catalog) scan(ctx context.Context, prefixes []string) error {
	store := c.r.opts.Store
	for _, p := range prefixes {
		started := time.Now()
		objs, err := store.List(ctx, p)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, o := range objs {
			dir, ok := manifestDir(o.Key, c.r.opts.Prefix)
			if !ok {
				continue
			}
			seen[dir] = true
			c.mu.Lock()
			_, known := c.byDir[dir]
			c.mu.Unlock()
			if known {
				continue
			}
			m, err := readManifest(ctx, store, o.Key)
			switch {
			case errors.Is(err, storage.ErrNotFound):
				continue
			case errors.Is(err, errBadManifest):
				c.r.log.Warn("unreadable recording manifest skipped", "key", o.Key, "err", err)
				continue
			case err != nil:
				return err
			}
			c.put(m, dir)
		}
		c.mu.Lock()
		for dir, id := range c.byDir {
			if strings.HasPrefix(dir, p) && !seen[dir] && c.byID[id].added.Before(started) {
				delete(c.byDir, dir)
				delete(c.byID, id)
			}
		}
		c.mu.Unlock()
	}
	return nil
}

// load reads every manifest of the store, retrying until it succeeds or ctx ends.
func (c *catalog) load(ctx context.Context) {
	backoff := 2 * time.Second
	for {
		sctx, cancel := context.WithTimeout(ctx, catalogScanTimeout)
		err := c.scan(sctx, []string{c.r.opts.Prefix})
		cancel()
		c.mu.Lock()
		c.loaded, c.loadErr = err == nil, err
		n := len(c.byID)
		c.mu.Unlock()
		if err == nil {
			c.r.log.Info("recordings catalog loaded", "recordings", n, "store", c.r.opts.Store.Name())
			return
		}
		c.r.log.Warn("cannot read the recordings in the store yet, retrying", "store", c.r.opts.Store.Name(), "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Minute)
	}
}

// startScan returns the scan of room to wait for: a fresh one, the one in flight or a new
// one; nil when too many scans are in flight.
func (c *catalog) startScan(room string) *roomScan {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.scans[room]; s != nil {
		select {
		case <-s.done:
			if s.err == nil && time.Since(s.at) < catalogFresh {
				return s
			}
		default:
			return s
		}
	}
	select {
	case c.sem <- struct{}{}:
	default:
		return nil
	}
	s := &roomScan{done: make(chan struct{})}
	if !c.r.goBackground(func() {
		defer func() { <-c.sem }()
		ctx, cancel := context.WithTimeout(c.r.ctx, catalogScanTimeout)
		err := c.scan(ctx, c.r.roomPrefixes(room))
		cancel()
		c.mu.Lock()
		s.err, s.at = err, time.Now()
		c.mu.Unlock()
		close(s.done)
	}) {
		<-c.sem
		return nil
	}
	c.scans[room] = s
	if len(c.scans) > maxScannedRooms {
		c.pruneScansLocked()
	}
	return s
}

// pruneScansLocked forgets finished scans, the stale ones first.
func (c *catalog) pruneScansLocked() {
	for _, staleOnly := range []bool{true, false} {
		for room, s := range c.scans {
			if len(c.scans) <= maxScannedRooms/2 {
				return
			}
			select {
			case <-s.done:
				if !staleOnly || time.Since(s.at) >= catalogFresh {
					delete(c.scans, room)
				}
			default:
			}
		}
	}
}

// list returns copies of the manifests of room (exactly that name), newest first, after
// reading the store again if the room's last scan is not fresh, waiting at most listWait.
// The error says why the list may be incomplete; the manifests are returned anyway.
func (c *catalog) list(ctx context.Context, room string) ([]*Manifest, error) {
	s := c.startScan(room)
	if s != nil {
		t := time.NewTimer(listWait)
		select {
		case <-s.done:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	if s == nil {
		err = errStoreBusy
	} else {
		select {
		case <-s.done:
			if s.err != nil {
				err = fmt.Errorf("cannot read the store: %w", s.err)
			}
		default:
			err = errStoreSlow
		}
	}
	out := []*Manifest{}
	for _, e := range c.byID {
		if e.m.Room == room {
			out = append(out, copyManifest(e.m))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.After(out[j].StartedAt) })
	return out, err
}

// get returns the stored recording id.
func (c *catalog) get(id string) (catalogEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[id]
	return e, ok
}

// status reports whether the whole store has been read, and the last error if not.
func (c *catalog) status() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loaded, c.loadErr
}

// copyManifest copies what an API answer changes (the files' URLs).
func copyManifest(m *Manifest) *Manifest {
	cp := *m
	cp.Files = append([]ManifestFile(nil), m.Files...)
	if cp.Files == nil {
		cp.Files = []ManifestFile{}
	}
	if cp.Participants == nil {
		cp.Participants = []ManifestParticipant{}
	}
	return &cp
}
