package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config configures an S3-compatible store.
type S3Config struct {
	// Endpoint is the store's URL, e.g. https://s3.eu-west-1.amazonaws.com or
	// http://127.0.0.1:9000; a bare host:port means https.
	Endpoint string
	Region   string
	Bucket   string
	// PathStyle addresses buckets as endpoint/bucket (MinIO, most self-hosted stores)
	// instead of bucket.endpoint.
	PathStyle bool
	AccessKey string
	SecretKey string
	// Timeout bounds each call (default 30 s) plus, for calls that move an object, the time
	// to move it at MinRate: a store that accepts connections and never answers fails the
	// call instead of blocking it, and the recorder spools and retries.
	Timeout time.Duration
}

// MinRate is the slowest transfer (bytes per second) an S3 call moving an object is given
// time for, on top of S3Config.Timeout.
const MinRate = 64 << 10

// maxDialTimeout bounds connecting to the store and its TLS handshake.
const maxDialTimeout = 10 * time.Second

// S3 is a Store in a bucket of an S3-compatible object store, through minio-go.
type S3 struct {
	core   minio.Core
	bucket string
	name   string
	tmo    time.Duration
}

// NewS3 connects to a bucket. It does not contact the store.
func NewS3(cfg S3Config) (*S3, error) {
	if cfg.Bucket == "" || cfg.Endpoint == "" {
		return nil, errors.New("storage: s3 needs an endpoint and a bucket")
	}
	ep := cfg.Endpoint
	if !strings.Contains(ep, "://") {
		ep = "https://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("storage: bad s3 endpoint %q", cfg.Endpoint)
	}
	lookup := minio.BucketLookupDNS
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	tmo := cfg.Timeout
	if tmo <= 0 {
		tmo = 30 * time.Second
	}
	dial := min(tmo, maxDialTimeout)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = dial
	tr.ResponseHeaderTimeout = tmo
	tr.ExpectContinueTimeout = time.Second
	tr.IdleConnTimeout = 90 * time.Second
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    tr,
		MaxRetries:   2,
	})
	if err != nil {
		return nil, err
	}
	return &S3{core: minio.Core{Client: c}, bucket: cfg.Bucket, name: "s3:" + cfg.Bucket + "@" + u.Host, tmo: tmo}, nil
}

// Name implements Store.
func (s *S3) Name() string { return s.name }

// bound gives a call that moves size bytes (0: none) its deadline.
func (s *S3) bound(ctx context.Context, size int64) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.tmo+transferTime(size))
}

// transferTime is how long moving size bytes may take at MinRate.
func transferTime(size int64) time.Duration {
	if size <= 0 {
		return 0
	}
	return time.Duration(size) * (time.Second / MinRate)
}

// EnsureBucket creates the bucket if it does not exist (used by tests and first runs).
func (s *S3) EnsureBucket(ctx context.Context) error {
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	ok, err := s.core.BucketExists(ctx, s.bucket)
	if err != nil || ok {
		return err
	}
	return s.core.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{})
}

// Check implements Checker: the bucket exists (it is created if missing) and answers.
func (s *S3) Check(ctx context.Context) error {
	if err := s.EnsureBucket(ctx); err != nil {
		return fmt.Errorf("storage: bucket %s: %w", s.bucket, err)
	}
	return nil
}

func mapErr(err error) error {
	if err == nil {
		return nil
	}
	r := minio.ToErrorResponse(err)
	if r.StatusCode == http.StatusNotFound || r.Code == "NoSuchKey" || r.Code == "NoSuchUpload" {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return err
}

// Put implements Store.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	ctx, cancel := s.bound(ctx, size)
	defer cancel()
	_, err := s.core.PutObject(ctx, s.bucket, key, r, size, "", "", minio.PutObjectOptions{ContentType: contentType})
	return mapErr(err)
}

// watchdog cancels a call that goes on past its deadline, which Reset moves.
type watchdog struct {
	t      *time.Timer
	fired  atomic.Bool
	cancel context.CancelFunc
}

func newWatchdog(ctx context.Context, d time.Duration) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancel(ctx)
	w := &watchdog{cancel: cancel}
	w.t = time.AfterFunc(d, func() { w.fired.Store(true); cancel() })
	return ctx, w
}

// stop ends the call.
func (w *watchdog) stop() {
	w.t.Stop()
	w.cancel()
}

// explain says that the store did not answer in time when the watchdog cut the call.
func (w *watchdog) explain(op, key string, err error) error {
	if err != nil && w.fired.Load() {
		return fmt.Errorf("storage: %s %s: the store did not answer in time: %w", op, key, err)
	}
	return err
}

// Get implements Store. The object must be read within Timeout plus its size at MinRate.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	ctx, w := newWatchdog(ctx, s.tmo)
	rc, info, _, err := s.core.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		w.stop()
		return nil, w.explain("get", key, mapErr(err))
	}
	w.t.Reset(s.tmo + transferTime(info.Size))
	return &boundBody{ReadCloser: rc, w: w, key: key}, nil
}

// boundBody is an object being read; closing it ends its call.
type boundBody struct {
	io.ReadCloser
	w   *watchdog
	key string
}

// Read implements io.Reader.
func (b *boundBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != io.EOF {
		err = b.w.explain("get", b.key, err)
	}
	return n, err
}

// Close implements io.Closer.
func (b *boundBody) Close() error {
	err := b.ReadCloser.Close()
	b.w.stop()
	return err
}

// Stat implements Store.
func (s *S3) Stat(ctx context.Context, key string) (Object, error) {
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	info, err := s.core.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Object{}, mapErr(err)
	}
	return Object{Key: key, Size: info.Size, Modified: info.LastModified}, nil
}

// List implements Store. Each page of the listing must come within Timeout.
func (s *S3) List(ctx context.Context, prefix string) ([]Object, error) {
	ctx, w := newWatchdog(ctx, s.tmo)
	defer w.stop()
	var out []Object
	for o := range s.core.Client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, w.explain("list", prefix, mapErr(o.Err))
		}
		w.t.Reset(s.tmo)
		out = append(out, Object{Key: o.Key, Size: o.Size, Modified: o.LastModified})
	}
	if err := ctx.Err(); err != nil {
		return nil, w.explain("list", prefix, err)
	}
	return out, nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	err := mapErr(s.core.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// CreateMultipart implements Store.
func (s *S3) CreateMultipart(ctx context.Context, key, contentType string) (string, error) {
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, key, minio.PutObjectOptions{ContentType: contentType})
	return id, mapErr(err)
}

// UploadPart implements Store.
func (s *S3) UploadPart(ctx context.Context, key, uploadID string, n int, r io.Reader, size int64) (Part, error) {
	ctx, cancel := s.bound(ctx, size)
	defer cancel()
	p, err := s.core.PutObjectPart(ctx, s.bucket, key, uploadID, n, r, size, minio.PutObjectPartOptions{})
	if err != nil {
		return Part{}, mapErr(err)
	}
	return Part{Number: n, ETag: p.ETag, Size: size}, nil
}

// ListParts implements Store.
func (s *S3) ListParts(ctx context.Context, key, uploadID string) ([]Part, error) {
	var out []Part
	marker := 0
	for {
		pctx, cancel := s.bound(ctx, 0)
		res, err := s.core.ListObjectParts(pctx, s.bucket, key, uploadID, marker, 1000)
		cancel()
		if err != nil {
			return nil, mapErr(err)
		}
		for _, p := range res.ObjectParts {
			out = append(out, Part{Number: p.PartNumber, ETag: p.ETag, Size: p.Size, Modified: p.LastModified})
		}
		if !res.IsTruncated {
			return out, nil
		}
		marker = res.NextPartNumberMarker
	}
}

// CompleteMultipart implements Store.
func (s *S3) CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) error {
	cp := make([]minio.CompletePart, len(parts))
	for i, p := range parts {
		cp[i] = minio.CompletePart{PartNumber: p.Number, ETag: p.ETag}
	}
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	_, err := s.core.CompleteMultipartUpload(ctx, s.bucket, key, uploadID, cp, minio.PutObjectOptions{})
	return mapErr(err)
}

// AbortMultipart implements Store.
func (s *S3) AbortMultipart(ctx context.Context, key, uploadID string) error {
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	err := mapErr(s.core.AbortMultipartUpload(ctx, s.bucket, key, uploadID))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// ListMultipart implements Store.
func (s *S3) ListMultipart(ctx context.Context, prefix string) ([]Upload, error) {
	var out []Upload
	keyMarker, idMarker := "", ""
	for {
		pctx, cancel := s.bound(ctx, 0)
		res, err := s.core.ListMultipartUploads(pctx, s.bucket, prefix, keyMarker, idMarker, "", 1000)
		cancel()
		if err != nil {
			return nil, mapErr(err)
		}
		for _, u := range res.Uploads {
			out = append(out, Upload{Key: u.Key, UploadID: u.UploadID, Started: u.Initiated})
		}
		if !res.IsTruncated {
			return out, nil
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
}

// PresignGet implements Store. It signs locally, but asks the store for the bucket's
// region once when the configuration gives none.
func (s *S3) PresignGet(ctx context.Context, key string, expiry time.Duration) (string, error) {
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	u, err := s.core.PresignedGetObject(ctx, s.bucket, key, expiry, nil)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}
