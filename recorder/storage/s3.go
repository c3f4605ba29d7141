package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
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
	// Timeout bounds each request (default 30 s), so an unreachable store fails fast and the
	// recorder spools.
	Timeout time.Duration
}

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
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	} else {
		lookup = minio.BucketLookupDNS
	}
	tmo := cfg.Timeout
	if tmo <= 0 {
		tmo = 30 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = tmo
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

// EnsureBucket creates the bucket if it does not exist (used by tests and first runs).
func (s *S3) EnsureBucket(ctx context.Context) error {
	ok, err := s.core.BucketExists(ctx, s.bucket)
	if err != nil || ok {
		return err
	}
	return s.core.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{})
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
	_, err := s.core.PutObject(ctx, s.bucket, key, r, size, "", "", minio.PutObjectOptions{ContentType: contentType})
	return mapErr(err)
}

// Get implements Store.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, _, _, err := s.core.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	return rc, mapErr(err)
}

// Stat implements Store.
func (s *S3) Stat(ctx context.Context, key string) (Object, error) {
	info, err := s.core.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Object{}, mapErr(err)
	}
	return Object{Key: key, Size: info.Size, Modified: info.LastModified}, nil
}

// List implements Store.
func (s *S3) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	for o := range s.core.Client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, mapErr(o.Err)
		}
		out = append(out, Object{Key: o.Key, Size: o.Size, Modified: o.LastModified})
	}
	return out, nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	err := mapErr(s.core.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// CreateMultipart implements Store.
func (s *S3) CreateMultipart(ctx context.Context, key, contentType string) (string, error) {
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, key, minio.PutObjectOptions{ContentType: contentType})
	return id, mapErr(err)
}

// UploadPart implements Store.
func (s *S3) UploadPart(ctx context.Context, key, uploadID string, n int, r io.Reader, size int64) (Part, error) {
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
		res, err := s.core.ListObjectParts(ctx, s.bucket, key, uploadID, marker, 1000)
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
	_, err := s.core.CompleteMultipartUpload(ctx, s.bucket, key, uploadID, cp, minio.PutObjectOptions{})
	return mapErr(err)
}

// AbortMultipart implements Store.
func (s *S3) AbortMultipart(ctx context.Context, key, uploadID string) error {
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
		res, err := s.core.ListMultipartUploads(ctx, s.bucket, prefix, keyMarker, idMarker, "", 1000)
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

// PresignGet implements Store.
func (s *S3) PresignGet(ctx context.Context, key string, expiry time.Duration) (string, error) {
	u, err := s.core.PresignedGetObject(ctx, s.bucket, key, expiry, nil)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}
