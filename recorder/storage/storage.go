// Package storage is where recordings go: a local folder (the default) or any S3-compatible
// object store. Both offer the same small object API, including multipart uploads, so the
// recorder uploads the same way to either.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned for a missing object or upload.
var ErrNotFound = errors.New("storage: not found")

// Object describes a stored object.
type Object struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Part is an uploaded part of a multipart upload.
type Part struct {
	Number int    `json:"number"`
	ETag   string `json:"etag"`
	Size   int64  `json:"size"`
	// Modified is when the part was uploaded (set by ListParts).
	Modified time.Time `json:"-"`
}

// Upload is a multipart upload in progress.
type Upload struct {
	Key      string
	UploadID string
	Started  time.Time
}

// MinPartSize is the smallest part S3 accepts, except for the last part of an upload.
const MinPartSize = 5 << 20

// Store is an object store. Keys are slash-separated paths. Implementations are safe for
// concurrent use.
type Store interface {
	// Put stores an object of the given size read from r.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Get opens an object for reading.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat describes an object.
	Stat(ctx context.Context, key string) (Object, error)
	// List returns the objects whose keys start with prefix, in key order.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes an object; deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error

	// CreateMultipart starts a multipart upload of key.
	CreateMultipart(ctx context.Context, key, contentType string) (uploadID string, err error)
	// UploadPart uploads (or replaces) part number n (from 1) of an upload.
	UploadPart(ctx context.Context, key, uploadID string, n int, r io.Reader, size int64) (Part, error)
	// ListParts returns the parts uploaded so far, by number.
	ListParts(ctx context.Context, key, uploadID string) ([]Part, error)
	// CompleteMultipart makes the object from the parts, in order.
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) error
	// AbortMultipart discards an upload and its parts.
	AbortMultipart(ctx context.Context, key, uploadID string) error
	// ListMultipart lists the uploads in progress whose keys start with prefix.
	ListMultipart(ctx context.Context, prefix string) ([]Upload, error)

	// PresignGet returns a URL that downloads key without other credentials until expiry,
	// or "" when the store has no such URLs (the local folder: the server serves the file).
	PresignGet(ctx context.Context, key string, expiry time.Duration) (string, error)
	// Name describes the store for logs ("local:/path", "s3:bucket@endpoint").
	Name() string
}

// Checker is a Store that can tell whether it takes writes (the recorder checks at start
// and reports what it finds in its logs and API answers).
type Checker interface {
	// Check returns why the store cannot take objects now, or nil.
	Check(ctx context.Context) error
}
