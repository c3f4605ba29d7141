package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// uploadsDir holds the parts of multipart uploads in progress in a Local store.
const uploadsDir = ".uploads"

// Local is a Store in a folder of the local file system. Objects are files named by their
// keys; multipart uploads keep their parts under .uploads/ until completed. Writes go to a
// temporary file renamed into place, so readers never see a partial object.
type Local struct {
	root string
}

// NewLocal returns a store rooted at dir, creating it if needed.
func NewLocal(dir string) (*Local, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return &Local{root: abs}, nil
}

// Root returns the store's folder.
func (l *Local) Root() string { return l.root }

// Name implements Store.
func (l *Local) Name() string { return "local:" + l.root }

// Check implements Checker: the folder can be created and written (a file is written,
// synced and removed).
func (l *Local) Check(context.Context) error {
	if err := os.MkdirAll(l.root, 0o755); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return WriteProbe(l.root)
}

// WriteProbe reports whether files can be written in dir: it writes, syncs and removes one.
func WriteProbe(dir string) error {
	f, err := os.CreateTemp(dir, ".tmp-probe-*")
	if err != nil {
		return fmt.Errorf("storage: %s is not writable: %w", dir, err)
	}
	_, err = f.Write([]byte("sanke\n"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(f.Name()); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("storage: %s is not writable: %w", dir, err)
	}
	return nil
}

// Path returns the file that holds key, refusing keys that leave the root.
func (l *Local) Path(key string) (string, error) {
	clean := path.Clean("/" + key)
	if clean == "/" || strings.HasPrefix(strings.TrimPrefix(clean, "/"), uploadsDir) || strings.Contains(key, "\\") {
		return "", fmt.Errorf("storage: bad key %q", key)
	}
	return filepath.Join(l.root, filepath.FromSlash(clean)), nil
}

func (l *Local) writeFile(dst string, r io.Reader) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-*")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(tmp, r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return n, err
}

// Put implements Store.
func (l *Local) Put(_ context.Context, key string, r io.Reader, size int64, _ string) error {
	p, err := l.Path(key)
	if err != nil {
		return err
	}
	n, err := l.writeFile(p, r)
	if err == nil && size >= 0 && n != size {
		return fmt.Errorf("storage: put %s: wrote %d bytes, want %d", key, n, size)
	}
	return err
}

// Get implements Store.
func (l *Local) Get(_ context.Context, key string) (io.ReadCloser, error) {
	p, err := l.Path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	return f, err
}

// Stat implements Store.
func (l *Local) Stat(_ context.Context, key string) (Object, error) {
	p, err := l.Path(key)
	if err != nil {
		return Object{}, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && st.IsDir()) {
		return Object{}, ErrNotFound
	}
	if err != nil {
		return Object{}, err
	}
	return Object{Key: key, Size: st.Size(), Modified: st.ModTime()}, nil
}

// List implements Store.
func (l *Local) List(_ context.Context, prefix string) ([]Object, error) {
	var out []Object
	err := filepath.WalkDir(l.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(l.root, p)
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if key == uploadsDir || (key != "." && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(key, prefix) || strings.HasPrefix(path.Base(key), ".tmp-") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		out = append(out, Object{Key: key, Size: info.Size(), Modified: info.ModTime()})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, err
}

// Delete implements Store.
func (l *Local) Delete(_ context.Context, key string) error {
	p, err := l.Path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// Remove directories left empty, up to the root.
	for dir := filepath.Dir(p); dir != l.root && strings.HasPrefix(dir, l.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}

type localUpload struct {
	Key     string    `json:"key"`
	Started time.Time `json:"started"`
}

func (l *Local) uploadDir(uploadID string) (string, error) {
	if uploadID == "" || strings.ContainsAny(uploadID, "/\\.") {
		return "", fmt.Errorf("storage: bad upload id %q", uploadID)
	}
	return filepath.Join(l.root, uploadsDir, uploadID), nil
}

// CreateMultipart implements Store.
func (l *Local) CreateMultipart(_ context.Context, key, _ string) (string, error) {
	if _, err := l.Path(key); err != nil {
		return "", err
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	dir, _ := l.uploadDir(id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	meta, _ := json.Marshal(localUpload{Key: key, Started: time.Now()})
	if err := os.WriteFile(filepath.Join(dir, "upload.json"), meta, 0o644); err != nil {
		return "", err
	}
	return id, nil
}

func (l *Local) readUpload(uploadID string) (localUpload, string, error) {
	dir, err := l.uploadDir(uploadID)
	if err != nil {
		return localUpload{}, "", err
	}
	b, err := os.ReadFile(filepath.Join(dir, "upload.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return localUpload{}, "", ErrNotFound
	}
	if err != nil {
		return localUpload{}, "", err
	}
	var u localUpload
	if err := json.Unmarshal(b, &u); err != nil {
		return localUpload{}, "", err
	}
	return u, dir, nil
}

// UploadPart implements Store.
func (l *Local) UploadPart(_ context.Context, key, uploadID string, n int, r io.Reader, size int64) (Part, error) {
	u, dir, err := l.readUpload(uploadID)
	if err != nil {
		return Part{}, err
	}
	if u.Key != key {
		return Part{}, ErrNotFound
	}
	written, err := l.writeFile(filepath.Join(dir, fmt.Sprintf("%05d.part", n)), r)
	if err != nil {
		return Part{}, err
	}
	if size >= 0 && written != size {
		return Part{}, fmt.Errorf("storage: part %d: wrote %d bytes, want %d", n, written, size)
	}
	return Part{Number: n, ETag: strconv.FormatInt(written, 10), Size: written}, nil
}

// ListParts implements Store.
func (l *Local) ListParts(_ context.Context, key, uploadID string) ([]Part, error) {
	u, dir, err := l.readUpload(uploadID)
	if err != nil {
		return nil, err
	}
	if u.Key != key {
		return nil, ErrNotFound
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var parts []Part
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".part")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		parts = append(parts, Part{Number: n, ETag: strconv.FormatInt(info.Size(), 10), Size: info.Size(), Modified: info.ModTime()})
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	return parts, nil
}

// CompleteMultipart implements Store.
func (l *Local) CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) error {
	u, dir, err := l.readUpload(uploadID)
	if err != nil {
		return err
	}
	if u.Key != key {
		return ErrNotFound
	}
	dst, err := l.Path(key)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		for _, p := range parts {
			f, err := os.Open(filepath.Join(dir, fmt.Sprintf("%05d.part", p.Number)))
			if err != nil {
				pw.CloseWithError(fmt.Errorf("storage: part %d: %w", p.Number, err))
				return
			}
			_, err = io.Copy(pw, f)
			_ = f.Close()
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		_ = pw.Close()
	}()
	if _, err := l.writeFile(dst, pr); err != nil {
		_ = pr.CloseWithError(err)
		return err
	}
	return os.RemoveAll(dir)
}

// AbortMultipart implements Store.
func (l *Local) AbortMultipart(_ context.Context, _, uploadID string) error {
	dir, err := l.uploadDir(uploadID)
	if err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// ListMultipart implements Store.
func (l *Local) ListMultipart(_ context.Context, prefix string) ([]Upload, error) {
	ents, err := os.ReadDir(filepath.Join(l.root, uploadsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Upload
	for _, e := range ents {
		u, _, err := l.readUpload(e.Name())
		if err != nil || !strings.HasPrefix(u.Key, prefix) {
			continue
		}
		out = append(out, Upload{Key: u.Key, UploadID: e.Name(), Started: u.Started})
	}
	return out, nil
}

// PresignGet implements Store: a local folder has no presigned URLs.
func (l *Local) PresignGet(context.Context, string, time.Duration) (string, error) { return "", nil }
